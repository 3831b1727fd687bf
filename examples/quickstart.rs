//! The README's Rust quickstart, compiled (and linted) with every `cargo clippy --all-targets`.

use candle_core::{DType, Device, Module, Tensor};
use candle_embed::{Embedding, EmbeddingConfig};

fn main() -> candle_embed::Result<()> {
    let emb = Embedding::new(
        50_000,
        128,
        EmbeddingConfig::default(),
        DType::F32,
        &Device::Cpu,
        Some(0),
    )?;
    let ids = Tensor::new(&[[1u32, 2, 3], [4, 5, 6]], &Device::Cpu)?;
    let rows = emb.forward(&ids)?; // candle_nn::Module: (2, 3, 128)
    let mut buf = vec![0f32; 3 * 128];
    emb.lookup_into(&[7i64, 8, 9], &mut buf)?; // fast path into your own buffer
    println!("{:?}", rows.dims());
    Ok(())
}
