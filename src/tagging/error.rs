//! The tagging layer's error: a result cache that could not be read or written (its path, and
//! the line of a damaged entry), a chat-completions server that refused or failed (its URL), an
//! answer that lacks genes (which), settings that cannot tag, and the features and llm layers'
//! errors.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TagError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A complete line of the cache that is not an entry.
    #[error("{path}: line {line}: {source}")]
    CacheLine {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    /// An entry that could not be written as JSON.
    #[error("{path}: {source}")]
    CacheEntry {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "endpoint '{endpoint}' is not an http:// or https:// URL (for example http://127.0.0.1:8080/v1)"
    )]
    Endpoint { endpoint: String },
    #[error("per-gene rating reads the model's probabilities of each rating: local models only")]
    PerGeneRemote,
    /// The server at `url` that could not be reached or whose reply could not be read.
    #[cfg(not(target_arch = "wasm32"))]
    #[error("{url}: {what}{source}")]
    Transport {
        url: String,
        /// What failed, when not the request itself (`reading the reply: `).
        what: &'static str,
        source: ureq::Error,
    },
    /// What the server at `url` answered (HTTP status, a reply that is not chat completions).
    #[error("{url}: {reason}")]
    Server { url: String, reason: String },
    /// An answer without every gene asked for: `first` names the first missing key.
    #[error(
        "the answer{} lacks {missing} of {asked} keys ({first}...): {answer}",
        if *.cut { ", cut by the token limit," } else { "" }
    )]
    Incomplete {
        cut: bool,
        missing: usize,
        asked: usize,
        first: String,
        answer: String,
    },
    /// The last failure of a request that was tried `attempts` times.
    #[error("{source} (after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        source: Box<TagError>,
    },
    #[error("{dir}: no track has a title to ask about")]
    NoTitles { dir: PathBuf },
    #[error("--notes needs --catalog or a store with musicnn's audio_tags (encore features audio)")]
    NoNotes,
    #[error(transparent)]
    Feature(#[from] crate::features::FeatureError),
    #[error(transparent)]
    Llm(#[from] crate::llm::LlmError),
}

impl TagError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
