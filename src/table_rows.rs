//! Where a table's rows live: a candle tensor (any device), or a `(V, D)` float tensor of a
//! safetensors file mapped into memory ([`crate::mmap`], CPU). Kernels reach the rows the
//! same way for both ([`TableRows::read`] / [`TableRows::write`], in place, under a lock that
//! orders writers against readers); a candle tensor of a mapped table exists only as a copy
//! ([`TableRows::to_tensor`] of all of it, [`TableRows::select`] of the rows a portable path
//! needs), since candle's storage cannot borrow memory it does not own.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use crate::alloc::{check_table_size, checked_elems, try_alloc_uninit};
use crate::dtype::{check_float, Float};
use crate::ids::{index_tensor, Id};
use crate::mmap::{cast_slice, cast_slice_mut, from_st_dtype, MapMode, MappedTensor};
use crate::{storage, with_float, Error, Result};

/// The storage of a `(V, D)` table.
#[derive(Debug, Clone)]
pub enum TableRows {
    /// A contiguous candle tensor on any device.
    Tensor(Tensor),
    /// A float tensor of a memory-mapped file, and its dtype.
    Mapped(Arc<MappedTensor>, DType),
}

impl TableRows {
    /// The rows of a mapped tensor, which must be a 2-D float tensor: `(rows, storage, dims)`.
    pub fn mapped(tensor: MappedTensor) -> Result<(TableRows, (usize, usize))> {
        let dtype = from_st_dtype(tensor.st_dtype())?;
        check_float(dtype)?;
        let &[rows, dim] = tensor.shape() else {
            return Err(Error::shape(format!(
                "weight must be 2-D (num_embeddings, embedding_dim), got shape {:?}",
                tensor.shape()
            )));
        };
        let table = TableRows::Mapped(Arc::new(tensor), dtype);
        // The typed view is checked once here (alignment, size), so kernels never meet a bad one.
        with_float!(dtype, T => table.read::<T, ()>(|_| ()))?;
        Ok((table, (rows, dim)))
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            TableRows::Tensor(t) => t.dtype(),
            TableRows::Mapped(_, dtype) => *dtype,
        }
    }

    /// The device (the CPU for a mapped table).
    pub fn device(&self) -> Device {
        match self {
            TableRows::Tensor(t) => t.device().clone(),
            TableRows::Mapped(..) => Device::Cpu,
        }
    }

    /// The mapping, for a mapped table.
    pub fn mapping(&self) -> Option<&Arc<MappedTensor>> {
        match self {
            TableRows::Mapped(m, _) => Some(m),
            TableRows::Tensor(_) => None,
        }
    }

    /// How the file is mapped, for a mapped table.
    pub fn map_mode(&self) -> Option<MapMode> {
        self.mapping().map(|m| m.mode())
    }

    /// Run `f` on the elements, row-major, of element type `T` (the table's), in place: the CPU
    /// tensor's storage or the mapped file (a tensor on another device is copied to the CPU
    /// first). A concurrent [`TableRows::write`] waits, so `f` never sees a row half-written.
    pub fn read<T: Float, R>(&self, f: impl FnOnce(&[T]) -> R) -> Result<R> {
        match self {
            TableRows::Tensor(t) if t.device().is_cpu() => storage::read::<T, R>(t, f),
            TableRows::Tensor(t) => storage::read::<T, R>(&t.to_device(&Device::Cpu)?, f),
            TableRows::Mapped(m, dtype) => {
                check_elem::<T>(*dtype)?;
                m.read_bytes(|b| cast_slice::<T>(b).map(f))
            }
        }
    }

    /// Run `f` on the elements, writable, excluding every reader while it runs. CPU tables only;
    /// a read-only mapping is an [`Error::InvalidArgument`] and `f` does not run.
    pub fn write<T: Float, R: Send>(
        &self,
        f: impl FnOnce(&mut [T]) -> Result<R> + Send,
    ) -> Result<R> {
        match self {
            TableRows::Tensor(t) => storage::write::<T, R>(t, f),
            TableRows::Mapped(m, dtype) => {
                check_elem::<T>(*dtype)?;
                m.write_bytes(|b| f(cast_slice_mut::<T>(b)?))
            }
        }
    }

    /// All `rows x dim` elements as a tensor: the tensor itself (shared storage), or for a mapped
    /// table a copy read from the file ([`Error::Memory`] when it cannot be allocated).
    pub fn to_tensor(&self, rows: usize, dim: usize) -> Result<Tensor> {
        match self {
            TableRows::Tensor(t) => Ok(t.clone()),
            TableRows::Mapped(_, dtype) => {
                let n = check_table_size(rows, dim, *dtype)?;
                with_float!(*dtype, T => {
                    let mut v = try_alloc_uninit::<T>(n)?;
                    self.read::<T, ()>(|src| v.copy_from_slice(src))?;
                    Ok(Tensor::from_vec(v, (rows, dim), &Device::Cpu)?)
                })
            }
        }
    }

    /// The rows `ids` (validated against `rows`) as a new `(ids.len(), dim)` tensor on the
    /// table's device: candle's `index_select` of a tensor; for a mapped table a plain copy of
    /// each row from the file.
    pub fn select<I: Id>(&self, ids: &[I], rows: usize, dim: usize) -> Result<Tensor> {
        match self {
            TableRows::Tensor(w) => Ok(w.index_select(&index_tensor(ids, rows, w.device())?, 0)?),
            TableRows::Mapped(_, dtype) => {
                let n = checked_elems(&[ids.len(), dim], dtype.size_in_bytes())?;
                with_float!(*dtype, T => {
                    let mut v = try_alloc_uninit::<T>(n)?;
                    self.read::<T, ()>(|t| {
                        for (dst, id) in v.chunks_exact_mut(dim.max(1)).zip(ids) {
                            let r = id.index() * dim;
                            dst.copy_from_slice(&t[r..r + dim]);
                        }
                    })?;
                    Ok(Tensor::from_vec(v, (ids.len(), dim), &Device::Cpu)?)
                })
            }
        }
    }

    /// Replace every element with `new`'s (same element count; converted to the table's dtype):
    /// a fresh tensor for a tensor table (`place` decides where it lives), in place in the file
    /// for a mapped one.
    pub fn replaced(
        &self,
        new: &Tensor,
        place: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<Self> {
        match self {
            TableRows::Tensor(old) => Ok(TableRows::Tensor(place(
                &new.to_dtype(old.dtype())?.to_device(old.device())?,
            )?)),
            TableRows::Mapped(_, dtype) => {
                let new = new
                    .to_dtype(*dtype)?
                    .to_device(&Device::Cpu)?
                    .contiguous()?;
                with_float!(*dtype, T => storage::read::<T, Result<()>>(&new, |src| {
                    self.write::<T, ()>(|dst| {
                        dst.copy_from_slice(src);
                        Ok(())
                    })
                })?)?;
                Ok(self.clone())
            }
        }
    }
}

/// A mapped table is read as its own element type only.
fn check_elem<T: Float>(dtype: DType) -> Result<()> {
    if dtype != T::DT {
        return Err(Error::dtype(format!(
            "internal: a {dtype:?} mapped table read as {:?}",
            T::DT
        )));
    }
    Ok(())
}
