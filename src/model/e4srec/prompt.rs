//! The prompt's text: the tokens around the soft tokens, and the notes (completion, tags) after each play.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::config::{E4SRecConfig, ITEMS, Signal};
use crate::llm::generate::ChatTemplate;
use crate::llm::tokenizer::BpeTokenizer;
use crate::model::ModelError;

/// Token pieces of the text signals (tokenized once, with the LLM's tokenizer): a play's note
/// is `open`, then its completion's words and its track's tags joined by `sep`, then `close`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptText {
    pub open: Vec<u32>,
    pub sep: Vec<u32>,
    pub close: Vec<u32>,
    /// `heard 0%` .. `heard 100%` in steps of 10 (11 entries) when completion is text.
    pub completion: Vec<Vec<u32>>,
    /// Each item's tags (empty: none) when tags are text.
    pub tags: Vec<Vec<u32>>,
}

impl PromptText {
    /// The pieces for `cfg`, with `tags[item]` the item's tag words (`None`: tags not in text).
    pub fn build(cfg: &E4SRecConfig, tok: &BpeTokenizer, tags: Option<&[String]>) -> Self {
        let mut t = Self::default();
        if cfg.completion != Signal::Text && cfg.tags != Signal::Text {
            return t;
        }
        t.open = tok.encode(" (");
        t.sep = tok.encode("; ");
        t.close = tok.encode(")");
        if cfg.completion == Signal::Text {
            t.completion = (0..=10)
                .map(|i| tok.encode(&format!("heard {}%", i * 10)))
                .collect();
        }
        if let (Signal::Text, Some(tags)) = (cfg.tags, tags) {
            t.tags = tags.iter().map(|s| tok.encode(s)).collect();
        }
        t
    }

    /// A play's note (empty when it has nothing to say).
    pub(super) fn note(&self, item: u32, ratio: f32, out: &mut Vec<u32>) {
        let start = out.len();
        let part = |p: &[u32], out: &mut Vec<u32>| {
            if p.is_empty() {
                return;
            }
            out.extend_from_slice(if out.len() == start {
                &self.open
            } else {
                &self.sep
            });
            out.extend_from_slice(p);
        };
        if !self.completion.is_empty() && !ratio.is_nan() {
            let i = (ratio.clamp(0.0, 1.0) * 10.0).round() as usize;
            part(&self.completion[i], out);
        }
        if let Some(t) = self.tags.get(item as usize) {
            part(t, out);
        }
        if out.len() > start {
            out.extend_from_slice(&self.close);
        }
    }
}

/// The frozen inputs of the signals beside the item table: the text pieces and, when tags are
/// embedded, the tag table (`[n_items, tag_dim]`, zero rows for tracks without tags).
#[derive(Clone, Debug, Default)]
pub struct Signals {
    pub text: PromptText,
    pub tags: Option<Tensor<2>>,
}

impl E4SRecConfig {
    /// The token ids before and after the soft tokens.
    pub fn prompt_ids(
        &self,
        tok: &BpeTokenizer,
        template: ChatTemplate,
    ) -> Result<(Vec<u32>, Vec<u32>), ModelError> {
        let text = template.render(&[("user", &self.instruction)]) + &self.response;
        let (before, after) = text.split_once(ITEMS).ok_or_else(|| {
            ModelError::setting("instruction", format!("the instruction has no {ITEMS}"))
        })?;
        Ok((tok.encode(before), tok.encode(after)))
    }
}
