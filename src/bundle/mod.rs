//! Model bundles: what the web app downloads to recommend on the device.
//!
//! A bundle folder holds `manifest.json` (every other file with its size and sha256, checked
//! before use), `config.json` (the model configuration, the catalog position of each model item,
//! item popularity and where the model came from), `model.bpk` (burnpack weights, float or
//! quantized) and `catalog.json`. `encore export` writes bundles natively; the app reads them.

mod error;
mod format;
mod recommender;

pub use error::BundleError;
pub use format::*;
pub use recommender::*;
