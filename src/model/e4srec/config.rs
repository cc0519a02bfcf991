//! E4SRec's configuration: the prompt, LoRA and the signals about each history play.

use burn::module::ParamGroup;
use serde::{Deserialize, Serialize};

use crate::model::ModelError;

/// Where the history goes in the instruction.
pub const ITEMS: &str = "{items}";

/// The projections LoRA can adapt, by their short names.
pub const LORA_TARGETS: [&str; 7] = ["q", "k", "v", "o", "gate", "up", "down"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct E4SRecConfig {
    /// Most recent history items read (older ones are dropped).
    pub history: usize,
    pub lora_rank: usize,
    pub lora_alpha: f64,
    /// Adapted projections, among [`LORA_TARGETS`] (E4SRec: the MLP's gate, up and down).
    pub lora_targets: Vec<String>,
    /// The user message; [`ITEMS`] marks where the soft tokens go.
    pub instruction: String,
    /// Text after the assistant marker, before the position whose state is read.
    pub response: String,
    /// How each history play's completion ratio enters the prompt.
    pub completion: Signal,
    /// How each history track's tags (a labelled content modality, e.g. MGPHot genes) enter
    /// the prompt.
    pub tags: Signal,
    /// Tags per track in [`Signal::Text`]: its strongest labels.
    pub tag_count: usize,
}

/// How a signal about each history play enters E4SRec's prompt (switchable for ablation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signal {
    /// Not at all.
    #[default]
    Off,
    /// As words after the play's soft token, e.g. `(heard 80%; Tempo High, Major)`.
    Text,
    /// As a trained vector added to the play's soft token: a learned embedding of the
    /// completion bucket, or a trained projection of the track's tag vector.
    Embed,
}

impl std::str::FromStr for Signal {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(Self::Off),
            "text" => Ok(Self::Text),
            "embed" => Ok(Self::Embed),
            _ => Err(format!("'{s}' is not off, text or embed")),
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::Text => "text",
            Self::Embed => "embed",
        })
    }
}

/// Buckets of the completion embedding (plus one for an unknown ratio).
pub const COMPLETION_BUCKETS: usize = 10;

impl Default for E4SRecConfig {
    fn default() -> Self {
        Self {
            history: 50,
            lora_rank: 16,
            lora_alpha: 16.0,
            lora_targets: vec!["gate".into(), "up".into(), "down".into()],
            instruction: format!(
                "Given the tracks a listener played, in order, predict the next track.\nHistory: {ITEMS}"
            ),
            response: "Next track:".into(),
            completion: Signal::Off,
            tags: Signal::Off,
            tag_count: 3,
        }
    }
}

impl E4SRecConfig {
    /// The LoRA targets as a pattern over the decoder's parameter paths.
    pub(super) fn lora_group(&self) -> Result<ParamGroup, ModelError> {
        let targets = |reason: String| ModelError::setting("lora_targets", reason);
        let mut alts = Vec::new();
        for t in &self.lora_targets {
            let path = match t.as_str() {
                "q" | "k" | "v" | "o" => format!("attn\\.{t}"),
                "gate" | "up" | "down" => format!("mlp\\.{t}"),
                _ => {
                    return Err(targets(format!(
                        "unknown LoRA target '{t}' (one of {})",
                        LORA_TARGETS.join(", ")
                    )));
                }
            };
            alts.push(path);
        }
        if alts.is_empty() {
            return Err(targets("no LoRA target".into()));
        }
        let re = format!("^layers\\.[0-9]+\\.({})\\.weight$", alts.join("|"));
        ParamGroup::from_regex(&re).map_err(|e| targets(format!("{re}: {e:?}")))
    }

    /// The signals that are on, for names and logs: `""`, or e.g. `"completion as text, tags as
    /// embeddings"`.
    pub fn signals_label(&self) -> String {
        let how = |s: Signal| match s {
            Signal::Off => None,
            Signal::Text => Some("as text"),
            Signal::Embed => Some("as embeddings"),
        };
        [("completion", self.completion), ("tags", self.tags)]
            .iter()
            .filter_map(|&(n, s)| how(s).map(|h| format!("{n} {h}")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
