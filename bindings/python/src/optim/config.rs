//! One frozen config class per optimizer (`_native.SGDConfig`, ...): a typed view of the core
//! config struct. A class called with no argument is the core's `Default`, the one home of
//! every default: `candle_embed.optim` reads its signatures' defaults from these objects.

use candle_embed::optim::{
    AdagradConfig, AdamWConfig, RowWiseAdagradConfig, SgdConfig, SparseAdamConfig,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::args::{flag, real, real_pair, unsigned};

/// `Name = "PyName" of CoreConfig { field: Type [reader] = core.path, ... }`: a frozen pyclass
/// wrapping `CoreConfig`, its keyword-only constructor (each default read from
/// `CoreConfig::default()`), a getter per field, `as_dict()` and `__repr__`. The fields of the
/// core's `StepOptions` (every config's `options`: `maximize`, `stochastic_rounding`, `seed`)
/// are added after the listed ones.
macro_rules! config_class {
    ($(#[$doc:meta])* $py:ident = $name:literal of $core:ty {
        $($field:ident : $ty:ty [$read:path] = $($path:ident).+),* $(,)?
    }) => {
        config_class!(@class $(#[$doc])* $py = $name of $core {
            $($field: $ty [$read] = $($path).+,)*
            maximize: bool [flag] = options.maximize,
            stochastic_rounding: bool [flag] = options.stochastic_rounding,
            seed: u64 [unsigned] = options.seed,
        });
    };
    (@class $(#[$doc:meta])* $py:ident = $name:literal of $core:ty {
        $($field:ident : $ty:ty [$read:path] = $($path:ident).+),* $(,)?
    }) => {
        $(#[$doc])*
        #[pyclass(frozen, name = $name, module = "candle_embed._native")]
        #[derive(Clone)]
        pub struct $py(pub $core);

        #[pymethods]
        impl $py {
            // One keyword per hyper-parameter: the Python signature.
            #[allow(clippy::too_many_arguments)]
            #[new]
            #[pyo3(signature = (*, $($field = <$core as Default>::default().$($path).+),*))]
            fn new($(#[pyo3(from_py_with = $read)] $field: $ty),*) -> Self {
                let mut config = <$core as Default>::default();
                $(config.$($path).+ = $field;)*
                $py(config)
            }

            $(
                #[getter]
                fn $field(&self) -> $ty {
                    self.0.$($path).+
                }
            )*

            /// The hyper-parameters as a dict, by keyword.
            fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                $(d.set_item(stringify!($field), self.0.$($path).+)?;)*
                Ok(d)
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                let mut parts = Vec::new();
                for (k, v) in self.as_dict(py)?.iter() {
                    parts.push(format!("{k}={}", v.repr()?));
                }
                Ok(format!("{}({})", $name, parts.join(", ")))
            }
        }
    };
}

config_class! {
    /// Hyper-parameters of `optim.SGD` (the core's `SgdConfig`).
    PySgdConfig = "SGDConfig" of SgdConfig {
        lr: f64 [real] = lr,
        momentum: f64 [real] = momentum,
        dampening: f64 [real] = dampening,
        nesterov: bool [flag] = nesterov,
        weight_decay: f64 [real] = weight_decay,
    }
}

config_class! {
    /// Hyper-parameters of `optim.Adagrad` (the core's `AdagradConfig`).
    PyAdagradConfig = "AdagradConfig" of AdagradConfig {
        lr: f64 [real] = lr,
        lr_decay: f64 [real] = lr_decay,
        weight_decay: f64 [real] = weight_decay,
        initial_accumulator_value: f64 [real] = initial_accumulator_value,
        eps: f64 [real] = eps,
    }
}

config_class! {
    /// Hyper-parameters of `optim.RowWiseAdagrad` (the core's `RowWiseAdagradConfig`).
    PyRowWiseAdagradConfig = "RowWiseAdagradConfig" of RowWiseAdagradConfig {
        lr: f64 [real] = lr,
        eps: f64 [real] = eps,
    }
}

config_class! {
    /// Hyper-parameters of `optim.SparseAdam` (the core's `SparseAdamConfig`).
    PySparseAdamConfig = "SparseAdamConfig" of SparseAdamConfig {
        lr: f64 [real] = lr,
        betas: (f64, f64) [real_pair] = betas,
        eps: f64 [real] = eps,
    }
}

config_class! {
    /// Hyper-parameters of `optim.AdamW` (the core's `AdamWConfig`).
    PyAdamWConfig = "AdamWConfig" of AdamWConfig {
        lr: f64 [real] = lr,
        betas: (f64, f64) [real_pair] = betas,
        eps: f64 [real] = eps,
        weight_decay: f64 [real] = weight_decay,
    }
}

/// Register the config classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySgdConfig>()?;
    m.add_class::<PyAdagradConfig>()?;
    m.add_class::<PyRowWiseAdagradConfig>()?;
    m.add_class::<PySparseAdamConfig>()?;
    m.add_class::<PyAdamWConfig>()?;
    Ok(())
}
