//! KeyedVectors files: one safetensors file with the vectors (tensor `weight`, `(n, dim)`), one
//! tensor per per-key attribute (gensim's "vecattrs", e.g. `vecattr.count`, `(n,)`) and the keys
//! (a JSON list in the metadata). Any safetensors reader opens it; `Embedding::load` reads the
//! table.
//!
//! [`write()`] streams the tensors' bytes from the caller's buffers into an atomic save (no copy
//! of the table is made). [`index`] reads only the header, checks it as the `safetensors` crate
//! checks a whole file (offsets contiguous from 0, each tensor's byte size that of its shape and
//! dtype, the last tensor ending at the end of the file), and says where each tensor's bytes
//! lie, so that a caller can map them (`np.memmap`) instead of reading them.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use safetensors::tensor::Metadata;

/// The element types of safetensors files.
pub use safetensors::tensor::Dtype;

use crate::{Error, Result};

/// One tensor to write, and [`write()`]: the crate's one streaming safetensors writer.
pub use crate::io::safetensors::{save_raw as write, RawTensor as TensorBytes, MAX_HEADER_BYTES};

use crate::io::safetensors::byte_size;

/// Where a tensor's bytes lie in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Byte offset of the first element from the start of the file.
    pub offset: u64,
    /// Number of bytes.
    pub len: u64,
}

/// Read the header of the safetensors file at `path` (nothing else) and check it against the
/// file's size: every tensor's place in the file, and the metadata.
pub fn index(path: &Path) -> Result<(HashMap<String, Located>, HashMap<String, String>)> {
    let fmt = |m: String| {
        Error::Format(format!(
            "{}: not a valid safetensors file ({m})",
            path.display()
        ))
    };
    let io = |e| Error::io(format!("cannot read {}", path.display()), e);
    let mut file = crate::io::open::open_regular(path)?;
    let file_len = file.seek(SeekFrom::End(0)).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut n8 = [0u8; 8];
    file.read_exact(&mut n8)
        .map_err(|_| fmt("shorter than its 8-byte header size".into()))?;
    let n = u64::from_le_bytes(n8);
    if n > MAX_HEADER_BYTES || n > file_len - 8 {
        return Err(fmt(format!(
            "a header of {n} bytes in a file of {file_len}"
        )));
    }
    let mut header = crate::alloc::try_alloc::<u8>(n as usize)?;
    file.read_exact(&mut header).map_err(io)?;
    let meta: Metadata = serde_json::from_slice(&header).map_err(|e| fmt(e.to_string()))?;
    let data_start = 8 + n;
    let mut located: Vec<(String, Located, usize)> = Vec::new();
    for (name, info) in meta.tensors() {
        let (s, e) = info.data_offsets;
        let size = byte_size(info.dtype, &info.shape)
            .ok_or_else(|| fmt(format!("tensor {name}: impossible shape {:?}", info.shape)))?;
        if e < s || e - s != size {
            return Err(fmt(format!(
                "tensor {name}: offsets do not match its shape"
            )));
        }
        let loc = Located {
            dtype: info.dtype,
            shape: info.shape.clone(),
            offset: data_start + s as u64,
            len: size as u64,
        };
        located.push((name, loc, s));
    }
    located.sort_by_key(|(_, l, s)| (*s, l.len));
    let mut end = 0u64;
    for (name, loc, s) in &located {
        if *s as u64 != end {
            return Err(fmt(format!("tensor {name}: data not contiguous")));
        }
        end += loc.len;
    }
    if data_start + end != file_len {
        return Err(fmt(format!(
            "the header describes {end} bytes of data, the file holds {}",
            file_len - data_start
        )));
    }
    let metadata = meta.metadata().clone().unwrap_or_default();
    Ok((
        located.into_iter().map(|(name, l, _)| (name, l)).collect(),
        metadata,
    ))
}
