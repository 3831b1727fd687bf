//! Device names ("cpu", "cuda:N", "metal:N") to candle devices, gated by the build's features.

use candle_core::Device;

use crate::{Error, Result};

/// Parse a device name and open it. A device this build lacks is an error naming the feature.
pub fn parse_device(name: &str) -> Result<Device> {
    let name = name.trim();
    let (kind, ordinal) = match name.split_once(':') {
        Some((k, o)) => {
            let ord = o.parse::<usize>().map_err(|_| {
                Error::invalid(format!(
                    "bad device '{name}': the ordinal must be a non-negative integer"
                ))
            })?;
            (k, ord)
        }
        None => (name, 0),
    };
    match kind {
        "cpu" if !name.contains(':') => Ok(Device::Cpu),
        "cuda" => open_backend(
            name,
            ordinal,
            ("CUDA", "cuda", cfg!(feature = "cuda")),
            Device::new_cuda,
        ),
        "metal" => open_backend(
            name,
            ordinal,
            ("Metal", "metal", cfg!(feature = "metal")),
            Device::new_metal,
        ),
        _ => Err(Error::invalid(format!(
            "unknown device '{name}': expected 'cpu', 'cuda[:N]' or 'metal[:N]'"
        ))),
    }
}

/// Open backend `kind` at `ordinal` with candle's constructor `open`; `compiled` says whether
/// this build has the cargo `feature` (without it candle's constructor would only say "not
/// compiled", so the error names the feature to rebuild with).
fn open_backend(
    name: &str,
    ordinal: usize,
    (kind, feature, compiled): (&str, &str, bool),
    open: fn(usize) -> candle_core::Result<Device>,
) -> Result<Device> {
    let unsupported = |reason| Error::UnsupportedDevice {
        device: name.into(),
        reason,
    };
    if !compiled {
        return Err(unsupported(format!(
            "this build lacks {kind} support; rebuild with the cargo feature `{feature}`"
        )));
    }
    open(ordinal).map_err(|e| unsupported(format!("cannot open {kind} device {ordinal}: {e}")))
}

/// The user-facing name of a device.
pub fn device_name(d: &Device) -> String {
    match d.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// The devices this build can reach: "cpu" always, then each CUDA / Metal device that opens.
pub fn available_devices() -> Vec<String> {
    #[allow(unused_mut)]
    let mut out = vec!["cpu".to_string()];
    #[cfg(feature = "cuda")]
    for i in 0..16 {
        if Device::new_cuda(i).is_ok() {
            out.push(format!("cuda:{i}"));
        } else {
            break;
        }
    }
    #[cfg(feature = "metal")]
    if Device::new_metal(0).is_ok() {
        out.push("metal:0".into());
    }
    out
}
