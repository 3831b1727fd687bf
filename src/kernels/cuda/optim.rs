//! Sparse optimizer steps on CUDA: each updates the table (and its state) on the rows of a
//! coalesced [`SparseGrad`] only, in place, one block per gradient row. Rows are unique (a
//! `SparseGrad` invariant), so no two blocks touch the same row.
//!
//! Not wired into `crate::optim`: its optimizers keep their state on the host and step a CUDA
//! table through it (`optim::touched`), with every option (dampening, Nesterov, `maximize`,
//! stochastic rounding, AdamW's decay) bit-identical to the CPU. These kernels cover the base
//! rules only (SGD with momentum and weight decay, Adagrad, row-wise Adagrad, SparseAdam) on
//! state tensors that live on the device; they are tested against float64 formulas
//! (tests/cuda.rs) and timed (bench `gpu_kernels`), for the day the optimizers keep device
//! state. References: the CPU rules in `crate::optim` (PyTorch's and FBGEMM's formulas).

use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Tensor};

use super::launch::{
    check_same_device, cuda_device, dev_ptr, dims2, ptr_of, row_cfg, suffix, tensor_ptr, u32_len,
    upload, Kernel, Mutate,
};
use super::module::OPTIM;
use crate::{bail_invalid, bail_shape, Result, SparseGrad};

fn check_state(weight: &Tensor, state: &Tensor, shape: &[usize], what: &str) -> Result<()> {
    check_same_device(weight, state)?;
    if state.dims() != shape {
        bail_shape!("{what} has shape {:?}, expected {shape:?}", state.dims());
    }
    if !state.is_contiguous() {
        bail_invalid!("{what} must be contiguous");
    }
    Ok(())
}

/// One row-update launch: kernel arguments `(w, states.., [flag], rows, grad, nnz, dim,
/// scalars..)`; `weight` and `states` are updated in place on the rows of `grad` only.
struct RowUpdate<'a> {
    kernel: &'static str,
    states: &'a [Option<&'a Tensor>],
    flag: Option<u32>,
    scalars: &'a [f64],
    /// Threads per block when the kernel needs a fixed count (its shared-memory reduction).
    threads: Option<u32>,
}

impl RowUpdate<'_> {
    fn run(&self, weight: &Tensor, grad: &SparseGrad) -> Result<()> {
        let (rows, dim) = dims2(weight, "weight")?;
        if grad.num_rows() != rows || (grad.nnz() > 0 && grad.dim() != dim) {
            bail_shape!(
                "gradient of shape {:?} for a table of shape ({rows}, {dim})",
                grad.shape()
            );
        }
        if grad.nnz() == 0 || dim == 0 {
            return Ok(());
        }
        if !weight.is_contiguous() {
            bail_invalid!("weight must be contiguous");
        }
        check_same_device(weight, grad.values())?;
        let dev = cuda_device(weight)?;
        let name = format!("{}_{}", self.kernel, suffix(weight.dtype())?);
        let values = grad.values().contiguous()?;
        let (nnz, dim32) = (u32_len(grad.nnz(), "rows")?, u32_len(dim, "embedding_dim")?);
        let g_p = tensor_ptr(&values)?;
        // The states are tensors distinct from the weight, borrowed for this whole call, so
        // their addresses stay valid through the launch. `None` is an unused slot (null).
        let mut state_ps = Vec::with_capacity(self.states.len());
        for s in self.states {
            state_ps.push(match s {
                Some(t) => tensor_ptr(t)?,
                None => 0u64,
            });
        }
        let mut cfg = row_cfg(grad.nnz(), dim);
        if let Some(t) = self.threads {
            cfg.block_dim = (t, 1, 1);
        }
        weight.inplace_op1(&Mutate(|w: &mut CudaStorage, off: usize| {
            let rows_d = upload(&dev, grad.indices())?;
            let (w_p, rows_p) = (ptr_of(&w.slice, off)?, dev_ptr(&rows_d));
            let kernel = Kernel::new(&dev, &OPTIM, &name)?;
            let mut b = kernel.builder();
            b.arg(&w_p);
            for p in &state_ps {
                b.arg(p);
            }
            if let Some(flag) = &self.flag {
                b.arg(flag);
            }
            b.arg(&rows_p).arg(&g_p).arg(&nnz).arg(&dim32);
            for x in self.scalars {
                b.arg(x);
            }
            // SAFETY: grad rows are unique and in range (SparseGrad invariant); the states were
            // checked against the weight's shape, dtype and device.
            unsafe { b.launch(cfg) }.w()?;
            Ok(())
        }))?;
        Ok(())
    }
}

/// Sparse SGD on the rows of `grad`: `g' = g + wd*w; buf = momentum*buf + g'; w -= lr*buf`
/// (no buffer: `w -= lr*g'`). `momentum_buf` has the weight's shape.
pub fn sgd_step(
    weight: &Tensor,
    momentum_buf: Option<&Tensor>,
    grad: &SparseGrad,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
) -> Result<()> {
    if let Some(b) = momentum_buf {
        check_state(weight, b, weight.dims(), "momentum buffer")?;
    }
    RowUpdate {
        kernel: "ce_sgd_rows",
        states: &[momentum_buf],
        flag: Some(momentum_buf.is_some() as u32),
        scalars: &[lr, momentum, weight_decay],
        threads: None,
    }
    .run(weight, grad)
}

/// Sparse element-wise Adagrad: `state += g^2; w -= clr * g / (sqrt(state) + eps)`, with
/// `clr = lr / (1 + (step-1) * lr_decay)` computed by the caller.
pub fn adagrad_step(
    weight: &Tensor,
    state_sum: &Tensor,
    grad: &SparseGrad,
    clr: f64,
    eps: f64,
) -> Result<()> {
    check_state(weight, state_sum, weight.dims(), "state_sum")?;
    RowUpdate {
        kernel: "ce_adagrad_rows",
        states: &[Some(state_sum)],
        flag: None,
        scalars: &[clr, eps],
        threads: None,
    }
    .run(weight, grad)
}

/// Sparse row-wise Adagrad (FBGEMM): `state[r] += mean(g_r^2);
/// w_r -= lr * g_r / (sqrt(state[r]) + eps)`. `state` has shape `(num_rows,)`.
pub fn rowwise_adagrad_step(
    weight: &Tensor,
    state: &Tensor,
    grad: &SparseGrad,
    lr: f64,
    eps: f64,
) -> Result<()> {
    check_state(weight, state, &weight.dims()[..1], "row state")?;
    RowUpdate {
        kernel: "ce_rowwise_adagrad_rows",
        states: &[Some(state)],
        flag: None,
        scalars: &[lr, eps],
        threads: Some(256),
    }
    .run(weight, grad)
}

/// SparseAdam (lazy) at global step `step` (1-based): updates `m`, `v`, `weight` on the rows
/// of `grad` only.
#[allow(clippy::too_many_arguments)]
pub fn sparse_adam_step(
    weight: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
    grad: &SparseGrad,
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    step: u64,
) -> Result<()> {
    check_state(weight, exp_avg, weight.dims(), "exp_avg")?;
    check_state(weight, exp_avg_sq, weight.dims(), "exp_avg_sq")?;
    if step == 0 {
        bail_invalid!("SparseAdam steps count from 1");
    }
    let t = step as f64;
    let step_size = lr * (1.0 - betas.1.powf(t)).sqrt() / (1.0 - betas.0.powf(t));
    RowUpdate {
        kernel: "ce_sparse_adam_rows",
        states: &[Some(exp_avg), Some(exp_avg_sq)],
        flag: None,
        scalars: &[step_size, betas.0, betas.1, eps],
        threads: None,
    }
    .run(weight, grad)
}
