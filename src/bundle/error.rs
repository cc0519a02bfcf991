//! The bundle layer's error: a bundle file that does not parse, does not match the manifest or
//! holds something the model cannot use (the file, and the field or track, named), a
//! recommendation request that does not fit the bundle, and the model, catalog and LLM errors
//! met while loading, each with the bundle file it came from.

use crate::catalog::CatalogError;
use crate::llm::LlmError;
use crate::model::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{file}: {source}")]
    Json {
        file: String,
        source: serde_json::Error,
    },
    /// A file's entry that cannot be used: `field` names it (`format`, `items`...).
    #[error("{file}: {reason}")]
    Field {
        file: String,
        field: String,
        reason: String,
    },
    #[error("manifest.json lists no {file}")]
    NotListed { file: String },
    #[error("{file}: {bytes} bytes, the manifest says {expected}")]
    Size {
        file: String,
        bytes: u64,
        expected: u64,
    },
    #[error("{file}: sha256 {sha256} does not match the manifest ({expected})")]
    Digest {
        file: String,
        sha256: String,
        expected: String,
    },
    #[error("config.json: item '{track}' is not in catalog.json")]
    UnknownItem { track: String },
    #[error("config.json has no e4srec part")]
    NoE4SRec,
    /// A file whose contents cannot be used as a whole (weights that do not load).
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("{file}: {source}")]
    Catalog {
        file: String,
        source: Box<CatalogError>,
    },
    /// A model part built from the bundle file `file` that the model refused.
    #[error("{file}: {source}")]
    Part { file: String, source: ModelError },
    #[error("{file}: {source}")]
    Llm { file: String, source: LlmError },
    /// A recommendation request that does not fit the bundle (no file involved).
    #[error("{0}")]
    Request(String),
    /// Scoring that failed on the device (reading the scores back).
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl BundleError {
    pub fn json(file: &str, source: serde_json::Error) -> Self {
        Self::Json {
            file: file.to_string(),
            source,
        }
    }

    pub fn field(file: &str, field: &str, reason: impl Into<String>) -> Self {
        Self::Field {
            file: file.to_string(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    pub fn invalid(file: &str, reason: impl std::fmt::Display) -> Self {
        Self::Invalid {
            file: file.to_string(),
            reason: reason.to_string(),
        }
    }

    /// A model error met in the bundle file `file`.
    pub fn part(file: &str, source: ModelError) -> Self {
        Self::Part {
            file: file.to_string(),
            source,
        }
    }

    /// An LLM error (a GGUF file's, a decoder's) met in the bundle file `file`.
    pub fn llm(file: &str, source: impl Into<LlmError>) -> Self {
        Self::Llm {
            file: file.to_string(),
            source: source.into(),
        }
    }
}
