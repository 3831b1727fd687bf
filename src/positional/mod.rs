//! Positional encodings.

pub mod rope_scaling;
pub mod rotary;
