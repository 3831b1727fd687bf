//! Reading and writing tables: safetensors (with the config in its metadata).

pub mod atomic;
pub mod embedding_file;
pub mod open;
pub mod safetensors;
pub mod word2vec;
