//! MGPHot tagging by an LLM: the schema (58 genes, anchors, readable tags) and a tolerant reader
//! of the model's answers.

pub mod parse;
pub mod schema;
