//! Launch plumbing shared by the CUDA launchers: dtype suffixes, raw device pointers of candle
//! storages, candle custom ops that hand a kernel its input or in-place target, uploads of host
//! plans, and launch shapes.
//!
//! Kernels take raw device pointers (`u64`) rather than typed slices: one launcher then serves
//! every dtype, the kernel being picked by name suffix. A pointer is read while the tensor that
//! owns the storage is borrowed by the launcher, so the allocation outlives the launch; every
//! kernel runs on candle's stream of the device, after the ops that produced its inputs.

use candle_core::cuda_backend::cudarc::driver::{
    CudaFunction, CudaSlice, DevicePtr, DeviceRepr, LaunchArgs, LaunchConfig,
};
use candle_core::cuda_backend::CudaStorageSlice;
use candle_core::{
    CpuStorage, CudaDevice, CudaStorage, CustomOp1, DType, InplaceOp1, Layout, Shape, Storage,
    Tensor,
};

use super::module::{self, Fatbin};
use crate::{bail_invalid, bail_shape, Error, Result};

/// candle's result, which custom ops return.
pub type CResult<T> = candle_core::Result<T>;

/// The kernel-name suffix of a float dtype (`ce_rope_f32`, ...).
pub fn suffix(dtype: DType) -> Result<&'static str> {
    Ok(match dtype {
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        other => {
            return Err(Error::dtype(format!(
                "CUDA kernels take float32, float64, float16 or bfloat16 tensors, not {other:?}"
            )))
        }
    })
}

/// The CUDA device a tensor lives on.
pub fn cuda_device(t: &Tensor) -> Result<CudaDevice> {
    match t.device() {
        candle_core::Device::Cuda(d) => Ok(d.clone()),
        other => Err(Error::UnsupportedDevice {
            device: crate::device::device_name(other),
            reason: "this kernel runs on CUDA tensors only".into(),
        }),
    }
}

/// A kernel of one of our fatbins with a launch builder on candle's stream of `dev`.
pub struct Kernel {
    func: CudaFunction,
    stream: std::sync::Arc<candle_core::cuda_backend::cudarc::driver::CudaStream>,
}

impl Kernel {
    pub fn new(dev: &CudaDevice, file: &'static Fatbin, name: &str) -> CResult<Self> {
        Ok(Kernel {
            func: module::function(dev, file, name)?,
            stream: dev.cuda_stream(),
        })
    }

    pub fn builder(&self) -> LaunchArgs<'_> {
        self.stream.launch_builder(&self.func)
    }
}

/// The device address of element `offset` of a float or id storage.
pub fn ptr_of(s: &CudaStorageSlice, offset: usize) -> CResult<u64> {
    fn at<T: DeviceRepr>(v: &CudaSlice<T>, offset: usize) -> u64 {
        dev_ptr(v) + (offset * std::mem::size_of::<T>()) as u64
    }
    Ok(match s {
        CudaStorageSlice::F32(v) => at(v, offset),
        CudaStorageSlice::F64(v) => at(v, offset),
        CudaStorageSlice::F16(v) => at(v, offset),
        CudaStorageSlice::BF16(v) => at(v, offset),
        CudaStorageSlice::U32(v) => at(v, offset),
        CudaStorageSlice::I64(v) => at(v, offset),
        _ => candle_core::bail!("candle-embed CUDA kernels: unsupported storage dtype"),
    })
}

/// The device address of a slice. The guard cudarc returns records, when dropped, that the
/// stream used the slice; all our work is on that one stream, so dropping it at once is sound.
pub fn dev_ptr<T: DeviceRepr>(s: &CudaSlice<T>) -> u64 {
    let (ptr, _guard) = s.device_ptr(s.stream());
    ptr
}

fn contiguous_start(l: &Layout) -> CResult<usize> {
    match l.contiguous_offsets() {
        Some((start, _)) => Ok(start),
        None => candle_core::bail!("candle-embed CUDA kernels need contiguous tensors"),
    }
}

/// Read access to a CUDA tensor's storage: (storage, element offset of a contiguous layout).
pub fn with_read<R>(t: &Tensor, f: impl FnOnce(&CudaStorage, usize) -> CResult<R>) -> Result<R> {
    let (s, l) = t.storage_and_layout();
    match &*s {
        Storage::Cuda(c) => Ok(f(c, contiguous_start(l)?)?),
        _ => Err(Error::invalid("expected a CUDA tensor")),
    }
}

/// The device address of a contiguous CUDA tensor's first element.
pub fn tensor_ptr(t: &Tensor) -> Result<u64> {
    with_read(t, |s, off| ptr_of(&s.slice, off))
}

/// A custom op producing a fresh output from the storage of the tensor it is applied to.
pub struct Produce<F>(pub F);
impl<F: Fn(&CudaStorage, usize) -> CResult<(CudaStorage, Shape)>> CustomOp1 for Produce<F> {
    fn name(&self) -> &'static str {
        "candle-embed-cuda"
    }
    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> CResult<(CpuStorage, Shape)> {
        candle_core::bail!("candle-embed CUDA kernel applied to a CPU tensor")
    }
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> CResult<(CudaStorage, Shape)> {
        (self.0)(s, contiguous_start(l)?)
    }
}

/// A custom op mutating the storage of the tensor it is applied to.
pub struct Mutate<F>(pub F);
impl<F: Fn(&mut CudaStorage, usize) -> CResult<()>> InplaceOp1 for Mutate<F> {
    fn name(&self) -> &'static str {
        "candle-embed-cuda-inplace"
    }
    fn cpu_fwd(&self, _: &mut CpuStorage, _: &Layout) -> CResult<()> {
        candle_core::bail!("candle-embed CUDA kernel applied to a CPU tensor")
    }
    fn cuda_fwd(&self, s: &mut CudaStorage, l: &Layout) -> CResult<()> {
        (self.0)(s, contiguous_start(l)?)
    }
}

/// An uninitialised output of `n` elements of `dtype` and its address. Every caller's kernel
/// writes all `n` elements before the tensor is read.
pub fn alloc_output(dev: &CudaDevice, dtype: DType, n: usize) -> CResult<(CudaStorage, u64)> {
    fn wrap<T: DeviceRepr>(
        s: CudaSlice<T>,
        f: fn(CudaSlice<T>) -> CudaStorageSlice,
    ) -> (CudaStorageSlice, u64) {
        let p = dev_ptr(&s);
        (f(s), p)
    }
    let n = n.max(1);
    // SAFETY: uninitialised device memory is only handed to kernels that overwrite all of it.
    let (slice, ptr) = unsafe {
        match dtype {
            DType::F32 => wrap(dev.alloc::<f32>(n)?, CudaStorageSlice::F32),
            DType::F64 => wrap(dev.alloc::<f64>(n)?, CudaStorageSlice::F64),
            DType::F16 => wrap(dev.alloc::<half::f16>(n)?, CudaStorageSlice::F16),
            DType::BF16 => wrap(dev.alloc::<half::bf16>(n)?, CudaStorageSlice::BF16),
            _ => candle_core::bail!("unsupported dtype {dtype:?}"),
        }
    };
    let storage = CudaStorage {
        slice,
        device: dev.clone(),
    };
    Ok((storage, ptr))
}

/// Host weights in the kernels' accumulator precision (f64 for f64 tensors, else f32).
pub enum AccBuf {
    F32(CudaSlice<f32>),
    F64(CudaSlice<f64>),
}

impl AccBuf {
    pub fn upload(dev: &CudaDevice, dtype: DType, w: &[f64]) -> CResult<Self> {
        Ok(if dtype == DType::F64 {
            AccBuf::F64(upload(dev, w)?)
        } else {
            let v: Vec<f32> = w.iter().map(|&x| x as f32).collect();
            AccBuf::F32(upload(dev, &v)?)
        })
    }

    pub fn ptr(&self) -> u64 {
        match self {
            AccBuf::F32(s) => dev_ptr(s),
            AccBuf::F64(s) => dev_ptr(s),
        }
    }
}

/// Copy a host slice to the device; an empty one becomes one zero element, so every kernel
/// argument is a valid address (the kernels read none of it).
pub fn upload<T: DeviceRepr + Default + Copy + 'static>(
    dev: &CudaDevice,
    v: &[T],
) -> CResult<CudaSlice<T>> {
    if v.is_empty() {
        dev.clone_htod(&[T::default()][..])
    } else {
        dev.clone_htod(v)
    }
}

/// Blocks for `n` units of work, capped: the kernels loop grid-stride over the rest.
pub fn grid(n: usize) -> u32 {
    n.clamp(1, 65_535 * 16) as u32
}

/// One block per row with threads over the row's `dim` columns.
pub fn row_cfg(rows: usize, dim: usize) -> LaunchConfig {
    let threads = dim.next_power_of_two().clamp(32, 256) as u32;
    LaunchConfig {
        grid_dim: (grid(rows), 1, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// `(rows, cols)` of a 2-D tensor.
pub fn dims2(t: &Tensor, what: &str) -> Result<(usize, usize)> {
    match t.dims() {
        [a, b] => Ok((*a, *b)),
        d => bail_shape!("{what} must be 2-D, got shape {d:?}"),
    }
}

/// A size as the kernels' `u32` argument.
pub fn u32_len(n: usize, what: &str) -> Result<u32> {
    u32::try_from(n)
        .map_err(|_| Error::invalid(format!("{what} {n} exceeds the kernels' u32 range")))
}

/// Two tensors on one device with one dtype.
pub fn check_same_device(a: &Tensor, b: &Tensor) -> Result<()> {
    if !a.device().same_device(b.device()) {
        bail_invalid!("tensors are on different devices");
    }
    if a.dtype() != b.dtype() {
        return Err(Error::dtype(format!(
            "dtype mismatch: {:?} vs {:?}",
            a.dtype(),
            b.dtype()
        )));
    }
    Ok(())
}
