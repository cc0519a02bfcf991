//! Prompts and the local tagger: an expert-musicologist prompt per track (all 58 genes at once,
//! or one prompt per category as the MGPHot paper did), answered through constrained decoding so
//! every answer has exactly the requested keys and integer values 0-5 (stored divided by 5).

use super::error::TagError;
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
    /// One question per gene after a shared description of the song, each answered
    /// independently; the stored value is the mean of the model's distribution over 0-5 (so a
    /// small model's answers are not steered by the ratings it already gave). Local models only.
    PerGene,
}

impl PromptMode {
    /// The prompt version with the mode (`mgphot-v1/all`, `mgphot-v1/category`).
    pub fn version(self) -> String {
        match self {
            Self::AllAtOnce => format!("{PROMPT_VERSION}/all"),
            Self::PerCategory => format!("{PROMPT_VERSION}/category"),
            Self::PerGene => format!("{PROMPT_VERSION}/gene-mean"),
        }
    }
}

/// A song to tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Song {
    pub id: String,
    pub artist: String,
    pub title: String,
    /// What is known of the recording besides its name (its catalog's tags, what an audio model
    /// hears, its length), put in the prompt when the model cannot know the song itself.
    pub notes: Option<String>,
}

impl Song {
    /// The prompt version for this song: with notes, it names a hash of them, so a cached answer
    /// is reused only for the same prompt.
    pub fn version(&self, mode: PromptMode) -> String {
        match &self.notes {
            None => mode.version(),
            Some(n) => {
                use sha2::Digest;
                let h = sha2::Sha256::digest(n.as_bytes());
                format!(
                    "{}+notes-{:02x}{:02x}{:02x}{:02x}",
                    mode.version(),
                    h[0],
                    h[1],
                    h[2],
                    h[3]
                )
            }
        }
    }
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
    push_notes(&mut s, song);
    for g in genes {
        s.push_str(&format!("- {} ({}): {}\n", g.key, g.name, g.anchor));
    }
    s.push_str("Answer with a JSON object with exactly these keys.");
    s
}

/// The song's notes as a line of the prompt (every mode words them alike).
fn push_notes(s: &mut String, song: &Song) {
    if let Some(n) = &song.notes {
        s.push_str(&format!("What is known of this recording: {n}\n"));
    }
}

/// The user message of [`PromptMode::PerGene`]: the song, then one attribute to rate, which
/// follows the returned text.
pub fn gene_prompt(song: &Song) -> String {
    let mut s = format!("The song \"{}\" by {}.\n", song.title, song.artist);
    push_notes(&mut s, song);
    s.push_str("Rate it from 0 to 5 on this attribute, answering with a JSON object: ");
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

impl Tagged {
    /// A local model's answer: constrained, so nothing clamped, and no requests made.
    fn local(values: Vec<f32>, confidence: Vec<f32>, counts: Counts) -> Self {
        Tagged {
            values,
            confidence,
            clamped: 0,
            requests: 0,
            counts,
        }
    }
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
            PromptMode::PerGene => all.into_iter().map(|g| vec![g]).collect(),
        }
    }
}

/// Something that rates songs on the 58 genes: the local model or a chat-completions server.
pub trait Tagger {
    fn tag(&self, song: &Song) -> Result<Tagged, TagError>;
}

impl LocalTagger<'_> {
    /// [`PromptMode::PerGene`]: the chat up to the attribute is run once; each gene forks it,
    /// names the gene, opens the answer `{"key": ` and reads the model's odds of `0`..`5`.
    fn tag_per_gene(&self, song: &Song) -> Result<Tagged, TagError> {
        const AT: &str = "\u{1}";
        let chat = self.template.render(&[
            ("system", SYSTEM),
            ("user", &format!("{}{AT}", gene_prompt(song))),
        ]);
        let (head, tail) = chat.split_once(AT).expect("the marker is in the chat");
        let mut s = Session::new(self.model, self.tok, &self.device);
        s.feed_text(head);
        let mut counts = s.counts;
        let all = genes();
        let mut values = Vec::with_capacity(all.len());
        let mut confidence = Vec::with_capacity(all.len());
        for g in &all {
            let mut f = s.fork();
            f.feed_text(&format!("{} ({}){tail}{{\"{}\": ", g.name, g.anchor, g.key));
            let p = f.digit_probs()?;
            let mean: f32 = p.iter().enumerate().map(|(r, p)| r as f32 * p).sum();
            values.push(mean / 5.0);
            confidence.push(p.iter().fold(0f32, |a, &b| a.max(b)));
            counts.prompt_tokens += f.counts.prompt_tokens;
            counts.generated += 1;
        }
        Ok(Tagged::local(values, confidence, counts))
    }
}

impl Tagger for LocalTagger<'_> {
    fn tag(&self, song: &Song) -> Result<Tagged, TagError> {
        if self.mode == PromptMode::PerGene {
            return self.tag_per_gene(song);
        }
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
        Ok(Tagged::local(values, confidence, counts))
    }
}
