//! Optimizer state dicts between Python and the core: `{"kind": str, "step": [int per table],
//! "state": [{name: ndarray} per table]}` <-> `candle_embed::optim::StateDict` (copies).

use candle_core::{Device, Tensor};
use candle_embed::optim::StateDict;
use numpy::{PyArrayDescrMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::args::unsigned;
use crate::arrays::tables::{numpy_to_tensor, tensor_to_numpy};
use crate::arrays::view::view;
use crate::arrays::IdArray;
use crate::errors::{type_error, value_error, IntoPyResult};

/// A state buffer as a CPU tensor: integer arrays (per-row step counts) as i64, float arrays
/// as they are; the core checks each against the buffer it replaces. Both go through the array
/// boundary; a `u64` count beyond `i64::MAX` saturates there and the core's range check
/// refuses it, so nothing wraps.
fn buffer_to_tensor(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Tensor> {
    let kind = view(obj, name)?.array.dtype().kind();
    if kind != b'i' && kind != b'u' {
        return numpy_to_tensor(obj, name);
    }
    let ids = IdArray::read(obj, name)?;
    let shape = ids.shape().to_vec();
    Tensor::from_vec(ids.to_i64(name)?, shape, &Device::Cpu)
        .map_err(candle_embed::Error::from)
        .py()
}

/// A copy of `sd` as a Python dict.
pub fn to_py<'py>(py: Python<'py>, sd: &StateDict) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("kind", &sd.kind)?;
    d.set_item("step", sd.steps.clone())?;
    let state = PyList::empty(py);
    for bufs in &sd.buffers {
        let b = PyDict::new(py);
        for (name, t) in bufs {
            b.set_item(name, tensor_to_numpy(py, t)?)?;
        }
        state.append(b)?;
    }
    d.set_item("state", state)?;
    Ok(d)
}

/// Read a state dict given by Python (its values are checked by the core's `load_state_dict`).
pub fn from_py(state: &Bound<'_, PyAny>) -> PyResult<StateDict> {
    let state = state
        .cast::<PyDict>()
        .map_err(|_| type_error("a state dict must be a dict"))?;
    let get = |k: &str| -> PyResult<Bound<'_, PyAny>> {
        state
            .get_item(k)?
            .ok_or_else(|| value_error(format!("state_dict lacks '{k}'")))
    };
    let kind: String = get("kind")?
        .extract()
        .map_err(|_| type_error("state_dict['kind'] must be a str"))?;
    let steps = get("step")?;
    if steps.is_instance_of::<PyString>() || steps.is_instance_of::<PyDict>() {
        return Err(type_error("state_dict['step'] must be a list of ints"));
    }
    // Each count read from the whole int: a non-int is a TypeError, a negative or too large
    // one a ValueError (never wrapped).
    let steps = steps
        .try_iter()
        .map_err(|_| type_error("state_dict['step'] must be a list of ints"))?
        .map(|item| unsigned(&item?))
        .collect::<PyResult<Vec<u64>>>()?;
    let tables = get("state")?;
    let tables = tables
        .try_iter()
        .map_err(|_| type_error("state_dict['state'] must be a list of dicts"))?;
    let mut buffers = Vec::new();
    for (i, item) in tables.enumerate() {
        let item = item?;
        let b = item
            .cast::<PyDict>()
            .map_err(|_| type_error(format!("state_dict['state'][{i}] must be a dict")))?;
        let mut bufs = Vec::new();
        for (k, v) in b.iter() {
            let name: String = k
                .extract()
                .map_err(|_| type_error(format!("state_dict['state'][{i}] keys must be str")))?;
            bufs.push((name.clone(), buffer_to_tensor(&v, &name)?));
        }
        buffers.push(bufs);
    }
    Ok(StateDict {
        kind,
        steps,
        buffers,
    })
}
