//! The eval layer's error: a protocol setting out of range, a samples file whose lines do not
//! fit the data (line, user and track named), and the data layer's errors.

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A protocol setting that cannot be used (no file or field to name).
    #[error("{0}")]
    Setting(String),
    #[error("the samples file has no line for user {user}")]
    NoSamples { user: String },
    #[error("the samples file lists user {user}'s target {track} as a negative")]
    TargetIsNegative { user: String, track: String },
    #[error("line {line}: user {user} has {got} negatives, the protocol needs {want}")]
    NegativeCount {
        line: usize,
        user: u32,
        got: usize,
        want: usize,
    },
    #[error("line {line}: track {track} does not occur in the data")]
    UnknownTrack { line: usize, track: u32 },
    /// Scores that could not be read back from the device.
    #[error("reading scores back from the device: {0}")]
    ReadBack(String),
    #[error(transparent)]
    Data(#[from] crate::data::error::DataError),
}

impl EvalError {
    pub(crate) fn read_back(e: impl std::fmt::Debug) -> Self {
        Self::ReadBack(format!("{e:?}"))
    }
}
