//! The bundle format: `manifest.json` (every other file with its size and sha256), the model
//! configuration and provenance of `config.json`, and the check of downloaded bytes.

use serde::{Deserialize, Serialize};

use super::BundleError;
use crate::model::ModelConfig;
use crate::util::sha256_hex;

pub const FORMAT: &str = "encore-bundle/1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub name: String,
    pub description: String,
    /// `none`, `q8` or `q4`.
    pub quantization: String,
    pub files: Vec<FileEntry>,
    /// For a quantized bundle: test metrics of the float and the quantized weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_effect: Option<QuantizationEffect>,
}

/// What quantization did to the exported seed's test metrics (its run's protocol).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizationEffect {
    pub protocol: String,
    /// Metric name -> [float32, quantized].
    pub metrics: std::collections::BTreeMap<String, [f64; 2]>,
    /// Weight file bytes, float32 and quantized.
    pub bytes: [u64; 2],
}

impl Manifest {
    /// Reads `manifest.json`, refusing another bundle format.
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| BundleError::json("manifest.json", e))?;
        if m.format != FORMAT {
            return Err(BundleError::field(
                "manifest.json",
                "format",
                format!("format '{}' is not {FORMAT}", m.format),
            ));
        }
        Ok(m)
    }

    pub fn file(&self, path: &str) -> Result<&FileEntry, BundleError> {
        self.files
            .iter()
            .find(|f| f.path == path)
            .ok_or_else(|| BundleError::NotListed {
                file: path.to_string(),
            })
    }
}

/// Where a bundle's model came from, shown to listeners.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BundleProvenance {
    pub run: String,
    pub seed: u64,
    pub dataset: String,
    /// True when the training log was simulated (no real listening log exists for the catalog).
    pub simulated: bool,
    pub protocol: String,
    /// Test metrics of the exported seed (name -> value).
    pub metrics: std::collections::BTreeMap<String, f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BundleConfig {
    pub model: ModelConfig,
    /// Catalog track id of each model item, in model order.
    pub items: Vec<String>,
    /// Plays of each model item in the training log (recommendations for an empty history).
    pub popularity: Vec<u32>,
    pub provenance: BundleProvenance,
    /// Labels of content modalities whose dimensions are named (e.g. MGPHot genes scaled to
    /// 0..1), for the app's "why".
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, Vec<String>>,
    /// An E4SRec bundle: the LLM that ranks, over the item table its run was trained on (the
    /// model above still maps tracks, gives popularity and the content for "why").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e4srec: Option<E4SRecPart>,
}

/// What an E4SRec bundle adds: its files and how to rebuild the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct E4SRecPart {
    pub config: crate::model::e4srec::E4SRecConfig,
    /// Token ids before and after the history (the chat template rendered at export).
    pub prompt: (Vec<u32>, Vec<u32>),
    /// The LLM's GGUF file in the bundle (listed in the manifest; large, so placed by
    /// `scripts/demo-model.sh` rather than committed) and its name.
    pub llm: String,
    pub llm_name: String,
    /// The trained parts and the frozen item table (`items`; and `tags`, the tag table, when
    /// tags are embedded), safetensors, float32 or q8.
    pub trained: String,
    /// The text signals' token pieces (tokenized at export), when a signal is text.
    #[serde(default)]
    pub text: crate::model::e4srec::PromptText,
}

/// Checks downloaded bytes against their manifest entry.
pub fn verify(entry: &FileEntry, bytes: &[u8]) -> Result<(), BundleError> {
    if bytes.len() as u64 != entry.bytes {
        return Err(BundleError::Size {
            file: entry.path.clone(),
            bytes: bytes.len() as u64,
            expected: entry.bytes,
        });
    }
    let sha = sha256_hex(bytes);
    if sha != entry.sha256 {
        return Err(BundleError::Digest {
            file: entry.path.clone(),
            sha256: sha,
            expected: entry.sha256.clone(),
        });
    }
    Ok(())
}
