//! Reading and writing tables: safetensors (with the config in its metadata), word-vector
//! formats (word2vec text and binary, GloVe) and KeyedVectors files.

pub mod atomic;
pub mod embedding_file;
pub mod keyed_vectors;
pub mod safetensors;
pub mod word2vec;
