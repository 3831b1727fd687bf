//! CUDA fast paths (feature `cuda`), one file per op family like `kernels/cpu/`, each launcher
//! beside the `.cu` file of the same name that build.rs compiles to a fatbin (SASS for the
//! target GPU + PTX; see `module`):
//! - `gather`: row gather (embedding lookup) and its inverse, row scatter;
//! - `scatter`: deterministic sort/segment-based coalesce, embedding backward and scatter-add;
//! - `bag`: EmbeddingBag forward and backward;
//! - `optim`: sparse optimizer row updates (SGD, Adagrad, row-wise Adagrad, SparseAdam);
//! - `rope`: RoPE forward and backward.
//!
//! The ops use these kernels on CUDA tensors only when [`enabled`] (`CANDLE_EMBED_CUDA_KERNELS=1`
//! or [`set_enabled`]); by default they take their portable candle-op path, the reference, until
//! a GPU run has passed (scripts/gpu-bundle.sh runs the tests both ways).
//!
//! Safety policy: every entry point validates its ids on the host (`ids::validate`, via
//! `SegmentPlan::new` or directly) and its shapes *before* any launch, so an out-of-range id is
//! an [`crate::Error::IndexOutOfRange`] and the CUDA context stays usable. Determinism: no
//! atomics; each output row is written by one block that sums its sources in host-sorted order.
//!
//! Tensors must live on one CUDA device and be f32, f64, f16 or bf16 (math in f32 for the half
//! types, f64 for f64). Outputs are fresh tensors; the optimizer steps and `index_add_` update
//! their targets in place.

mod bag;
mod gather;
mod launch;
mod module;
mod optim;
mod rope;
mod scatter;
mod switch;

pub use bag::{bag_backward, bag_forward};
pub use gather::{gather, scatter_rows, Gather};
pub use optim::{adagrad_step, rowwise_adagrad_step, sgd_step, sparse_adam_step};
pub use rope::{rope, rope_storage};
pub use scatter::{coalesce, embedding_backward, index_add, index_add_, Segments};
pub use switch::{active, enabled, set_enabled};
