//! Listening data: readers for the logs people have, one interned event model, completion
//! ratios, preprocessing presets, evaluation splits, candidate sets, the binary store and a
//! synthetic log generator with known latent content.

pub mod completion;
pub mod error;
pub mod history;
pub mod intern;
pub mod log;
pub mod preprocess;
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

pub use preprocess::{Dataset, Preset, StepStats, preprocess};
