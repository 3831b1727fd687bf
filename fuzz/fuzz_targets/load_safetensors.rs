//! Any byte string given to the safetensors table loader must give a table or an `Error`,
//! never a panic, an abort or an out-of-bounds read.
#![no_main]

use candle_core::Device;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((tensors, _meta)) = candle_embed::io::safetensors::parse(data, &Device::Cpu) {
        if let Some(w) = tensors.get("weight") {
            let cfg = candle_embed::EmbeddingConfig::default();
            if let Ok(emb) = candle_embed::Embedding::from_pretrained(w.clone(), cfg) {
                if emb.num_embeddings() > 0 && emb.embedding_dim() < 1 << 16 {
                    let mut out = vec![0f32; emb.embedding_dim()];
                    let _ = emb.lookup_into(&[0u32], &mut out);
                }
            }
        }
    }
});
