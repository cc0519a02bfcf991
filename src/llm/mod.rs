//! Large language models for MGPHot tagging and the E4SRec backbone: model files (GGUF), the
//! byte-level BPE tokenizer rebuilt from them, the Llama-architecture decoder (SmolLM2,
//! Llama 3.x, Qwen2.5) in burn, and generation (chat templates, sampling, constrained ratings).

pub mod error;
pub mod generate;
pub mod gguf;
pub mod likelihood;
pub mod llama;
pub mod tokenizer;

pub use error::LlmError;

use generate::ChatTemplate;
use gguf::{Gguf, Value};
use llama::{Llama, LlamaConfig};
use tokenizer::BpeTokenizer;

/// What a GGUF chat model brings besides its weights: the tokenizer, the chat template (when it
/// is one of the kinds [`ChatTemplate`] knows) and the model's name.
pub struct ChatInfo {
    pub tok: BpeTokenizer,
    pub template: Option<ChatTemplate>,
    pub name: String,
}

impl ChatInfo {
    pub fn from_gguf(g: &Gguf) -> Result<Self, LlmError> {
        Ok(Self {
            tok: BpeTokenizer::from_gguf(g)?,
            template: g
                .get("tokenizer.chat_template")
                .and_then(Value::as_str)
                .and_then(ChatTemplate::detect),
            name: g
                .get("general.name")
                .and_then(Value::as_str)
                .unwrap_or("model")
                .to_string(),
        })
    }

    /// The chat template, or why there is none.
    pub fn template(&self) -> Result<ChatTemplate, LlmError> {
        self.template.ok_or(LlmError::NoChatTemplate)
    }
}

/// A GGUF file's decoder (weights dequantized to float32) with its [`ChatInfo`].
pub struct ChatModel {
    pub model: Llama,
    pub config: LlamaConfig,
    pub info: ChatInfo,
}

impl ChatModel {
    pub fn from_gguf(g: &Gguf, device: &burn::tensor::Device) -> Result<Self, LlmError> {
        let info = ChatInfo::from_gguf(g)?;
        let (model, config) = Llama::from_gguf(g, device)?;
        Ok(Self {
            model,
            config,
            info,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl ChatModel {
    /// A Hugging Face checkpoint folder: `config.json`, `tokenizer.json`, `tokenizer_config.json`
    /// (its `chat_template`), and `model.safetensors` or the shards that
    /// `model.safetensors.index.json` lists. Returns the model and the sha256 of its weights.
    pub fn from_hf_dir(
        dir: &std::path::Path,
        device: &burn::tensor::Device,
    ) -> Result<(Self, String), LlmError> {
        let read = |name: &str| -> Result<Vec<u8>, LlmError> {
            let p = dir.join(name);
            std::fs::read(&p).map_err(|e| LlmError::io(&p, e))
        };
        let text = |name: &str| -> Result<String, LlmError> {
            String::from_utf8(read(name)?).map_err(|source| LlmError::Utf8 {
                file: name.to_string(),
                source,
            })
        };
        let config = LlamaConfig::from_hf_json(&text("config.json")?)?;
        let tok = BpeTokenizer::from_hf_json(&text("tokenizer.json")?)?;
        let tc: serde_json::Value = match text("tokenizer_config.json") {
            Ok(t) => {
                serde_json::from_str(&t).map_err(|e| LlmError::json("tokenizer_config.json", e))?
            }
            Err(_) => serde_json::Value::Null,
        };
        let template = tc["chat_template"].as_str().and_then(ChatTemplate::detect);
        let files: Vec<String> = match text("model.safetensors.index.json") {
            Ok(t) => {
                const INDEX: &str = "model.safetensors.index.json";
                let idx: serde_json::Value =
                    serde_json::from_str(&t).map_err(|e| LlmError::json(INDEX, e))?;
                let mut f: Vec<String> = idx["weight_map"]
                    .as_object()
                    .ok_or_else(|| LlmError::field(INDEX, "weight_map", "no weight_map"))?
                    .values()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                f.sort();
                f.dedup();
                f
            }
            Err(_) => vec!["model.safetensors".into()],
        };
        let shards = files
            .iter()
            .map(|f| read(f))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sha = <sha2::Sha256 as sha2::Digest>::new();
        for s in &shards {
            sha2::Digest::update(&mut sha, s);
        }
        let sha: String = sha2::Digest::finalize(sha)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let refs: Vec<&[u8]> = shards.iter().map(Vec::as_slice).collect();
        let model = Llama::from_safetensors(&config, &refs, device)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        Ok((
            Self {
                model,
                config,
                info: ChatInfo {
                    tok,
                    template,
                    name,
                },
            },
            sha,
        ))
    }
}

/// An LLM's GGUF file as the LLM runs (E4SRec, zero-shot) read it: parsed, with its tokenizer,
/// chat template and name, and its sha256.
#[cfg(not(target_arch = "wasm32"))]
pub struct LlmFile {
    pub gguf: gguf::Gguf,
    pub sha256: String,
    pub tok: tokenizer::BpeTokenizer,
    pub template: generate::ChatTemplate,
    pub name: String,
}

/// Reads `path`; `recorded` is the sha256 a run recorded when it started (empty: none yet), and
/// a file that changed since is refused.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_llm(path: &std::path::Path, recorded: &str) -> Result<LlmFile, LlmError> {
    let bytes = std::fs::read(path).map_err(|e| LlmError::io(path, e))?;
    let sha256 = crate::util::sha256_hex(&bytes);
    if !recorded.is_empty() && recorded != sha256 {
        return Err(LlmError::Changed {
            path: path.to_path_buf(),
            sha256,
            recorded: recorded.to_string(),
        });
    }
    let gguf = gguf::Gguf::parse(bytes).map_err(|source| LlmError::Gguf {
        path: path.to_path_buf(),
        source,
    })?;
    let info = ChatInfo::from_gguf(&gguf).map_err(|e| e.in_file(path))?;
    let template = info.template().map_err(|e| e.in_file(path))?;
    Ok(LlmFile {
        gguf,
        sha256,
        tok: info.tok,
        template,
        name: info.name,
    })
}
