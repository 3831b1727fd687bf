//! Reading and writing tables: safetensors (with the config in its metadata; memory-mapped
//! files through [`crate::mmap`]), word-vector formats.

pub mod atomic;
pub mod embedding_file;
pub mod safetensors;
pub mod word2vec;
