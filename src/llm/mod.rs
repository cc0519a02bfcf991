//! Large language models for MGPHot tagging and the E4SRec backbone: model files (GGUF), the
//! byte-level BPE tokenizer rebuilt from them, and, as they land, the Llama-architecture decoder
//! and generation.

pub mod gguf;
pub mod tokenizer;
