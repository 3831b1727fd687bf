//! Zero-copy access to the elements of a contiguous CPU tensor.
//!
//! Reads go through `Tensor::storage_and_layout` (candle's read lock on the storage); writes go
//! through candle's `InplaceOp1` (its write lock). A kernel that reads a table therefore never
//! sees a row half-written by an optimizer step running in another thread: the two serialize on
//! candle's own storage lock. Never nest a write inside a read of the same tensor (deadlock).

use std::sync::Mutex;

use candle_core::{CpuStorage, InplaceOp1, Layout, Storage, Tensor};

use crate::dtype::Float;
use crate::{Error, Result};

fn contiguous_range(layout: &Layout) -> Result<(usize, usize)> {
    layout
        .contiguous_offsets()
        .ok_or_else(|| Error::invalid("internal: tensor is not contiguous"))
}

/// Run `f` on the elements of a contiguous CPU tensor of element type `T`.
pub fn read<T: Float, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let (start, end) = contiguous_range(layout)?;
    match &*storage {
        Storage::Cpu(cpu) => {
            let all = cpu.as_slice::<T>()?;
            Ok(f(&all[start..end]))
        }
        _ => Err(Error::invalid("internal: storage::read needs a CPU tensor")),
    }
}

type Body<'a> = Box<dyn FnOnce(&mut CpuStorage, &Layout) -> Result<()> + Send + 'a>;

struct Mutate<'a> {
    body: Mutex<Option<Body<'a>>>,
    error: Mutex<Option<Error>>,
}

impl InplaceOp1 for Mutate<'_> {
    fn name(&self) -> &'static str {
        "candle-embed-mutate"
    }
    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let body = self.body.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(body) = body {
            if let Err(e) = body(storage, layout) {
                *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
            }
        }
        Ok(())
    }
}

/// Run `f` on the mutable elements of a contiguous CPU tensor of element type `T`, in place.
/// Every clone of the tensor sees the change (they share storage).
pub fn write<T: Float, R: Send>(
    t: &Tensor,
    f: impl FnOnce(&mut [T]) -> Result<R> + Send,
) -> Result<R> {
    if !t.device().is_cpu() {
        return Err(Error::invalid(
            "internal: storage::write needs a CPU tensor",
        ));
    }
    let mut out: Option<R> = None;
    {
        let slot = &mut out;
        let op = Mutate {
            body: Mutex::new(Some(Box::new(move |s: &mut CpuStorage, l: &Layout| {
                let (start, end) = contiguous_range(l)?;
                let all = T::storage_mut(s)
                    .ok_or_else(|| Error::invalid("internal: storage dtype mismatch"))?;
                *slot = Some(f(&mut all[start..end])?);
                Ok(())
            }))),
            error: Mutex::new(None),
        };
        t.inplace_op1(&op)?;
        if let Some(e) = op.error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
    }
    out.ok_or_else(|| Error::invalid("internal: in-place body did not run"))
}

/// Copy a tensor of `out.len()` elements (any device, any float dtype, any shape) into `out`,
/// converted to `T`: how a fast path that writes into a caller's buffer hands over the result
/// of its portable fallback on other devices.
pub fn copy_into<T: Float>(t: &Tensor, out: &mut [T]) -> Result<()> {
    if t.elem_count() != out.len() {
        return Err(Error::Shape(format!(
            "a result of {} elements does not fit an output of {}",
            t.elem_count(),
            out.len()
        )));
    }
    let v = t.to_dtype(T::DT)?.flatten_all()?.to_vec1::<T>()?;
    out.copy_from_slice(&v);
    Ok(())
}
