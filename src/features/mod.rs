//! Content features per track: audio (musicnn), text (MiniLM), tags, attributes and completion,
//! kept in one feature store ([`store::FeatureStore`]).

pub use error::FeatureError;

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod dsp;
#[cfg(not(target_arch = "wasm32"))]
pub mod embed;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod import;
pub mod musicnn;
pub mod store;
pub mod tags;
pub mod text;
#[cfg(not(target_arch = "wasm32"))]
pub mod tf1;
#[cfg(not(target_arch = "wasm32"))]
pub mod tracks;
