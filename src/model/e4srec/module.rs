//! The E4SRec module: the decoder with LoRA, the projection of item rows into soft tokens, the embedded signals and the item head; scoring histories in padded batches.

use burn::module::{Lora, Module};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::{COMPLETION_BUCKETS, E4SRecConfig, Signal};
use super::prompt::{PromptText, Signals};
use crate::llm::llama::{KvCache, Llama, MASKED};
use crate::model::ModelError;

impl E4SRecConfig {
    /// An E4SRec over `llm` (frozen, LoRA attached) and the frozen item table `items`
    /// (`[n_items, item_dim]`, row `t` for track `t`); projection, head and the embedded
    /// signals' parts are new. `signals` holds what the configured signals read.
    pub fn init(
        &self,
        llm: Llama,
        items: Tensor<2>,
        prompt: (&[u32], &[u32]),
        signals: Signals,
        device: &Device,
    ) -> Result<E4SRec, ModelError> {
        if self.history == 0 {
            return Err(ModelError::setting("history", "history must be at least 1"));
        }
        if self.lora_rank == 0 {
            return Err(ModelError::setting(
                "lora_rank",
                "lora_rank must be at least 1",
            ));
        }
        if prompt.1.is_empty() {
            return Err(ModelError::setting(
                "response",
                "nothing follows the history: the last position would be an item",
            ));
        }
        let [n_items, item_dim] = items.dims();
        let Signals { text, tags } = signals;
        let invalid = |s: String| Err(ModelError::Invalid(s));
        if self.completion == Signal::Text && text.completion.len() != 11 {
            return invalid("completion as text needs its 11 phrases (PromptText::build)".into());
        }
        if self.tags == Signal::Text && text.tags.len() != n_items {
            return invalid(format!(
                "tags as text need one entry per item: {} for {n_items} items",
                text.tags.len()
            ));
        }
        let tags = match (self.tags, tags) {
            (Signal::Embed, Some(t)) if t.dims()[0] == n_items => Some(t.detach()),
            (Signal::Embed, Some(t)) => {
                return invalid(format!(
                    "the tag table has {} rows for {n_items} items",
                    t.dims()[0]
                ));
            }
            (Signal::Embed, None) => return invalid("tags as embeddings need a tag table".into()),
            _ => None,
        };
        let llm = llm.apply_lora(
            Lora::new(self.lora_rank, self.lora_alpha).set_param_group(self.lora_group()?),
        );
        let d = llm.embed.dims()[1];
        let embed = |ids: &[u32]| {
            let t = Tensor::<1, Int>::from_data(
                TensorData::new(ids.iter().map(|&i| i64::from(i)).collect(), [ids.len()]),
                device,
            );
            llm.embed.val().select(0, t).detach()
        };
        let (prefix, suffix) = (embed(prompt.0), embed(prompt.1));
        Ok(E4SRec {
            proj: LinearConfig::new(item_dim, d).init(device),
            head: LinearConfig::new(d, n_items).init(device),
            completion: (self.completion == Signal::Embed).then(|| {
                EmbeddingConfig::new(COMPLETION_BUCKETS + 1, d)
                    .with_initializer(crate::model::transformer::emb_init())
                    .init(device)
            }),
            tag_proj: tags.as_ref().map(|t| {
                LinearConfig::new(t.dims()[1], d)
                    .with_bias(false)
                    .init(device)
            }),
            tags,
            text,
            items: items.detach(),
            prefix,
            suffix,
            llm,
            history: self.history,
        })
    }
}

#[derive(Module, Debug)]
pub struct E4SRec {
    /// The decoder: frozen weights, trainable LoRA factors.
    pub llm: Llama,
    /// `[item_dim] -> [d_model]`, trained.
    pub proj: Linear,
    /// `[d_model] -> [n_items]`, trained.
    pub head: Linear,
    /// `[n_items, item_dim]`, frozen.
    pub items: Tensor<2>,
    /// Completion embedded: one row per bucket (row 0: unknown), `[11, d_model]`, trained.
    pub completion: Option<Embedding>,
    /// Tags embedded: `[tag_dim] -> [d_model]`, trained, over the frozen `[n_items, tag_dim]`
    /// table `tags`.
    pub tag_proj: Option<Linear>,
    pub tags: Option<Tensor<2>>,
    /// The text signals' token pieces.
    #[module(skip)]
    pub text: PromptText,
    /// Embeddings of the tokens before and after the history: `[p, d_model]`, `[s, d_model]`.
    pub prefix: Tensor<2>,
    pub suffix: Tensor<2>,
    pub history: usize,
}

impl E4SRec {
    pub fn n_items(&self) -> usize {
        self.items.dims()[0]
    }

    /// Scores of every track as the next one after each history (tracks `0..n_items`), without
    /// completion ratios.
    ///
    /// # Shapes
    /// - output: `[histories.len(), n_items]`
    pub fn forward(&self, histories: &[&[u32]]) -> Tensor<2> {
        self.forward_with(histories, None)
    }

    /// [`forward`](Self::forward) with each history play's completion ratio (parallel to
    /// `histories`, NaN where unknown), read when the model has completion as a signal.
    ///
    /// Each row is the prefix, then per play its soft token (plus its embedded signals) and its
    /// text note, then the suffix; rows are left-padded to the longest.
    ///
    /// # Shapes
    /// - output: `[histories.len(), n_items]`
    pub fn forward_with(&self, histories: &[&[u32]], completions: Option<&[&[f32]]>) -> Tensor<2> {
        /// A sequence position: a row of the prefix, the suffix, a play's soft token or a text
        /// token, before the table's offsets are known.
        #[derive(Clone, Copy)]
        enum Pos {
            Prefix(usize),
            Suffix(usize),
            Soft(usize),
            Text(usize),
        }
        let device = self.items.device();
        let b = histories.len();
        let (p, s, d) = (
            self.prefix.dims()[0],
            self.suffix.dims()[0],
            self.prefix.dims()[1],
        );
        let mut slots: Vec<i64> = Vec::new();
        let mut ratios: Vec<f32> = Vec::new();
        let mut text: Vec<i64> = Vec::new();
        let mut note = Vec::new();
        let rows: Vec<Vec<Pos>> = histories
            .iter()
            .enumerate()
            .map(|(r, h)| {
                let take = h.len().min(self.history);
                let c = completions.map(|c| &c[r][c[r].len() - take..]);
                let mut row: Vec<Pos> = (0..p).map(Pos::Prefix).collect();
                for (j, &it) in h[h.len() - take..].iter().enumerate() {
                    let ratio = c.map_or(f32::NAN, |c| c[j]);
                    row.push(Pos::Soft(slots.len()));
                    slots.push(i64::from(it));
                    ratios.push(ratio);
                    note.clear();
                    self.text.note(it, ratio, &mut note);
                    for &t in &note {
                        row.push(Pos::Text(text.len()));
                        text.push(i64::from(t));
                    }
                }
                row.extend((0..s).map(Pos::Suffix));
                row
            })
            .collect();
        if slots.is_empty() {
            // Every history is empty: one unused row keeps the table's shapes valid.
            slots.push(0);
            ratios.push(f32::NAN);
        }
        let t = rows.iter().map(Vec::len).max().unwrap_or(0);
        let (soft0, text0) = (p + s, p + s + slots.len());
        let mut order = vec![0i64; b * t];
        let mut bias = vec![0f32; b * t];
        for (r, row) in rows.iter().enumerate() {
            let pad = t - row.len();
            for k in 0..pad {
                bias[r * t + k] = MASKED;
            }
            for (k, pos) in row.iter().enumerate() {
                order[r * t + pad + k] = match *pos {
                    Pos::Prefix(i) => i,
                    Pos::Suffix(i) => p + i,
                    Pos::Soft(i) => soft0 + i,
                    Pos::Text(i) => text0 + i,
                } as i64;
            }
        }
        let ints = |v: Vec<i64>| {
            let n = v.len();
            Tensor::<1, Int>::from_data(TensorData::new(v, [n]), &device)
        };
        let n_slots = slots.len();
        let slots = ints(slots);
        let mut soft = self
            .proj
            .forward(self.items.clone().select(0, slots.clone()));
        if let Some(e) = &self.completion {
            let ids: Vec<i64> = ratios
                .iter()
                .map(|&r| crate::model::completion::bucket(r, COMPLETION_BUCKETS))
                .collect();
            let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n_slots]), &device);
            soft = soft + e.forward(ids).reshape([n_slots, d]);
        }
        if let (Some(w), Some(tags)) = (&self.tag_proj, &self.tags) {
            soft = soft + w.forward(tags.clone().select(0, slots));
        }
        let mut parts = vec![self.prefix.clone(), self.suffix.clone(), soft];
        if !text.is_empty() {
            parts.push(self.llm.embed.val().select(0, ints(text)).detach());
        }
        let table = Tensor::cat(parts, 0);
        let x = table.select(0, ints(order)).reshape([b, t, d]);
        let bias = Tensor::<2>::from_data(TensorData::new(bias, [b, t]), &device);
        let hidden = self
            .llm
            .forward_embeds_masked(x, &mut KvCache::default(), Some(bias));
        self.head
            .forward(hidden.narrow(1, t - 1, 1).reshape([b, d]))
    }
}
