//! The llm layer's error: a model file that could not be read or parsed (GGUF path, checkpoint
//! file, safetensors shard), a metadata key, checkpoint field or tensor that is missing or cannot
//! be used (named), a tokenizer whose vocabulary and merges do not fit (vocabulary id, merge
//! rank), and generation that cannot go on.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A GGUF file that does not parse.
    #[error("{path}: {source}")]
    Gguf { path: PathBuf, source: GgufError },
    /// A parsed GGUF file's tensor data that could not be read (the tensor is named).
    #[error(transparent)]
    GgufData(#[from] GgufError),
    #[error(transparent)]
    Weights(#[from] crate::util::weights::WeightsError),
    /// A checkpoint file (`config.json`, `tokenizer.json`, ...) that is not JSON.
    #[error("{file}: {source}")]
    Json {
        file: String,
        source: serde_json::Error,
    },
    /// A checkpoint file that is not UTF-8.
    #[error("{file}: {source}")]
    Utf8 {
        file: String,
        source: std::string::FromUtf8Error,
    },
    /// A checkpoint file's entry that is missing or cannot be used: `field` names it.
    #[error("{file}: {reason}")]
    Field {
        file: String,
        field: String,
        reason: String,
    },
    /// A safetensors shard (numbered from 1, in the order given) that does not parse.
    #[error("safetensors file {shard}: {source}")]
    Shard {
        shard: usize,
        source: crate::util::weights::WeightsError,
    },
    #[error("no metadata entry '{key}'")]
    NoKey { key: String },
    /// `value` is the entry as found (its `Debug` form).
    #[error("metadata '{key}' has an unexpected type ({value})")]
    KeyType { key: String, value: String },
    /// A GGUF metadata entry that is present but describes something not implemented, or that
    /// does not fit the others: `key` names it.
    #[error("metadata {key}: {reason}")]
    Metadata { key: String, reason: String },
    #[error("no tensor '{name}'")]
    NoTensor { name: String },
    #[error("tensor '{name}' is {got:?}, the config needs {want:?}")]
    Shape {
        name: String,
        got: Vec<usize>,
        want: Vec<usize>,
    },
    /// `dtype` is the element type found (its `Debug` form).
    #[error("tensor '{name}' is {dtype}, not F32, F16 or BF16")]
    Dtype { name: String, dtype: String },
    #[error("pre-tokenizer '{name}' is not implemented (gpt2, smollm, starcoder)")]
    PreTokenizer { name: String },
    #[error("merge {rank} '{merge}' is not two tokens")]
    MergePair { rank: usize, merge: String },
    #[error("merge {rank} '{merge}': '{token}' is not in the vocabulary")]
    MergeToken {
        rank: usize,
        merge: String,
        token: String,
    },
    #[error("control token {id} is outside the vocabulary")]
    ControlToken { id: u32 },
    /// A gap in a checkpoint's vocabulary.
    #[error("{file}: no token has id {id}")]
    NoId { file: String, id: usize },
    #[error("the vocabulary has no token '{token}'")]
    NoToken { token: String },
    #[error("no ChatML or Llama 3 chat template in its metadata")]
    NoChatTemplate,
    #[error("nothing was fed")]
    NothingFed,
    #[error("{path} changed since the run started (sha256 {sha256}, then {recorded})")]
    Changed {
        path: PathBuf,
        sha256: String,
        recorded: String,
    },
    /// An error in the model file at `path`.
    #[error("{path}: {source}")]
    InFile {
        path: PathBuf,
        source: Box<LlmError>,
    },
}

impl LlmError {
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

    pub fn field(file: &str, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Field {
            file: file.to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn metadata(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Metadata {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// This error, as one in the model file at `path`.
    pub fn in_file(self, path: &Path) -> Self {
        Self::InFile {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }
}

/// What went wrong in a GGUF file's bytes, with where (byte offset, metadata key, tensor).
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("not a GGUF file (magic {0:?})")]
    Magic([u8; 4]),
    #[error("GGUF version {0} (this reader knows 2 and 3)")]
    Version(u32),
    #[error("truncated: {what} needs bytes {start}..{end}, the file has {len}")]
    Truncated {
        what: String,
        start: usize,
        end: usize,
        len: usize,
    },
    #[error("byte {at}: {what}")]
    Malformed { at: usize, what: String },
    #[error("tensor '{name}': {what}")]
    Tensor { name: String, what: String },
}
