//! The page's error: a download, the IndexedDB store, a browser call, or a lower layer's
//! error with the file or URL it came from. Components show it as text.

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A download from the app's own origin.
    #[error("{url}: {reason}")]
    Fetch { url: String, reason: String },
    /// The listening history's IndexedDB store (`what`: open, read, write, commit, clear).
    #[error("IndexedDB {what}: {reason}")]
    Storage { what: &'static str, reason: String },
    /// A browser API call that failed, with the browser's message.
    #[error("{0}")]
    Browser(String),
    #[error("not an audio file the browser can decode ({0})")]
    Undecodable(String),
    /// Anything wrong with a named file or bundle folder.
    #[error("{name}{sep}{reason}", sep = if name.ends_with('/') { "" } else { ": " })]
    In { name: String, reason: String },
    #[error(transparent)]
    Data(#[from] crate::data::error::DataError),
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
}

impl WebError {
    pub fn fetch(url: &str, reason: impl std::fmt::Display) -> Self {
        Self::Fetch {
            url: url.to_string(),
            reason: reason.to_string(),
        }
    }
    /// `e` said of `name` (a file name, or a bundle folder ending in `/`).
    pub fn within(name: &str, e: impl std::fmt::Display) -> Self {
        Self::In {
            name: name.to_string(),
            reason: e.to_string(),
        }
    }
}
