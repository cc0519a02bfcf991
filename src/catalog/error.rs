//! The catalog layer's error: a spec or folder that could not be read, a source without audio,
//! or a track that breaks the catalog's rules (named by index or id).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[cfg(not(target_arch = "wasm32"))]
    #[error("{path}: {source}")]
    Spec {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("source '{id}': {reason}")]
    Source { id: String, reason: String },
    #[error("track {track}: {reason}")]
    Track { track: String, reason: String },
}

impl CatalogError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
