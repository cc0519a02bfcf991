//! The training layer's error: settings that cannot train, a checkpoint or model file that
//! cannot be read or written (with its path), content that does not fit the dataset.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A training setting that cannot be used.
    #[error("{0}")]
    Config(String),
    /// A checkpoint, optimiser or model file that could not be read or written.
    #[error("{path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error(
        "{dir} holds a checkpoint of a different run (model, training settings, seed or data \
         changed); write to a new output folder or remove it"
    )]
    OtherRun { dir: PathBuf },
    /// A content source that is not usable for this dataset.
    #[error("{path}: {reason}")]
    Content { path: PathBuf, reason: String },
    #[error(
        "{path}: line {line}, column {column}: not an item2attributes object \
         ({{\"item\": [attribute ids]}}): {source}"
    )]
    Attributes {
        path: PathBuf,
        line: usize,
        column: usize,
        source: serde_json::Error,
    },
    /// The model refused its configuration or content.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// The feature store behind a content source could not be read.
    #[error(transparent)]
    Features(#[from] crate::features::FeatureError),
}

impl TrainError {
    pub fn checkpoint(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self::Checkpoint {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
    pub fn content(path: &Path, reason: impl Into<String>) -> Self {
        Self::Content {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
