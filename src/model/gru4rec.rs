//! GRU4Rec (Hidasi et al., ICLR 2016; the improved losses of Hidasi & Karatzoglou 2018): a GRU
//! over the history, its state projected back to the embedding size and scored against the item
//! embeddings (tied output, as RecBole's GRU4Rec).

use super::backbone::{Backbone, item_input_methods};
use super::completion::{CompletionEmb, CompletionInput};
use super::fusion::{FusionConfig, ItemFusion};
use super::transformer::emb_init;
use burn::config::Config;
use burn::module::Module;
use burn::nn::gru::{Gru, GruConfig};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

#[derive(Config, Debug, PartialEq)]
pub struct Gru4RecConfig {
    /// Number of tracks (ids `1..=n_items`; `0` is padding).
    pub n_items: usize,
    /// Item embedding size.
    #[config(default = 64)]
    pub d_model: usize,
    /// GRU state size.
    #[config(default = 128)]
    pub d_hidden: usize,
    #[config(default = 1)]
    pub n_layers: usize,
    #[config(default = 50)]
    pub max_len: usize,
    /// Dropout on the item embeddings.
    #[config(default = 0.25)]
    pub dropout: f64,
    /// Content fused into the item representation (none: id embeddings only).
    pub fusion: Option<FusionConfig>,
    /// Completion ratio of each history play as an input (none: not used).
    pub completion: Option<CompletionInput>,
}

#[derive(Module, Debug)]
pub struct Gru4Rec {
    pub item_emb: Embedding,
    pub dropout: Dropout,
    pub layers: Vec<Gru>,
    pub out: Linear,
    /// Content fusion; `None` for an id-only model.
    pub fusion: Option<ItemFusion>,
    /// Completion input; `None` when the model does not read completion.
    pub completion_emb: Option<CompletionEmb>,
    pub n_items: usize,
}

impl Gru4RecConfig {
    pub fn init(&self, device: &Device) -> Gru4Rec {
        let layers = (0..self.n_layers.max(1))
            .map(|i| {
                let d_in = if i == 0 { self.d_model } else { self.d_hidden };
                GruConfig::new(d_in, self.d_hidden, true).init(device)
            })
            .collect();
        Gru4Rec {
            item_emb: EmbeddingConfig::new(self.n_items + 1, self.d_model)
                .with_initializer(emb_init())
                .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            layers,
            out: LinearConfig::new(self.d_hidden, self.d_model).init(device),
            fusion: self
                .fusion
                .as_ref()
                .map(|f| f.init(self.n_items, self.d_model, device)),
            completion_emb: self.completion.map(|c| c.init(self.d_model, device)),
            n_items: self.n_items,
        }
    }
}

impl Gru4Rec {
    /// A masked recurrence: the state stays at zero through the left padding, so a history's
    /// state does not depend on how much padding its batch needed.
    ///
    /// # Shapes
    /// - ids: `[batch, len]`, left-padded
    /// - rows: `[n_items + 1, d_model]`, the fused input table ([`rows`](Self::rows)), when the
    ///   model has content
    /// - completion: `batch * len` ratios, row-major, NaN where unknown (when the model reads
    ///   completion; `None`: all unknown)
    /// - output: `[batch, len, d_model]` (zeros before the first item)
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        rows: Option<&Tensor<2>>,
        completion: Option<&[f32]>,
    ) -> Tensor<3> {
        let pad = super::item_input::padding_mask(&ids);
        let mut x = self
            .dropout
            .forward(self.input().embed(ids, rows, completion));
        let [batch, len, _] = x.dims();
        let device = x.device();
        for gru in &self.layers {
            let d = gru.d_hidden;
            let mut h = Tensor::<2>::zeros([batch, d], &device);
            let mut steps = Vec::with_capacity(len);
            for t in 0..len {
                let next = gru
                    .forward(x.clone().narrow(1, t, 1), Some(h.clone()))
                    .reshape([batch, d]);
                let keep = pad.clone().narrow(1, t, 1).expand([batch, d]);
                h = next.mask_where(keep, h);
                steps.push(h.clone().unsqueeze_dim::<3>(1));
            }
            x = Tensor::cat(steps, 1);
        }
        self.out.forward(x)
    }
}

impl Backbone for Gru4Rec {
    item_input_methods!();
}
