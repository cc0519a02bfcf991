//! Large language models for MGPHot tagging and the E4SRec backbone: model files (GGUF), and,
//! as they land, the tokenizer, the Llama-architecture decoder and generation.

pub mod gguf;
