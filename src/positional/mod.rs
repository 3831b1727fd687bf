//! Positional encodings: sinusoidal, learned absolute, combined transformer embeddings, rotary
//! (with every Hugging Face scaling), ALiBi and T5 relative position buckets/bias.

pub mod alibi;
pub mod combined;
pub mod common;
pub mod learned;
pub mod relative;
pub mod rope_scaling;
pub mod rotary;
pub mod sinusoidal;
