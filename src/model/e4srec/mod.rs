//! E4SRec (Li et al. 2023): an LLM reads a listener's history as one soft token per track and
//! a trained head ranks the whole catalogue from its last hidden state.
//!
//! The item representation is frozen: a trained backbone's item table (id embeddings, or fused
//! id + content rows, or the content-only encoder's rows). A trained linear projection maps each
//! row into the LLM's width. The input is the instruction's tokens, then the history's soft
//! tokens, then the response marker, run through the decoder from embeddings
//! ([`Llama::forward_embeds_masked`]); the last position's hidden state goes through a trained
//! item head with one output per track. The decoder's weights stay frozen; LoRA adapters
//! (burn's [`Lora`]) on the configured projections, the projection and the head are all that
//! train, and all that [`E4SRec::trained`] returns for saving.
//!
//! A batch is left-padded: padding positions come first and are hidden from every query by a key
//! bias, so each row scores as it would alone (rotary attention depends only on relative
//! positions).

mod config;
mod module;
mod parts;
mod prompt;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

pub use config::{COMPLETION_BUCKETS, E4SRecConfig, ITEMS, LORA_TARGETS, Signal};
pub use module::E4SRec;
pub use parts::{Q8_BLOCK, trained_from_bytes, trained_to_bytes};
pub use prompt::{PromptText, Signals};
