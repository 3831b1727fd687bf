//! Memory-mapped safetensors files: a tensor's rows read (and, on request, written) in place in
//! the file, so a table larger than the machine's memory can be looked up. Nothing is read up
//! front: the operating system pages rows in when a kernel touches them and may drop them again
//! under memory pressure (clean pages of a file mapping cost no swap).
//!
//! # Modes (NumPy's `numpy.memmap` names; gensim's `mmap='r'`)
//! - [`MapMode::ReadOnly`] (`"r"`): the pages are mapped read-only; every write is refused with
//!   an error before anything is touched.
//! - [`MapMode::ReadWrite`] (`"r+"`): a shared writable mapping: writes reach the file (the OS
//!   writes dirty pages back; [`MappedTensor::flush`] forces it).
//! - [`MapMode::CopyOnWrite`] (`"c"`): a private writable mapping: writes stay in this process's
//!   memory (each written page is copied once) and the file is never changed.
//!
//! # Validation before mapping anything
//! The file must be a regular file (a FIFO or a device is refused, and opened without blocking),
//! and its header must describe exactly the file's length (the `safetensors` crate checks that the
//! tensors' byte ranges are contiguous and cover the file to its last byte). A truncated or
//! corrupted file is therefore an [`Error::Format`] here, never a `SIGBUS` later. Each tensor's
//! data must be aligned for its element type (every file written by the safetensors library
//! pads its header to 8 bytes, so single-tensor files always are).
//!
//! # What remains the caller's responsibility
//! A mapping shows the file as it is *now*. If another process truncates the file while it is
//! mapped, touching a page past the new end raises `SIGBUS` (no library using `mmap` can
//! prevent that: NumPy, safetensors and gensim share it); if it rewrites the file in place, the
//! rows change under the reader. Replacing the file with a new one (write elsewhere, then
//! rename over it, as this crate's `save` does) is safe: the mapping keeps the old file alive.
//!
//! # Locking
//! Readers take a shared lock, writers (an optimizer step, `max_norm`, assigning rows) an
//! exclusive one, per mapped tensor: a lookup sees each row before or after a step, never torn,
//! as with in-memory tables (candle's storage lock).

use std::any::TypeId;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use memmap2::{Mmap, MmapMut, MmapOptions};
use safetensors::tensor::{Dtype as StDtype, Metadata};

use candle_core::DType;

use crate::{Error, Result};

/// How a file is mapped (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapMode {
    /// `"r"`: read-only.
    ReadOnly,
    /// `"r+"`: writable, writes reach the file.
    ReadWrite,
    /// `"c"`: writable, writes stay private to this process (copy-on-write).
    CopyOnWrite,
}

impl MapMode {
    /// Parse NumPy's mode names `"r"`, `"r+"`, `"c"`.
    pub fn parse(s: &str) -> Result<MapMode> {
        match s {
            "r" => Ok(MapMode::ReadOnly),
            "r+" => Ok(MapMode::ReadWrite),
            "c" => Ok(MapMode::CopyOnWrite),
            other => Err(Error::invalid(format!(
                "mmap must be False, True, 'r' (read-only), 'r+' (writes go to the file) or 'c' \
                 (copy-on-write), got '{other}'"
            ))),
        }
    }

    /// The mode's name (`"r"`, `"r+"`, `"c"`).
    pub fn name(self) -> &'static str {
        match self {
            MapMode::ReadOnly => "r",
            MapMode::ReadWrite => "r+",
            MapMode::CopyOnWrite => "c",
        }
    }

    /// Whether rows may be written through the mapping.
    pub fn is_writable(self) -> bool {
        self != MapMode::ReadOnly
    }
}

/// The mapping itself; kept alive (and unmapped on drop) by every tensor viewing it.
enum Map {
    Read(Mmap),
    Write(MmapMut),
}

/// A whole safetensors file mapped into memory, its header parsed and checked.
pub struct MappedFile {
    /// Start of the mapping (`len` bytes). Derived from `map`, which owns the mapping; writable
    /// only when `mode` is.
    ptr: *mut u8,
    len: usize,
    mode: MapMode,
    path: PathBuf,
    header_len: usize,
    metadata: Metadata,
    map: Map,
}

// SAFETY: `ptr` points into the mapping owned by `map` (which is Send + Sync); every access
// through it goes through a `MappedTensor`, whose lock orders writes against reads.
unsafe impl Send for MappedFile {}
unsafe impl Sync for MappedFile {}

impl std::fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedFile")
            .field("path", &self.path)
            .field("len", &self.len)
            .field("mode", &self.mode)
            .finish()
    }
}

/// Open `path` for mapping in `mode`: a regular file only, opened without blocking (opening a
/// FIFO for reading would otherwise wait for a writer).
fn open_regular(path: &Path, mode: MapMode) -> Result<File> {
    let ctx = |what: &str| format!("cannot {what} {}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| Error::io(ctx("open"), e))?;
    if !meta.is_file() {
        return Err(Error::invalid(format!(
            "{} is not a regular file: only files can be memory-mapped",
            path.display()
        )));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(mode == MapMode::ReadWrite);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| Error::io(ctx("open"), e))?;
    // The path may have been replaced between the two checks: judge the file actually opened.
    let opened = file.metadata().map_err(|e| Error::io(ctx("stat"), e))?;
    if !opened.is_file() {
        return Err(Error::invalid(format!(
            "{} is not a regular file: only files can be memory-mapped",
            path.display()
        )));
    }
    Ok(file)
}

impl MappedFile {
    /// Map the safetensors file at `path` in `mode` and check its header against its length
    /// (see the module docs). Reads the header's pages only.
    pub fn open(path: &Path, mode: MapMode) -> Result<Arc<MappedFile>> {
        if cfg!(target_endian = "big") {
            return Err(Error::invalid(
                "memory-mapped tables need a little-endian machine (safetensors stores little-endian)",
            ));
        }
        let file = open_regular(path, mode)?;
        let bad = |m: String| Error::Format(format!("{}: {m}", path.display()));
        let size = file
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
            .len();
        if size < 8 {
            return Err(bad(format!(
                "not a valid safetensors file ({size} bytes, shorter than its 8-byte header length)"
            )));
        }
        let len = usize::try_from(size).map_err(|_| {
            Error::Memory(format!("{}: {size} bytes cannot be mapped", path.display()))
        })?;
        let mapped = |e: std::io::Error| Error::io(format!("cannot map {}", path.display()), e);
        // SAFETY: mapping a file is sound as long as nobody truncates or rewrites it while it is
        // mapped; that is documented as the caller's responsibility (module docs), as for every
        // mmap user. The length is the file's current one, so no page lies past its end.
        let (map, ptr) = unsafe {
            let mut opts = MmapOptions::new();
            opts.len(len);
            match mode {
                MapMode::ReadOnly => {
                    let m = opts.map(&file).map_err(mapped)?;
                    let p = m.as_ptr() as *mut u8;
                    (Map::Read(m), p)
                }
                MapMode::ReadWrite => {
                    let mut m = opts.map_mut(&file).map_err(mapped)?;
                    let p = m.as_mut_ptr();
                    (Map::Write(m), p)
                }
                MapMode::CopyOnWrite => {
                    let mut m = opts.map_copy(&file).map_err(mapped)?;
                    let p = m.as_mut_ptr();
                    (Map::Write(m), p)
                }
            }
        };
        advise_random(&map);
        // SAFETY: `ptr` is the start of the `len`-byte mapping owned by `map`.
        let all = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
        let (header_len, metadata) = safetensors::SafeTensors::read_metadata(all)
            .map_err(|e| bad(format!("not a valid safetensors file ({e})")))?;
        Ok(Arc::new(MappedFile {
            ptr,
            len,
            mode,
            path: path.to_path_buf(),
            header_len,
            metadata,
            map,
        }))
    }

    /// The mode the file was mapped in.
    pub fn mode(&self) -> MapMode {
        self.mode
    }

    /// The path the file was mapped from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header's free-form string metadata (`__metadata__`).
    pub fn metadata(&self) -> HashMap<String, String> {
        self.metadata.metadata().clone().unwrap_or_default()
    }

    /// The tensor `name` as a view of the mapping, or [`Error::Format`] when the file has none.
    pub fn tensor(self: &Arc<Self>, name: &str) -> Result<MappedTensor> {
        let info = self.metadata.info(name).ok_or_else(|| {
            Error::Format(format!("{}: no tensor named '{name}'", self.path.display()))
        })?;
        let (start, end) = info.data_offsets;
        // `read_metadata` checked that the ranges are contiguous and end at the file's end.
        let offset = 8 + self.header_len + start;
        debug_assert!(offset + (end - start) <= self.len);
        Ok(MappedTensor {
            file: Arc::clone(self),
            offset,
            bytes: end - start,
            dtype: info.dtype,
            shape: info.shape.clone(),
            lock: RwLock::new(()),
        })
    }
}

/// Tell the OS that rows are read at random: no read-ahead around each touched page, so a
/// lookup pulls in the rows it needs and little else (best effort).
fn advise_random(map: &Map) {
    #[cfg(unix)]
    {
        let _ = match map {
            Map::Read(m) => m.advise(memmap2::Advice::Random),
            Map::Write(m) => m.advise(memmap2::Advice::Random),
        };
    }
    #[cfg(not(unix))]
    let _ = map;
}

/// One tensor of a mapped file: its bytes in place, its dtype and shape from the header.
#[derive(Debug)]
pub struct MappedTensor {
    file: Arc<MappedFile>,
    offset: usize,
    bytes: usize,
    dtype: StDtype,
    shape: Vec<usize>,
    lock: RwLock<()>,
}

impl MappedTensor {
    /// The file this tensor lives in.
    pub fn file(&self) -> &MappedFile {
        &self.file
    }
    /// The element type, as the header names it.
    pub fn st_dtype(&self) -> StDtype {
        self.dtype
    }
    /// The shape, as the header gives it.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// The mode the file was mapped in.
    pub fn mode(&self) -> MapMode {
        self.file.mode
    }

    /// Run `f` on the tensor's bytes, in place, under the shared lock.
    pub fn read_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        let _guard = self.lock.read().unwrap_or_else(|e| e.into_inner());
        // SAFETY: `offset..offset + bytes` lies inside the mapping (checked against the file's
        // length when the header was read), which `self.file` keeps alive; writers hold the
        // exclusive lock, so nothing changes these bytes while `f` reads them.
        f(unsafe { std::slice::from_raw_parts(self.file.ptr.add(self.offset), self.bytes) })
    }

    /// Run `f` on the tensor's bytes, writable, under the exclusive lock. A read-only mapping is
    /// an [`Error::InvalidArgument`] and `f` does not run.
    pub fn write_bytes<R>(&self, f: impl FnOnce(&mut [u8]) -> Result<R>) -> Result<R> {
        if !self.file.mode.is_writable() {
            return Err(Error::invalid(format!(
                "{} is memory-mapped read-only (mmap='r'); load it with mmap='r+' (writes go to \
                 the file) or mmap='c' (writes stay in memory) to change it",
                self.file.path.display()
            )));
        }
        let _guard = self.lock.write().unwrap_or_else(|e| e.into_inner());
        // SAFETY: as in `read_bytes`; the mapping is writable (mode checked above) and the
        // exclusive lock makes this the only access to these bytes while `f` runs.
        f(unsafe { std::slice::from_raw_parts_mut(self.file.ptr.add(self.offset), self.bytes) })
    }

    /// Write dirty pages of a `"r+"` mapping back to the file now (`msync`); a no-op for the
    /// other modes.
    pub fn flush(&self) -> Result<()> {
        match &self.file.map {
            Map::Write(m) if self.file.mode == MapMode::ReadWrite => m
                .flush()
                .map_err(|e| Error::io(format!("cannot flush {}", self.file.path.display()), e)),
            _ => Ok(()),
        }
    }
}

/// Whether `T` is one of the plain number types every bit pattern of which is a valid value
/// (so bytes from a file may be read as `T`).
fn is_plain<T: 'static>() -> bool {
    let t = TypeId::of::<T>();
    [
        TypeId::of::<u8>(),
        TypeId::of::<f32>(),
        TypeId::of::<f64>(),
        TypeId::of::<half::f16>(),
        TypeId::of::<half::bf16>(),
    ]
    .contains(&t)
}

/// Check that `bytes` can be viewed as elements of `T`: a plain number type, a whole number of
/// elements, aligned.
fn check_view<T: 'static>(ptr: *const u8, len: usize) -> Result<usize> {
    let size = std::mem::size_of::<T>();
    if !is_plain::<T>() || len % size != 0 || (ptr as usize) % std::mem::align_of::<T>() != 0 {
        return Err(Error::Format(format!(
            "mapped tensor data ({len} bytes) cannot be read as {size}-byte elements: its offset \
             in the file is not aligned (load the file without mmap)"
        )));
    }
    Ok(len / size)
}

/// `bytes` viewed as elements of `T` (u8, f16, bf16, f32 or f64), without a copy.
pub fn cast_slice<T: 'static>(bytes: &[u8]) -> Result<&[T]> {
    let n = check_view::<T>(bytes.as_ptr(), bytes.len())?;
    // SAFETY: `T` is a plain number type (every bit pattern valid), the pointer is aligned for
    // it and the slice holds exactly `n` of them; the lifetime is the input's.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const T, n) })
}

/// [`cast_slice`] for writing.
pub fn cast_slice_mut<T: 'static>(bytes: &mut [u8]) -> Result<&mut [T]> {
    let n = check_view::<T>(bytes.as_ptr(), bytes.len())?;
    // SAFETY: as in `cast_slice`; the borrow is exclusive and so is the result.
    Ok(unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr() as *mut T, n) })
}

/// A safetensors dtype as candle's (the dtypes this crate loads, mapped or
/// read: `io::safetensors` uses it too), or [`Error::Format`].
pub fn from_st_dtype(d: StDtype) -> Result<DType> {
    Ok(match d {
        StDtype::F32 => DType::F32,
        StDtype::F64 => DType::F64,
        StDtype::F16 => DType::F16,
        StDtype::BF16 => DType::BF16,
        StDtype::I64 => DType::I64,
        StDtype::U32 => DType::U32,
        other => {
            return Err(Error::Format(format!(
                "unsupported dtype {other:?} in file"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_by_numpy_names() {
        for m in [MapMode::ReadOnly, MapMode::ReadWrite, MapMode::CopyOnWrite] {
            assert_eq!(MapMode::parse(m.name()).unwrap(), m);
        }
        assert!(matches!(
            MapMode::parse("w+"),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn views_need_plain_aligned_whole_elements() {
        let v = [1.5f32, -2.0, 3.25];
        let bytes: &[u8] = unsafe {
            std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(&v))
        };
        assert_eq!(cast_slice::<f32>(bytes).unwrap(), &v);
        assert!(cast_slice::<f32>(&bytes[1..5]).is_err()); // misaligned
        assert!(cast_slice::<f32>(&bytes[..6]).is_err()); // not whole elements
        assert!(cast_slice::<u32>(bytes).is_err()); // not a type we read from files
    }
}
