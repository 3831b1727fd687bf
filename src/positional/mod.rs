//! Positional encodings.

pub mod rope_scaling;
pub mod rotary;
//! Positional encodings: sinusoidal, learned absolute, combined transformer embeddings, ALiBi,
//! T5 relative position buckets/bias (and rotary, in its own modules).

pub mod alibi;
pub mod combined;
pub mod common;
pub mod learned;
pub mod relative;
pub mod sinusoidal;
