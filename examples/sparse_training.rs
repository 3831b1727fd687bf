//! Sparse training on candle: embedding rows are looked up as a candle `Var`, a small dense
//! model (a linear head, trained by candle's own SGD) runs on them with candle's autograd, the
//! rows' gradient becomes a coalesced `SparseGrad`, and `SparseAdam` updates only those rows.
//!
//! Task: classify 2,000 ids (out of a 100,000-row table) into 4 classes (`id % 4`).
//! Run: `cargo run --release --example sparse_training`

use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use candle_embed::embedding::TrainLookup;
use candle_embed::optim::{SparseAdam, SparseAdamConfig, SparseOptimizer};
use candle_embed::{Embedding, EmbeddingConfig};
use candle_nn::{loss, Optimizer, SGD};

fn main() -> candle_embed::Result<()> {
    let dev = Device::Cpu;
    let (vocab, dim, classes, batch) = (100_000, 32, 4u32, 512);
    let emb = Arc::new(Embedding::new(
        vocab,
        dim,
        EmbeddingConfig::default(),
        DType::F32,
        &dev,
        Some(0),
    )?);
    let head = Var::from_tensor(&Tensor::randn(0f32, 0.1, (dim, classes as usize), &dev)?)?;
    let mut head_opt = SGD::new(vec![head.clone()], 0.5)?;
    let mut emb_opt = SparseAdam::new(
        vec![emb.clone()],
        SparseAdamConfig {
            lr: 0.05,
            ..Default::default()
        },
    )?;

    let mut seed = 42u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as i64
    };
    let (mut first, mut last) = (0f32, 0f32);
    let steps = 300;
    for step in 0..steps {
        let ids: Vec<i64> = (0..batch).map(|_| (next() % 2000) * 50).collect();
        let labels: Vec<u32> = ids.iter().map(|&i| (i / 50) as u32 % classes).collect();
        let labels = Tensor::from_vec(labels, batch, &dev)?;

        let look = TrainLookup::new(&emb, &ids, &[batch])?; // rows as a Var, (batch, dim)
        let logits = look.rows().matmul(head.as_tensor())?; // any candle model
        let l = loss::cross_entropy(&logits, &labels)?;
        let grads = l.backward()?; // candle autograd
        let g = look.sparse_grad(&emb, &grads)?; // coalesced rows touched by this batch
        emb_opt.step(&[Some(&g)])?; // sparse update of those rows only
        head_opt.step(&grads)?; // candle's dense SGD for the head

        let lv = l.to_scalar::<f32>()?;
        if step < 10 {
            first += lv / 10.0;
        }
        if step >= steps - 10 {
            last += lv / 10.0;
        }
        if step % 50 == 0 || step == steps - 1 {
            println!("step {step:4}  loss {lv:.4}  rows updated {}", g.nnz());
        }
    }
    println!("mean loss, first 10 steps {first:.4} -> last 10 steps {last:.4}");
    if last >= first * 0.5 {
        return Err(candle_embed::Error::InvalidArgument(
            "the loss did not go down".into(),
        ));
    }
    Ok(())
}
