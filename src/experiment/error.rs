//! The experiment layer's error: a run folder (or a seed's file in it) that cannot be used, a
//! spec or flag setting that cannot run, a seed's child process that failed (seed and exit
//! status), an ablation configuration file's field (file, field, line), and the lower layers'
//! errors met while running, scoring and exporting (a file that could not be read or written
//! is the util layer's `FileError`, with its path), with the file they came from where the
//! message names one.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use crate::bundle::BundleError;
use crate::catalog::CatalogError;
use crate::data::error::DataError;
use crate::eval::EvalError;
use crate::features::FeatureError;
use crate::llm::LlmError;
use crate::model::ModelError;
use crate::train::TrainError;
use crate::util::fsio::FileError;
use crate::util::weights::WeightsError;

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// A file's entry that is missing or cannot be used: `field` names it.
    #[error("{path}: {reason}")]
    Field {
        path: PathBuf,
        field: String,
        reason: String,
    },
    /// A spec setting or flag that cannot be used: `field` names it (`protocol`, `fusion`,
    /// `train`, `quantize`, `prompt_tags`...).
    #[error("{reason}")]
    Setting { field: String, reason: String },
    /// A run folder and what is wrong with it.
    #[error("{run}: {reason}")]
    Run { run: PathBuf, reason: String },
    #[error("{run} holds a run with other settings; write to a new folder (-o) or remove it")]
    OtherSettings { run: PathBuf },
    /// A seed's file of a run (its trained model) that is missing: `path` names the file.
    #[error("{path}: {reason}")]
    Seed {
        path: PathBuf,
        seed: u64,
        reason: String,
    },
    #[error("{data} changed since the run (sha256 {sha256} now, {recorded} then)")]
    DataChanged {
        data: PathBuf,
        sha256: String,
        recorded: String,
    },
    /// The item encoder's `run.json` that could not be read.
    #[error("--item-encoder: {source} (a folder written by encore train)")]
    ItemEncoder { source: FileError },
    #[error(
        "{path}: modality '{modality}' has no labels for its dimensions, so its tags cannot be \
         written as text (use --prompt-tags embed)"
    )]
    NoLabels { path: PathBuf, modality: String },
    #[error(
        "{data}: the tracks have no names (every name is its id), so there is nothing for a \
         language model to read; use a log with titles (lastfm1k, spotify, listenbrainz, recbole \
         with a .item file)"
    )]
    Unnamed { data: PathBuf },
    #[error("track '{track}' of the training data is not in {catalog}")]
    NotInCatalog { track: String, catalog: PathBuf },
    /// Data or results that leave nothing to go on (no file, setting or field to name).
    #[error("{0}")]
    Invalid(String),
    #[error("finding this program: {0}")]
    Exe(#[source] std::io::Error),
    /// A seed's child process (`encore train-seed`) that could not be started.
    #[error("starting {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("waiting for seed {seed}: {source}")]
    Wait { seed: u64, source: std::io::Error },
    /// Seeds whose child process ended in failure, with its exit status.
    #[error(
        "training failed for seeds {:?} (their messages are above)",
        .failed.iter().map(|(seed, _)| *seed).collect::<Vec<u64>>()
    )]
    Children { failed: Vec<(u64, ExitStatus)> },
    /// An ablation configuration file that is not TOML or not an ablation (an unknown key).
    #[error("{path}: line {line}: {}", .source.message())]
    AblationToml {
        path: PathBuf,
        line: usize,
        source: toml::de::Error,
    },
    /// An ablation configuration file's value that cannot be used: `field` names it.
    #[error("{path}: {reason}")]
    Ablation {
        path: PathBuf,
        field: String,
        reason: String,
    },
    /// A trained model that could not be saved (burn's recorder error).
    #[error("{path}: {reason}")]
    SaveModel { path: PathBuf, reason: String },
    #[error("serialising the model: {0}")]
    Serialise(String),
    #[error("{from} -> {to}: {source}")]
    Link {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
    /// An error met in the file or folder at `path`.
    #[error("{path}: {source}")]
    At {
        path: PathBuf,
        source: Box<ExperimentError>,
    },
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Weights(#[from] WeightsError),
}

impl ExperimentError {
    /// A file or folder at `path` that could not be read or written.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::File(FileError::io(path, source))
    }

    pub fn setting(field: &str, reason: impl Into<String>) -> Self {
        Self::Setting {
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    pub fn run(run: &Path, reason: impl Into<String>) -> Self {
        Self::Run {
            run: run.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub fn ablation(path: &Path, field: &str, reason: impl Into<String>) -> Self {
        Self::Ablation {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    /// `source` (any error of this layer or below), as met in the file or folder at `path`.
    pub fn at(path: &Path, source: impl Into<ExperimentError>) -> Self {
        Self::At {
            path: path.to_path_buf(),
            source: Box::new(source.into()),
        }
    }
}
