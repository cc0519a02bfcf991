//! The model layer's error: a configuration value that cannot be used (the field named), content
//! that does not fit the model (the modality named), a trained tensor that is missing or cannot
//! be read (the tensor named), and the weights codec's errors.

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// `known`: the model names there are, joined.
    #[error("unknown model '{name}' ({known})")]
    UnknownModel { name: String, known: String },
    #[error("{model} has no hyper-parameter '{key}'")]
    UnknownSetting { model: String, key: String },
    /// A configuration value that cannot be used: `field` names it (`modality_dropout`,
    /// `lora_targets`, `history`, `instruction`...).
    #[error("{reason}")]
    Setting { field: String, reason: String },
    #[error("content modality '{modality}' has no dimensions")]
    EmptyModality { modality: String },
    #[error(
        "content '{modality}' is {tracks} tracks x {dim}, the model expects {want_tracks} x {want_dim}"
    )]
    ContentShape {
        modality: String,
        tracks: usize,
        dim: usize,
        want_tracks: usize,
        want_dim: usize,
    },
    #[error("no tensor '{tensor}' in the checkpoint")]
    NoTensor { tensor: String },
    #[error("'{tensor}' is {got:?}, the model needs {want:?}")]
    TensorShape {
        tensor: String,
        got: Vec<usize>,
        want: Vec<usize>,
    },
    /// A stored tensor that cannot be used as it is (rank, element type, missing scales).
    #[error("'{tensor}' {reason}")]
    Tensor { tensor: String, reason: String },
    /// A tensor's values that could not be read back from its device.
    #[error("{tensor}: {reason}")]
    ReadBack { tensor: String, reason: String },
    /// Inputs that do not fit the model as a whole (no field, tensor or modality to name).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Weights(#[from] crate::util::weights::WeightsError),
}

impl ModelError {
    pub fn setting(field: &str, reason: impl Into<String>) -> Self {
        Self::Setting {
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    pub fn tensor(tensor: &str, reason: impl Into<String>) -> Self {
        Self::Tensor {
            tensor: tensor.to_string(),
            reason: reason.into(),
        }
    }
}
