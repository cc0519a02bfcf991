//! Large language models for MGPHot tagging and the E4SRec backbone: model files (GGUF), the
//! byte-level BPE tokenizer rebuilt from them, the Llama-architecture decoder (SmolLM2,
//! Llama 3.x, Qwen2.5) in burn, and generation (chat templates, sampling, constrained ratings).

pub mod generate;
pub mod gguf;
pub mod llama;
pub mod tokenizer;

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
    pub fn from_gguf(g: &Gguf) -> Result<Self, String> {
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
    pub fn template(&self) -> Result<ChatTemplate, String> {
        self.template
            .ok_or_else(|| "no ChatML or Llama 3 chat template in its metadata".to_string())
    }
}

/// A GGUF file's decoder (weights dequantized to float32) with its [`ChatInfo`].
pub struct ChatModel {
    pub model: Llama,
    pub config: LlamaConfig,
    pub info: ChatInfo,
}

impl ChatModel {
    pub fn from_gguf(g: &Gguf, device: &burn::tensor::Device) -> Result<Self, String> {
        let info = ChatInfo::from_gguf(g)?;
        let (model, config) = Llama::from_gguf(g, device)?;
        Ok(Self {
            model,
            config,
            info,
        })
    }
}
