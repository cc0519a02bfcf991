//! The bottom layer: what every other layer may use and that knows none of them: delimited
//! text, digests, atomic file writes and JSON files, folders replaced whole, untrusted text made printable, the seeded generator, and
//! safetensors weights.

pub mod delimited;
pub mod digest;
pub mod fsio;
#[cfg(not(target_arch = "wasm32"))]
pub mod progress;
pub mod rng;
#[cfg(not(target_arch = "wasm32"))]
pub mod staged;
pub mod text;
pub mod weights;

pub use digest::sha256_hex;
