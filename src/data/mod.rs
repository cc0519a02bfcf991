//! Listening data: readers for the logs people have, one interned event model, completion
//! ratios, preprocessing presets, evaluation splits, candidate sets, the binary store and a
//! synthetic log generator with known latent content.

pub mod completion;
pub mod intern;
pub mod log;
pub mod preprocess;
pub mod rng;
pub mod split;
pub mod synth;
pub mod time;

#[cfg(not(target_arch = "wasm32"))]
pub mod ingest;
#[cfg(not(target_arch = "wasm32"))]
pub mod read;
#[cfg(not(target_arch = "wasm32"))]
pub mod store;

pub use log::{EventLog, RawEvent};

/// Lower-case hex of bytes (digests).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a byte slice, hex: log sources, datasets and model bundles (natively and in the
/// page).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}
pub use preprocess::{Dataset, Preset, StepStats, preprocess};
