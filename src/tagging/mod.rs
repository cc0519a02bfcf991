//! MGPHot tagging by an LLM: the schema (58 genes, anchors, readable tags), prompts and the local
//! tagger (constrained decoding), a tolerant reader of free-form answers, the resumable result
//! cache, and agreement with reference values (Spearman, MAE).

#[cfg(not(target_arch = "wasm32"))]
pub mod cache;
pub mod parse;
pub mod schema;
pub mod tagger;
pub mod validate;
