//! MGPHot tagging by an LLM: the schema (58 genes, anchors, readable tags), prompts and the local
//! tagger (constrained decoding), a tolerant reader of free-form answers, and the resumable
//! result cache.

#[cfg(not(target_arch = "wasm32"))]
pub mod cache;
pub mod parse;
pub mod schema;
pub mod tagger;
