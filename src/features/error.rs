//! The features layer's error: a file that could not be read (with its path), a row of a vector,
//! text or label file that is wrong (file and line), a store file that does not fit its manifest
//! (`manifest.json`, a modality's safetensors file), a modality, tensor or track key that is
//! missing or cannot be used (named), and the lower layers' errors.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A JSON file (`manifest.json`, `tokenizer.json`, `config.json`, ...) that does not parse.
    #[error("{file}: {source}")]
    Json {
        file: String,
        source: serde_json::Error,
    },
    #[error("{path}: not a catalog: {source}")]
    NotCatalog {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A row of a JSONL, CSV, TSV or mapping file that is wrong.
    #[error("{path}:{line}: {reason}")]
    Row {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// A row that is not JSON (`what` says what it should be: `not a JSON object`, ...).
    #[error("{path}:{line}: {what}: {source}")]
    RowJson {
        path: PathBuf,
        line: usize,
        what: &'static str,
        source: serde_json::Error,
    },
    /// A row whose values a modality refuses (the source says why).
    #[error("{path}:{line}: {source}")]
    RowValues {
        path: PathBuf,
        line: usize,
        source: Box<FeatureError>,
    },
    /// Input that is wrong as a whole (rows and ids that do not pair up, an unknown format).
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    /// A track key of a label file whose entry cannot be used.
    #[error("{path}: '{key}' {reason}")]
    Key {
        path: PathBuf,
        key: String,
        reason: String,
    },
    /// Keys (with their lines; line 0 where the format has none) that no track of the store has.
    #[error(
        "{path}: {} unknown track key(s), not in the store's {tracks} tracks ({}){}",
        .keys.len(),
        shown_keys(.keys),
        if *.nothing_stored { "; nothing was stored" } else { "" }
    )]
    UnknownKeys {
        path: PathBuf,
        keys: Vec<(usize, String)>,
        tracks: usize,
        nothing_stored: bool,
    },
    /// A file's entry that is missing or cannot be used: `field` names it.
    #[error("{file}: {reason}")]
    Field {
        file: String,
        field: String,
        reason: String,
    },
    #[error("{file}: no tensor {name}")]
    NoTensor { file: String, name: String },
    #[error("{file}: {name} has shape {got:?}, expected {want:?}")]
    TensorShape {
        file: String,
        name: String,
        got: Vec<usize>,
        want: Vec<usize>,
    },
    /// A modality's safetensors file that does not parse or whose tensors do not fit.
    #[error("{file}: {source}")]
    Safetensors {
        file: String,
        source: crate::util::weights::WeightsError,
    },
    #[error("{file}: sha256 {sha256}, the manifest says {recorded}")]
    Checksum {
        file: String,
        sha256: String,
        recorded: String,
    },
    #[error("a track id is empty")]
    EmptyTrackId,
    #[error("track id '{id}' is listed twice")]
    DuplicateTrack { id: String },
    #[error("modality name '{name}': use a-z, 0-9, '_' or '-'")]
    ModalityName { name: String },
    /// A modality that cannot be created as asked.
    #[error("modality {modality}: {reason}")]
    Modality { modality: String, reason: String },
    #[error("no modality {modality}")]
    NoModality { modality: String },
    #[error("modality {modality} holds {holds}-d vectors; these are {dim}-d")]
    Redefined {
        modality: String,
        holds: usize,
        dim: usize,
    },
    #[error("modality {modality} holds {holds}-d vectors; got {got}")]
    Dimension {
        modality: String,
        holds: usize,
        got: usize,
    },
    /// A vector's value (numbered from 0) that is NaN or infinite.
    #[error("value {index} is not finite ({value})")]
    NotFinite {
        modality: String,
        index: usize,
        value: f32,
    },
    #[error("mgphot vectors have {want} genes; got {got}")]
    GeneCount { want: usize, got: usize },
    /// A gene (numbered from 1) outside [0, 1].
    #[error("mgphot gene {gene} is {value}, outside [0, 1]")]
    GeneRange { gene: usize, value: f32 },
    /// The bytes of a vector file (`.npy`, safetensors) that do not hold a usable 2-D array; the
    /// caller names the file.
    #[error("{0}")]
    Format(String),
    #[error("{dir}: no audio files (mp3, ogg, oga, flac, wav)")]
    NoAudio { dir: PathBuf },
    #[error("{prefix}: no weights in the checkpoint")]
    NoWeights { prefix: PathBuf },
    /// A tokenizer file the Hugging Face tokenizers crate refuses.
    #[cfg(not(target_arch = "wasm32"))]
    #[error("{file}: {source}")]
    Tokenizer {
        file: String,
        source: tokenizers::Error,
    },
    /// A text the Hugging Face tokenizer cannot encode.
    #[cfg(not(target_arch = "wasm32"))]
    #[error("{0}")]
    Encode(#[source] tokenizers::Error),
    /// The Python of the numpy references that could not be run.
    #[error("{python} (scripts/setup.sh makes it): {source}")]
    Python {
        python: PathBuf,
        source: std::io::Error,
    },
    /// An error in the file or folder at `path`.
    #[error("{path}: {source}")]
    InFile {
        path: PathBuf,
        source: Box<FeatureError>,
    },
    #[cfg(not(target_arch = "wasm32"))]
    #[error(transparent)]
    Tf1(#[from] super::tf1::Tf1Error),
    #[error(transparent)]
    Data(#[from] crate::data::error::DataError),
    #[cfg(not(target_arch = "wasm32"))]
    #[error(transparent)]
    Audio(#[from] crate::audio::AudioError),
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    #[error(transparent)]
    Weights(#[from] crate::util::weights::WeightsError),
    #[error(transparent)]
    File(#[from] crate::util::fsio::FileError),
}

/// The first five keys with their lines (line 0: the format has no lines).
fn shown_keys(keys: &[(usize, String)]) -> String {
    let shown: Vec<String> = keys
        .iter()
        .take(5)
        .map(|(l, k)| {
            let k = k.replace('\t', " / ");
            if *l > 0 {
                format!("line {l}: '{k}'")
            } else {
                format!("'{k}'")
            }
        })
        .collect();
    format!(
        "{}{}",
        shown.join(", "),
        if keys.len() > 5 { ", ..." } else { "" }
    )
}

impl FeatureError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn json(file: &str, source: serde_json::Error) -> Self {
        Self::Json {
            file: file.to_string(),
            source,
        }
    }

    pub fn row(path: &Path, line: usize, reason: impl Into<String>) -> Self {
        Self::Row {
            path: path.to_path_buf(),
            line,
            reason: reason.into(),
        }
    }

    pub fn invalid(path: &Path, reason: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub fn field(file: &str, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Field {
            file: file.to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// This error, as one in the file or folder at `path`.
    pub fn in_file(self, path: &Path) -> Self {
        Self::InFile {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }
}
