//! Optimizer state: per-table step counts and buffers in the accumulator dtype, and the
//! `StateDict` they are saved to and restored from (candle tensors, copied).

use candle_core::{DType, Device, Tensor};

use super::rule::{Layout, SlotSpec};
use crate::dtype::Float;
use crate::{hugepages, Error, Result};

/// The state dtype of a table dtype (f64 for f64 tables, f32 otherwise).
pub(crate) fn acc_dtype(d: DType) -> DType {
    crate::sparse::coalesce::acc_dtype(d)
}

/// A state buffer in the accumulator dtype.
#[derive(Clone, Debug)]
pub enum Buf {
    /// State of f32, f16 and bf16 tables.
    F32(Vec<f32>),
    /// State of f64 tables.
    F64(Vec<f64>),
}

/// f32 / f64: the element types of state buffers (a table's accumulator type).
pub trait AccElem: Float {
    /// The elements of `b` (panics if `b` holds the other type: a bug, never user input).
    fn slice_mut(b: &mut Buf) -> &mut [Self];
    /// `v` as a buffer.
    fn wrap(v: Vec<Self>) -> Buf;
}
macro_rules! acc_elem {
    ($t:ty, $variant:ident) => {
        impl AccElem for $t {
            fn slice_mut(b: &mut Buf) -> &mut [$t] {
                match b {
                    Buf::$variant(v) => v,
                    _ => panic!(concat!("state buffer is not ", stringify!($t))),
                }
            }
            fn wrap(v: Vec<$t>) -> Buf {
                Buf::$variant(v)
            }
        }
    };
}
acc_elem!(f32, F32);
acc_elem!(f64, F64);

impl Buf {
    /// `n` elements equal to `value`, in `dtype` (F32 or F64). Zeros come from `calloc`, so
    /// an untouched page of a huge buffer costs nothing.
    pub fn filled(dtype: DType, n: usize, value: f64) -> Result<Buf> {
        fn make<A: AccElem>(n: usize, value: f64) -> Result<Buf> {
            let mut v: Vec<A> = Vec::new();
            v.try_reserve_exact(n)
                .map_err(|_| Error::Memory(format!("cannot allocate {n} state elements")))?;
            if value == 0.0 {
                v = vec![A::of_f64(0.0); n];
                // Still untouched (calloc): the hint applies when the rows are first stepped.
                hugepages::advise(v.as_ptr(), n * std::mem::size_of::<A>());
            } else {
                hugepages::advise(v.as_ptr(), n * std::mem::size_of::<A>());
                v.resize(n, A::of_f64(value));
            }
            Ok(A::wrap(v))
        }
        if dtype == DType::F64 {
            make::<f64>(n, value)
        } else {
            make::<f32>(n, value)
        }
    }
    fn len(&self) -> usize {
        match self {
            Buf::F32(v) => v.len(),
            Buf::F64(v) => v.len(),
        }
    }
    fn to_tensor(&self, shape: &[usize]) -> Result<Tensor> {
        Ok(match self {
            Buf::F32(v) => Tensor::from_slice(v, shape, &Device::Cpu)?,
            Buf::F64(v) => Tensor::from_slice(v, shape, &Device::Cpu)?,
        })
    }
    fn from_tensor(t: &Tensor, like: &Buf) -> Result<Buf> {
        let t = t.to_device(&Device::Cpu)?.flatten_all()?;
        Ok(match like {
            Buf::F32(_) => Buf::F32(t.to_dtype(DType::F32)?.to_vec1()?),
            Buf::F64(_) => Buf::F64(t.to_dtype(DType::F64)?.to_vec1()?),
        })
    }
}

/// One named buffer of a table's state.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub buf: Buf,
}

/// The state of one table: its step count and named buffers.
#[derive(Clone, Debug, Default)]
pub(crate) struct ParamState {
    pub step: u64,
    pub slots: Vec<Slot>,
}

impl ParamState {
    /// The fresh state of a `(rows, dim)` table of dtype `table`: step 0, each buffer of
    /// `specs` filled with its initial value in the accumulator dtype.
    pub fn new(rows: usize, dim: usize, table: DType, specs: &[SlotSpec]) -> Result<Self> {
        let acc = acc_dtype(table);
        let slots = specs
            .iter()
            .map(|spec| {
                let shape = match spec.layout {
                    Layout::PerElement => vec![rows, dim],
                    Layout::PerRow => vec![rows],
                };
                let n = shape.iter().product();
                Ok(Slot {
                    name: spec.name,
                    shape,
                    buf: Buf::filled(acc, n, spec.init)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ParamState { step: 0, slots })
    }
}

/// A snapshot of an optimizer's state: `kind` names the optimizer; `steps[i]` and
/// `buffers[i]` (name -> tensor) belong to table `i`.
#[derive(Clone, Debug)]
pub struct StateDict {
    /// The optimizer's name ("SGD", "Adagrad", ...).
    pub kind: String,
    /// Each table's step count.
    pub steps: Vec<u64>,
    /// Each table's buffers by name (CPU tensors in the accumulator dtype).
    pub buffers: Vec<Vec<(String, Tensor)>>,
}

/// Copy every table's state into a [`StateDict`].
pub(crate) fn save(kind: &str, states: &[ParamState]) -> Result<StateDict> {
    let mut buffers = Vec::with_capacity(states.len());
    for s in states {
        let mut b = Vec::with_capacity(s.slots.len());
        for slot in &s.slots {
            b.push((slot.name.to_string(), slot.buf.to_tensor(&slot.shape)?));
        }
        buffers.push(b);
    }
    Ok(StateDict {
        kind: kind.to_string(),
        steps: states.iter().map(|s| s.step).collect(),
        buffers,
    })
}

/// Replace `states` by `dict`, after checking kind, table count, names and shapes of all of it.
pub(crate) fn load(kind: &str, states: &mut [ParamState], dict: &StateDict) -> Result<()> {
    if dict.kind != kind {
        return Err(Error::InvalidArgument(format!(
            "state is for a {} optimizer, this is {kind}",
            dict.kind
        )));
    }
    if dict.steps.len() != states.len() || dict.buffers.len() != states.len() {
        return Err(Error::InvalidArgument(format!(
            "state has {} tables, this optimizer has {}",
            dict.steps.len(),
            states.len()
        )));
    }
    let mut fresh = Vec::with_capacity(states.len());
    for (i, s) in states.iter().enumerate() {
        let given = &dict.buffers[i];
        if given.len() != s.slots.len() {
            return Err(Error::InvalidArgument(format!(
                "state of table {i} has {} buffers, expected {}",
                given.len(),
                s.slots.len()
            )));
        }
        let mut slots = Vec::with_capacity(s.slots.len());
        for slot in &s.slots {
            let Some((_, t)) = given.iter().find(|(n, _)| n == slot.name) else {
                return Err(Error::InvalidArgument(format!(
                    "state of table {i} lacks buffer '{}'",
                    slot.name
                )));
            };
            if t.dims() != slot.shape.as_slice() {
                return Err(Error::Shape(format!(
                    "state buffer '{}' of table {i} has shape {:?}, expected {:?}",
                    slot.name,
                    t.dims(),
                    slot.shape
                )));
            }
            crate::dtype::check_float(t.dtype())?;
            let buf = Buf::from_tensor(t, &slot.buf)?;
            debug_assert_eq!(buf.len(), slot.buf.len());
            slots.push(Slot {
                name: slot.name,
                shape: slot.shape.clone(),
                buf,
            });
        }
        fresh.push(ParamState {
            step: dict.steps[i],
            slots,
        });
    }
    states.clone_from_slice(&fresh);
    Ok(())
}
