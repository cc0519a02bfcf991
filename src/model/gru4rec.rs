//! GRU4Rec (Hidasi et al., ICLR 2016; the improved losses of Hidasi & Karatzoglou 2018): a GRU
//! over the history, its state projected back to the embedding size and scored against the item
//! embeddings (tied output, as RecBole's GRU4Rec).

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
}

#[derive(Module, Debug)]
pub struct Gru4Rec {
    pub item_emb: Embedding,
    pub dropout: Dropout,
    pub layers: Vec<Gru>,
    pub out: Linear,
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
    /// - output: `[batch, len, d_model]` (zeros before the first item)
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let pad = super::padding_mask(&ids);
        let mut x = self.dropout.forward(self.item_emb.forward(ids));
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

    /// # Shapes
    /// - output: `[n_items, d_model]`
    pub fn item_table(&self) -> Tensor<2> {
        self.item_emb.weight.val().narrow(0, 1, self.n_items)
    }
}
