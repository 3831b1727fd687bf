//! Reading and writing tables: safetensors (with the config in its metadata), memory-mapped
//! safetensors files, word-vector formats.

pub mod atomic;
pub mod embedding_file;
pub mod mmap;
pub mod safetensors;
pub mod word2vec;
