//! Tables in safetensors files, with free-form string metadata (our config lives there).
//! Loading validates the header, dtypes, shapes and byte sizes (the `safetensors` crate checks
//! that offsets are in bounds and contiguous), so truncated or corrupted files are errors.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Dtype as StDtype, TensorView};

use crate::io::atomic::write_atomic;
use crate::mmap::from_st_dtype;
use crate::{Error, Result};

/// A candle dtype as safetensors names it (the dtypes this crate saves).
pub fn to_st_dtype(d: DType) -> Result<StDtype> {
    Ok(match d {
        DType::F32 => StDtype::F32,
        DType::F64 => StDtype::F64,
        DType::F16 => StDtype::F16,
        DType::BF16 => StDtype::BF16,
        DType::I64 => StDtype::I64,
        DType::U32 => StDtype::U32,
        other => return Err(Error::dtype(format!("cannot save dtype {other:?}"))),
    })
}

/// Save named tensors (moved to CPU) and metadata to `path`, atomically.
pub fn save(
    path: &Path,
    tensors: &[(&str, &Tensor)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.to_device(&Device::Cpu)?.contiguous()?;
        let bytes = tensor_bytes(&t)?;
        owned.push((name.to_string(), t.dtype(), t.dims().to_vec(), bytes));
    }
    let mut views = Vec::with_capacity(owned.len());
    for (name, dtype, shape, bytes) in &owned {
        let view = TensorView::new(to_st_dtype(*dtype)?, shape.clone(), bytes)
            .map_err(|e| Error::Format(format!("tensor {name}: {e}")))?;
        views.push((name.clone(), view));
    }
    let data = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Format(format!("cannot serialize: {e}")))?;
    write_atomic(path, |w| {
        w.write_all(&data)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    })
}

fn tensor_bytes(t: &Tensor) -> Result<Vec<u8>> {
    fn bytes_of<T: Copy>(v: Vec<T>) -> Vec<u8> {
        let n = std::mem::size_of_val(v.as_slice());
        // SAFETY: plain numeric types; reading them as bytes is always valid.
        unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, n) }.to_vec()
    }
    let flat = t.flatten_all()?;
    Ok(match t.dtype() {
        DType::F32 => bytes_of(flat.to_vec1::<f32>()?),
        DType::F64 => bytes_of(flat.to_vec1::<f64>()?),
        DType::F16 => bytes_of(flat.to_vec1::<half::f16>()?),
        DType::BF16 => bytes_of(flat.to_vec1::<half::bf16>()?),
        DType::I64 => bytes_of(flat.to_vec1::<i64>()?),
        DType::U32 => bytes_of(flat.to_vec1::<u32>()?),
        other => return Err(Error::dtype(format!("cannot save dtype {other:?}"))),
    })
}

/// Load every tensor of a safetensors file onto `device`, with the file's metadata.
pub fn load(
    path: &Path,
    device: &Device,
) -> Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let data = crate::io::open::read_regular(path)?;
    parse(&data, device).map_err(|e| match e {
        Error::Format(m) => Error::Format(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// Parse safetensors bytes (see [`load`]).
pub fn parse(
    data: &[u8],
    device: &Device,
) -> Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(data)
        .map_err(|e| Error::Format(format!("not a valid safetensors file ({e})")))?;
    let st = safetensors::SafeTensors::deserialize(data)
        .map_err(|e| Error::Format(format!("not a valid safetensors file ({e})")))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let dtype = from_st_dtype(view.dtype())?;
        let shape = view.shape().to_vec();
        let n = crate::alloc::checked_elems(&shape, dtype.size_in_bytes())
            .map_err(|e| Error::Format(format!("tensor {name}: {e}")))?;
        if view.data().len() != n * dtype.size_in_bytes() {
            return Err(Error::Format(format!(
                "tensor {name}: data size does not match its shape"
            )));
        }
        let t = Tensor::from_raw_buffer(view.data(), dtype, &shape, device)?;
        out.insert(name, t);
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// The longest header read or written (the `safetensors` crate's own limit).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The bytes of a `shape` tensor of `dtype` (None on overflow or a partial byte).
pub(crate) fn byte_size(dtype: StDtype, shape: &[usize]) -> Option<usize> {
    let elems = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
    let bits = elems.checked_mul(dtype.bitsize())?;
    (bits % 8 == 0).then_some(bits / 8)
}

/// One tensor given as its raw (little-endian) bytes, for [`save_raw`].
#[derive(Debug, Clone, Copy)]
pub struct RawTensor<'a> {
    /// The tensor's name in the file.
    pub name: &'a str,
    /// Its element type.
    pub dtype: StDtype,
    /// Its shape.
    pub shape: &'a [usize],
    /// Its elements' bytes, `shape.product() * dtype size` of them.
    pub data: &'a [u8],
}

/// Write `tensors` (in the order given) and `metadata` to `path` atomically, in the format of
/// [`save`], streaming each tensor's bytes from where they already are (a mapped file, a packed
/// quantized table) instead of assembling the whole file in memory first. Each tensor's byte
/// count must be that of its shape and dtype ([`Error::Shape`] otherwise, nothing written);
/// the header is built by the `safetensors` crate's own `Metadata`, padded to 8 bytes as that
/// crate pads it, and at most [`MAX_HEADER_BYTES`].
pub fn save_raw(
    path: &Path,
    tensors: &[RawTensor<'_>],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let mut infos = Vec::with_capacity(tensors.len());
    let mut offset = 0usize;
    for t in tensors {
        if byte_size(t.dtype, t.shape) != Some(t.data.len()) {
            return Err(Error::shape(format!(
                "tensor {}: {} bytes for shape {:?} of {:?}",
                t.name,
                t.data.len(),
                t.shape,
                t.dtype
            )));
        }
        let end = offset + t.data.len();
        let info = safetensors::tensor::TensorInfo {
            dtype: t.dtype,
            shape: t.shape.to_vec(),
            data_offsets: (offset, end),
        };
        infos.push((t.name.to_string(), info));
        offset = end;
    }
    let meta = safetensors::tensor::Metadata::new(Some(metadata), infos)
        .map_err(|e| Error::Format(format!("cannot build the header: {e}")))?;
    let mut header = serde_json::to_vec(&meta)
        .map_err(|e| Error::Format(format!("cannot serialize the header: {e}")))?;
    header.resize(header.len().next_multiple_of(8), b' ');
    if header.len() as u64 > MAX_HEADER_BYTES {
        return Err(Error::invalid(format!(
            "the names and metadata take {} bytes; safetensors headers hold at most {}",
            header.len(),
            MAX_HEADER_BYTES
        )));
    }
    write_atomic(path, |w| {
        let io = |e| Error::io(format!("cannot write {}", path.display()), e);
        w.write_all(&(header.len() as u64).to_le_bytes())
            .map_err(io)?;
        w.write_all(&header).map_err(io)?;
        for t in tensors {
            w.write_all(t.data).map_err(io)?;
        }
        Ok(())
    })
}
