//! Our kernels' fatbins and their loading.
//!
//! build.rs compiles each `src/kernels/cuda/<name>.cu` to `<name>.fatbin`: SASS for
//! `sm_$CUDA_COMPUTE_CAP` (default 90) plus PTX for `compute_$CUDA_COMPUTE_CAP`, which the
//! driver JIT-compiles on newer GPUs. A fatbin is loaded with `cuModuleLoadData` like PTX text,
//! but candle's `CudaDevice::get_or_load_custom_func` only takes PTX as a `&str` (it makes a C
//! string of it, which a binary image cannot be), so the modules are loaded here through
//! cudarc's `CudaContext::load_module` and kept once per CUDA context, the way candle keeps its
//! own. Kernels are then launched on candle's stream of the device, so they are ordered with
//! every candle op on the same tensors.

use std::sync::{Arc, Mutex};

use candle_core::cuda_backend::cudarc::driver::{CudaFunction, CudaModule};
use candle_core::cuda_backend::cudarc::nvrtc::Ptx;
use candle_core::cuda_backend::WrapErr;
use candle_core::CudaDevice;

/// One compiled kernel file.
pub struct Fatbin {
    /// The `.cu` file's stem.
    pub name: &'static str,
    /// The fatbin image, embedded in the library.
    pub image: &'static [u8],
}

macro_rules! fatbin {
    ($name:literal) => {
        Fatbin {
            name: $name,
            image: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".fatbin")),
        }
    };
}

pub const GATHER: Fatbin = fatbin!("gather");
pub const SCATTER: Fatbin = fatbin!("scatter");
pub const BAG: Fatbin = fatbin!("bag");
pub const OPTIM: Fatbin = fatbin!("optim");
pub const ROPE: Fatbin = fatbin!("rope");

/// Every kernel file, for checks that cover them all.
#[cfg(test)]
pub const ALL: [&Fatbin; 5] = [&GATHER, &SCATTER, &BAG, &OPTIM, &ROPE];

/// A loaded module: (CUDA context handle, file stem, module). The module holds its context
/// alive, so the handle cannot be reused by another context while the entry exists.
type Loaded = (usize, &'static str, Arc<CudaModule>);

static LOADED: Mutex<Vec<Loaded>> = Mutex::new(Vec::new());

/// The kernel `name` of `file`, loading the file's module into `dev`'s context on first use.
pub fn function(
    dev: &CudaDevice,
    file: &'static Fatbin,
    name: &str,
) -> candle_core::Result<CudaFunction> {
    let stream = dev.cuda_stream();
    let ctx = stream.context();
    let key = ctx.cu_ctx() as usize;
    // A poisoned lock only means another thread panicked while loading; the list is still valid.
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    let module = match loaded.iter().find(|(c, n, _)| *c == key && *n == file.name) {
        Some((_, _, m)) => m.clone(),
        None => {
            let m = ctx.load_module(Ptx::from_binary(file.image.to_vec())).w()?;
            loaded.push((key, file.name, m.clone()));
            m
        }
    };
    drop(loaded);
    module.load_function(name).w()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries of a fatbin image: `(kind, sm)` with kind 1 = PTX, 2 = ELF (SASS), in the
    /// layout `fatbinary` writes (a 16-byte header with magic `0xBA55ED50`, then entries, each a
    /// header of `header_size` bytes followed by `padded_size` bytes of payload); `None` for a
    /// malformed image.
    fn fatbin_entries(image: &[u8]) -> Option<Vec<(u16, u32)>> {
        let u16_at = |o: usize| Some(u16::from_le_bytes(image.get(o..o + 2)?.try_into().ok()?));
        let u32_at = |o: usize| Some(u32::from_le_bytes(image.get(o..o + 4)?.try_into().ok()?));
        let u64_at = |o: usize| Some(u64::from_le_bytes(image.get(o..o + 8)?.try_into().ok()?));
        if u32_at(0)? != 0xBA55_ED50 {
            return None;
        }
        let header = usize::from(u16_at(6)?);
        let end = header.checked_add(usize::try_from(u64_at(8)?).ok()?)?;
        if end > image.len() {
            return None;
        }
        let mut entries = Vec::new();
        let mut at = header;
        while at < end {
            let (kind, entry_header) = (u16_at(at)?, usize::try_from(u32_at(at + 4)?).ok()?);
            if entry_header == 0 {
                return None;
            }
            let padded = usize::try_from(u32_at(at + 8)?).ok()?;
            entries.push((kind, u32_at(at + 28)?));
            at = at.checked_add(entry_header)?.checked_add(padded)?;
        }
        Some(entries)
    }

    /// The build embeds, for every kernel file, SASS and PTX for the configured compute
    /// capability (default 90): the SASS is what an H100/H200 runs with no JIT step, the PTX is
    /// what newer GPUs JIT-compile.
    #[test]
    fn every_fatbin_has_sass_and_ptx_for_the_target() {
        let cap: u32 = env!("CANDLE_EMBED_CUDA_CAP").parse().unwrap();
        for file in ALL {
            let entries = fatbin_entries(file.image)
                .unwrap_or_else(|| panic!("{}.fatbin is not a fatbin", file.name));
            assert!(entries.contains(&(2, cap)), "{}: {entries:?}", file.name);
            assert!(entries.contains(&(1, cap)), "{}: {entries:?}", file.name);
        }
    }

    #[test]
    fn malformed_images_are_rejected() {
        assert_eq!(fatbin_entries(b""), None);
        assert_eq!(fatbin_entries(b"not a fatbin at all"), None);
        let mut truncated = GATHER.image[..64].to_vec();
        assert_eq!(fatbin_entries(&truncated), None);
        truncated[8..16].copy_from_slice(&0u64.to_le_bytes());
        assert_eq!(fatbin_entries(&truncated), Some(vec![]));
    }
}
