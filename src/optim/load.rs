//! Loading a [`StateDict`]: every part is checked, and converted into fresh buffers, before
//! any of the optimizer's state is replaced, so a refused load changes nothing.
//!
//! Checks, in order: the optimizer kind and the table count; each step count (at most
//! [`MAX_STEP`]); per table, exactly the buffer names the rule keeps; per buffer, its shape,
//! its dtype (floats for float buffers, converted to the state dtype as PyTorch converts
//! state to the parameter's dtype; integers for per-row step counts) and its values: finite
//! after conversion, not negative in buffers of squares (`sum`, `exp_avg_sq`), and per-row step
//! counts within `0..=step`. Each of these would otherwise give NaN, a division by zero or a
//! wrapped step count at the next step.

use candle_core::{DType, Tensor};

use super::state::Layout;
use super::state::{Buf, ParamState, Slot, StateDict, MAX_STEP};
use crate::{Error, Result};

/// Replace `states` by `dict` for an optimizer of kind `kind`, or change nothing.
pub(crate) fn load(kind: &str, states: &mut [ParamState], dict: &StateDict) -> Result<()> {
    if dict.kind != kind {
        return Err(Error::InvalidArgument(format!(
            "state is for a {} optimizer, this is {kind}",
            dict.kind
        )));
    }
    if dict.steps.len() != states.len() || dict.buffers.len() != states.len() {
        return Err(Error::InvalidArgument(format!(
            "state has {} step counts and {} buffer sets, this optimizer has {} tables",
            dict.steps.len(),
            dict.buffers.len(),
            states.len()
        )));
    }
    let mut fresh = Vec::with_capacity(states.len());
    for (i, (s, (&step, given))) in states
        .iter()
        .zip(dict.steps.iter().zip(&dict.buffers))
        .enumerate()
    {
        if step > MAX_STEP {
            return Err(Error::InvalidArgument(format!(
                "step count {step} of table {i} is out of range [0, 2**53]"
            )));
        }
        if given.len() != s.slots.len() {
            return Err(Error::InvalidArgument(format!(
                "state of table {i} has {} buffers, expected {} ({})",
                given.len(),
                s.slots.len(),
                s.slots
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let slots = s
            .slots
            .iter()
            .map(|slot| {
                let Some((_, t)) = given.iter().find(|(n, _)| n == slot.name) else {
                    return Err(Error::InvalidArgument(format!(
                        "state of table {i} lacks buffer '{}'",
                        slot.name
                    )));
                };
                let what = format!("state buffer '{}' of table {i}", slot.name);
                Ok(Slot {
                    buf: checked_buffer(slot, t, step, &what)?,
                    shape: slot.shape.clone(),
                    ..*slot
                })
            })
            .collect::<Result<Vec<_>>>()?;
        fresh.push(ParamState { step, slots });
    }
    states.clone_from_slice(&fresh);
    Ok(())
}

/// `t` as a new buffer for `slot` of a table at step `step`, or why it cannot be one.
fn checked_buffer(slot: &Slot, t: &Tensor, step: u64, what: &str) -> Result<Buf> {
    if t.dims() != slot.shape.as_slice() {
        return Err(Error::Shape(format!(
            "{what} has shape {:?}, expected {:?}",
            t.dims(),
            slot.shape
        )));
    }
    let steps = slot.layout == Layout::LastStep;
    match (steps, t.dtype().is_float()) {
        (true, true) => {
            return Err(Error::DType(format!(
                "{what} holds step counts: an integer array is needed, got {:?}",
                t.dtype()
            )))
        }
        (false, false) => {
            return Err(Error::DType(format!(
                "{what} must be a float array, got {:?}",
                t.dtype()
            )))
        }
        _ => {}
    }
    if steps {
        // Read as i64 before the conversion to u64 would turn a negative count into a huge one.
        let counts = t.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?;
        if let Some(v) = counts.into_iter().find(|&v| v < 0) {
            return Err(Error::InvalidArgument(format!(
                "{what} holds the step {v} < 0"
            )));
        }
    }
    let buf = Buf::from_tensor(t, &slot.buf)?;
    match &buf {
        Buf::F32(v) => check_values(v.iter().map(|&x| x as f64), slot.nonnegative, what)?,
        Buf::F64(v) => check_values(v.iter().copied(), slot.nonnegative, what)?,
        Buf::U64(v) => {
            if let Some(&last) = v.iter().find(|&&last| last > step) {
                return Err(Error::InvalidArgument(format!(
                    "{what} holds the step {last}, after the table's step count {step}"
                )));
            }
        }
    }
    Ok(buf)
}

/// Every value finite (in the state dtype) and, for buffers of squares, not negative.
fn check_values(values: impl Iterator<Item = f64>, nonnegative: bool, what: &str) -> Result<()> {
    for v in values {
        if !v.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "{what} holds {v} (state values must be finite in the state dtype)"
            )));
        }
        if nonnegative && v < 0.0 {
            return Err(Error::InvalidArgument(format!(
                "{what} holds {v}: a sum of squares cannot be negative"
            )));
        }
    }
    Ok(())
}
