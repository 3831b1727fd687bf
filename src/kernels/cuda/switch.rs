//! The switch that routes CUDA tensors to our kernels. Off by default: until the kernels have
//! passed a run on a GPU, every op on a CUDA device takes its portable candle-op path (the
//! reference). `CANDLE_EMBED_CUDA_KERNELS=1` (read once, at the first op) or [`set_enabled`]
//! turns the kernels on; `0` or unset leaves them off.

use std::sync::atomic::{AtomicU8, Ordering};

use candle_core::Device;

/// 0: not yet read from the environment; 1: off; 2: on.
static STATE: AtomicU8 = AtomicU8::new(0);

/// Whether our CUDA kernels serve CUDA tensors.
pub fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        0 => {
            let on = std::env::var("CANDLE_EMBED_CUDA_KERNELS").is_ok_and(|v| v.trim() == "1");
            // A concurrent `set_enabled` wins over the environment.
            let _ = STATE.compare_exchange(0, 1 + on as u8, Ordering::Relaxed, Ordering::Relaxed);
            STATE.load(Ordering::Relaxed) == 2
        }
        s => s == 2,
    }
}

/// Turn our CUDA kernels on or off for the rest of the process (tests compare both paths).
pub fn set_enabled(on: bool) {
    STATE.store(1 + on as u8, Ordering::Relaxed);
}

/// Whether an op on tensors of `device` runs our kernels: a CUDA device and the switch on.
pub fn active(device: &Device) -> bool {
    device.is_cuda() && enabled()
}
