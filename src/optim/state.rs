//! Optimizer state: the layout of each buffer (`SlotSpec`), per-table step counts and buffers
//! in the accumulator dtype, and the `StateDict` they are saved to and restored from (candle
//! tensors, copied).

use candle_core::{DType, Device, Tensor};

use crate::dtype::Float;
use crate::{hugepages, Error, Result};

/// How one state buffer of a table is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One value per element: shape `(num_embeddings, embedding_dim)`.
    PerElement,
    /// One value per row: shape `(num_embeddings,)`.
    PerRow,
    /// One step count per row (`u64`; `int64` in state dicts), shape `(num_embeddings,)`:
    /// the last step that touched the row (0: never). `init` is ignored (always 0).
    LastStep,
}

/// One named state buffer of a table, in the accumulator dtype (f64 for f64 tables, f32
/// otherwise) unless it is a [`Layout::LastStep`], every element starting at `init`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlotSpec {
    /// The buffer's key in state dicts (PyTorch's name where PyTorch has the buffer).
    pub name: &'static str,
    /// Its shape.
    pub layout: Layout,
    /// Its initial value.
    pub init: f64,
    /// Whether its values are sums of squares (a state dict holding a negative one is
    /// refused: its square root would be NaN).
    pub nonnegative: bool,
}

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
    /// Per-row step counts ([`Layout::LastStep`]).
    U64(Vec<u64>),
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

/// `n` copies of `value`, failing with `Error::Memory` instead of aborting. Zeros come from
/// `calloc`, so an untouched page of a huge buffer costs nothing.
fn alloc_filled<E: Copy + Default + PartialEq>(n: usize, value: E) -> Result<Vec<E>> {
    let mut v: Vec<E> = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::Memory(format!("cannot allocate {n} state elements")))?;
    if value == E::default() {
        v = vec![value; n];
        // Still untouched (calloc): the hint applies when the rows are first stepped.
        hugepages::advise(v.as_ptr(), std::mem::size_of_val(v.as_slice()));
    } else {
        hugepages::advise(v.as_ptr(), n * std::mem::size_of::<E>());
        v.resize(n, value);
    }
    Ok(v)
}

impl Buf {
    /// `n` elements equal to `value`, in `dtype` (F32 or F64).
    pub fn filled(dtype: DType, n: usize, value: f64) -> Result<Buf> {
        Ok(if dtype == DType::F64 {
            Buf::F64(alloc_filled(n, value)?)
        } else {
            Buf::F32(alloc_filled(n, value as f32)?)
        })
    }
    /// `n` step counts, all 0.
    pub fn steps(n: usize) -> Result<Buf> {
        Ok(Buf::U64(alloc_filled(n, 0u64)?))
    }
    /// The step counts of a [`Buf::U64`] (panics otherwise: a bug, never user input).
    pub fn steps_mut(&mut self) -> &mut [u64] {
        match self {
            Buf::U64(v) => v,
            _ => panic!("state buffer does not hold step counts"),
        }
    }
    /// A CPU tensor copy (step counts as i64: candle has no u64, and counts stay below 2^53).
    fn to_tensor(&self, shape: &[usize]) -> Result<Tensor> {
        Ok(match self {
            Buf::F32(v) => Tensor::from_slice(v, shape, &Device::Cpu)?,
            Buf::F64(v) => Tensor::from_slice(v, shape, &Device::Cpu)?,
            Buf::U64(v) => {
                let v: Vec<i64> = v.iter().map(|&x| x as i64).collect();
                Tensor::from_vec(v, shape, &Device::Cpu)?
            }
        })
    }
    /// `t`'s values converted to `like`'s element type (the caller checked dtype and shape).
    pub(crate) fn from_tensor(t: &Tensor, like: &Buf) -> Result<Buf> {
        let t = t.to_device(&Device::Cpu)?.flatten_all()?;
        Ok(match like {
            Buf::F32(_) => Buf::F32(t.to_dtype(DType::F32)?.to_vec1()?),
            Buf::F64(_) => Buf::F64(t.to_dtype(DType::F64)?.to_vec1()?),
            Buf::U64(_) => {
                let v: Vec<i64> = t.to_dtype(DType::I64)?.to_vec1()?;
                Buf::U64(v.into_iter().map(|x| x as u64).collect())
            }
        })
    }
}

/// One named buffer of a table's state.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub name: &'static str,
    pub layout: Layout,
    pub nonnegative: bool,
    pub shape: Vec<usize>,
    pub buf: Buf,
}

/// The largest step count a table may reach: rules use `t` as an f64 (bias corrections, the
/// decay of skipped steps), exact up to 2^53. A step past it, or a state dict beyond it, is
/// refused (2^53 steps at a microsecond each take 285 years).
pub const MAX_STEP: u64 = 1 << 53;

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
                let (shape, buf) = match spec.layout {
                    Layout::PerElement => {
                        (vec![rows, dim], Buf::filled(acc, rows * dim, spec.init)?)
                    }
                    Layout::PerRow => (vec![rows], Buf::filled(acc, rows, spec.init)?),
                    Layout::LastStep => (vec![rows], Buf::steps(rows)?),
                };
                Ok(Slot {
                    name: spec.name,
                    layout: spec.layout,
                    nonnegative: spec.nonnegative,
                    shape,
                    buf,
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
