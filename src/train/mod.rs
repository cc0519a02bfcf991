//! Training a sequential model for one seed: AdamW with warm-up and decay, gradient clipping,
//! dropout, early stopping on a validation metric, and a checkpoint after every epoch that a
//! killed run resumes from with the same final result.
//!
//! Determinism: the device is re-seeded at the start of every epoch from `(seed, epoch)`, and
//! shuffling and negative sampling use streams of the project's own generator keyed the same
//! way, so an epoch depends only on the weights and optimiser state it starts from, which the
//! checkpoint holds exactly.

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod content;
pub mod error;
pub mod fit;
pub mod loss;

pub use config::{Decay, EpochLog, TrainConfig};
pub use error::TrainError;
pub use fit::{
    TrainJob, Trained, engagement_weight, load_model, rank_cases, train, training_completions,
    training_sequences,
};
