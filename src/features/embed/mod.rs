//! Filling a feature store by running the content models (native): [`audio`] embeds a folder of
//! audio files with musicnn, [`text`] embeds texts (lyrics, descriptions) with MiniLM.

pub mod audio;
pub mod text;
