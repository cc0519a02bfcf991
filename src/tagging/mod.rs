//! MGPHot tagging by an LLM: the schema (58 genes, anchors, readable tags), prompts, the local
//! tagger (constrained decoding), the tagger for OpenAI-compatible servers, a tolerant reader of
//! free-form answers, the resumable result cache, and agreement with reference values (Spearman,
//! MAE).

pub use error::TagError;

#[cfg(not(target_arch = "wasm32"))]
pub mod cache;
pub mod error;
pub mod parse;
#[cfg(not(target_arch = "wasm32"))]
pub mod remote;
#[cfg(not(target_arch = "wasm32"))]
pub mod run;
pub mod schema;
pub mod tagger;
pub mod validate;
