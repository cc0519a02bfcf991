//! Large language models for MGPHot tagging and the E4SRec backbone: model files (GGUF), the
//! byte-level BPE tokenizer rebuilt from them, the Llama-architecture decoder (SmolLM2,
//! Llama 3.x, Qwen2.5) in burn, and generation (chat templates, sampling, constrained ratings).

pub mod generate;
pub mod gguf;
pub mod llama;
pub mod tokenizer;
