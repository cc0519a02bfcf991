//! The data layer's error: a file that could not be read or written, a malformed line (file and
//! line), or input that is wrong as a whole (file and reason).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Malformed {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{name}: line {line}, column {column}: {source}")]
    Json {
        name: String,
        line: usize,
        column: usize,
        source: serde_json::Error,
    },
    /// A record that parsed but holds a value out of range: `field` names the record and field.
    #[error("{name}: {field}: {reason}")]
    Field {
        name: String,
        field: String,
        reason: String,
    },
    /// A setting (preset, generator configuration) that cannot be used.
    #[error("{0}")]
    Setting(String),
    /// A stored table whose parts do not fit together.
    #[error("{0}")]
    Corrupt(String),
    #[error(
        "user {user} has heard {heard} of {tracks} tracks: fewer than {needed} unheard tracks to sample"
    )]
    TooFewUnheard {
        user: String,
        heard: usize,
        tracks: u64,
        needed: usize,
    },
    #[error(transparent)]
    File(#[from] crate::util::fsio::FileError),
}

impl DataError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub fn json(name: &str, source: serde_json::Error) -> Self {
        Self::Json {
            name: name.to_string(),
            line: source.line(),
            column: source.column(),
            source,
        }
    }
    pub fn invalid(path: &Path, reason: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
