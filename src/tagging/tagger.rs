//! Prompts and the local tagger: an expert-musicologist prompt per track (all 58 genes at once,
//! or one prompt per category as the MGPHot paper did), answered through constrained decoding so
//! every answer has exactly the requested keys and integer values 0-5 (stored divided by 5).

use super::schema::{CATEGORIES, Gene, genes};
use crate::llm::generate::{ChatTemplate, Counts, Session};
use crate::llm::llama::Llama;
use crate::llm::tokenizer::BpeTokenizer;
use burn::tensor::Device;

/// Bumped whenever the prompts change; part of every cache key.
pub const PROMPT_VERSION: &str = "mgphot-v1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptMode {
    /// All 58 genes in one prompt.
    AllAtOnce,
    /// One prompt per category (the paper's way).
    PerCategory,
}

impl PromptMode {
    /// The prompt version with the mode (`mgphot-v1/all`, `mgphot-v1/category`).
    pub fn version(self) -> String {
        match self {
            Self::AllAtOnce => format!("{PROMPT_VERSION}/all"),
            Self::PerCategory => format!("{PROMPT_VERSION}/category"),
        }
    }
}

/// A song to tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Song {
    pub id: String,
    pub artist: String,
    pub title: String,
}

pub const SYSTEM: &str = "You are an expert musicologist. You rate recordings of popular music on \
musicological attributes, each an integer from 0 to 5, from what you know of the song. Answer \
with a JSON object only.";

/// The user message asking for `genes` of `song`.
pub fn user_prompt(song: &Song, genes: &[Gene]) -> String {
    let mut s = format!(
        "Rate the song \"{}\" by {} on these attributes, each an integer from 0 to 5:\n",
        song.title, song.artist
    );
    for g in genes {
        s.push_str(&format!("- {} ({}): {}\n", g.key, g.name, g.anchor));
    }
    s.push_str("Answer with a JSON object with exactly these keys.");
    s
}

/// What tagging one song gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Tagged {
    /// 58 values in [0, 1] (ratings / 5), MGPHot order.
    pub values: Vec<f32>,
    /// Per gene, the probability the model gave its chosen rating (empty when the backend does
    /// not report probabilities, as a chat-completions server).
    pub confidence: Vec<f32>,
    /// Values outside 0-5 in a free-form answer, clamped (always 0 under constrained decoding).
    pub clamped: usize,
    /// Requests made, retries included.
    pub requests: usize,
    pub counts: Counts,
}

/// Tags songs with a local model.
pub struct LocalTagger<'a> {
    pub model: &'a Llama,
    pub tok: &'a BpeTokenizer,
    pub template: ChatTemplate,
    pub device: Device,
    pub mode: PromptMode,
}

impl PromptMode {
    /// The genes asked together in one prompt: all 58, or one group per category.
    pub fn groups(self) -> Vec<Vec<Gene>> {
        let all = genes();
        match self {
            PromptMode::AllAtOnce => vec![all],
            PromptMode::PerCategory => CATEGORIES
                .iter()
                .map(|c| all.iter().filter(|g| g.category == *c).copied().collect())
                .collect(),
        }
    }
}

/// Something that rates songs on the 58 genes: the local model or a chat-completions server.
pub trait Tagger {
    fn tag(&self, song: &Song) -> Result<Tagged, String>;
}

impl Tagger for LocalTagger<'_> {
    fn tag(&self, song: &Song) -> Result<Tagged, String> {
        let all = genes();
        let groups = self.mode.groups();
        let mut values = vec![0f32; all.len()];
        let mut confidence = vec![0f32; all.len()];
        let mut counts = Counts::default();
        for group in groups {
            let mut s = Session::new(self.model, self.tok, &self.device);
            let prompt = self
                .template
                .render(&[("system", SYSTEM), ("user", &user_prompt(song, &group))]);
            s.feed_text(&prompt);
            let keys: Vec<&str> = group.iter().map(|g| g.key).collect();
            let (v, p) = s.rate(&keys)?;
            for ((g, r), p) in group.iter().zip(v).zip(p) {
                values[g.index] = f32::from(r) / 5.0;
                confidence[g.index] = p[r as usize];
            }
            counts.prompt_tokens += s.counts.prompt_tokens;
            counts.generated += s.counts.generated;
        }
        Ok(Tagged {
            values,
            confidence,
            counts,
            clamped: 0,
            requests: 0,
        })
    }
}
