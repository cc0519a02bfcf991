//! BERT4Rec (Sun et al., CIKM 2019): a bidirectional Transformer trained by cloze.
//!
//! Random positions of a window are replaced by a mask id and predicted from both sides. At
//! inference the mask is appended after the history and its output is scored. The output head
//! (dense + GELU + LayerNorm) is tied to the item embeddings plus a per-item bias.

use super::backbone::{Backbone, item_input_methods};
use super::completion::{CompletionEmb, CompletionInput};
use super::fusion::{FusionConfig, ItemFusion};
use super::item_input::padding_mask;
use super::transformer::{self, Dims};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderInput};
use burn::nn::{Dropout, Embedding, Gelu, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

#[derive(Config, Debug, PartialEq)]
pub struct Bert4RecConfig {
    /// Number of tracks (ids `1..=n_items`; `0` is padding, `n_items + 1` the mask).
    pub n_items: usize,
    #[config(default = 64)]
    pub d_model: usize,
    #[config(default = 256)]
    pub d_ff: usize,
    #[config(default = 2)]
    pub n_layers: usize,
    #[config(default = 2)]
    pub n_heads: usize,
    /// Longest window (at inference: `max_len - 1` history items and the mask).
    #[config(default = 50)]
    pub max_len: usize,
    #[config(default = 0.2)]
    pub dropout: f64,
    /// Share of positions masked during training.
    #[config(default = 0.2)]
    pub mask_prob: f64,
    /// Content fused into the item representation (none: id embeddings only).
    pub fusion: Option<FusionConfig>,
    /// Completion ratio of each history play as an input (none: not used).
    pub completion: Option<CompletionInput>,
    /// The Transformer's linear layers drawn from N(0, init_std) (RecBole's and BERT's
    /// initialisation with 0.02) instead of burn's default (Kaiming uniform).
    pub init_std: Option<f64>,
}

#[derive(Module, Debug)]
pub struct Bert4Rec {
    pub item_emb: Embedding,
    pub pos_emb: Embedding,
    pub emb_norm: LayerNorm,
    pub dropout: Dropout,
    pub encoder: TransformerEncoder,
    pub head: Linear,
    pub head_act: Gelu,
    pub head_norm: LayerNorm,
    pub out_bias: Param<Tensor<1>>,
    /// Content fusion; `None` for an id-only model.
    pub fusion: Option<ItemFusion>,
    /// Completion input; `None` when the model does not read completion.
    pub completion_emb: Option<CompletionEmb>,
    pub n_items: usize,
    pub max_len: usize,
}

impl Bert4RecConfig {
    pub fn init(&self, device: &Device) -> Bert4Rec {
        let p = transformer::init(
            &Dims {
                n_embeddings: self.n_items + 2,
                d_model: self.d_model,
                d_ff: self.d_ff,
                n_layers: self.n_layers,
                n_heads: self.n_heads,
                max_len: self.max_len,
                dropout: self.dropout,
                init_std: self.init_std,
            },
            device,
        );
        Bert4Rec {
            item_emb: p.item_emb,
            pos_emb: p.pos_emb,
            emb_norm: p.emb_norm,
            dropout: p.dropout,
            encoder: p.encoder,
            head: LinearConfig::new(self.d_model, self.d_model).init(device),
            head_act: Gelu::new(),
            head_norm: LayerNormConfig::new(self.d_model)
                .with_epsilon(1e-12)
                .init(device),
            out_bias: Param::from_tensor(Tensor::zeros([self.n_items], device)),
            fusion: self
                .fusion
                .as_ref()
                .map(|f| f.init(self.n_items, self.d_model, device)),
            completion_emb: self.completion.map(|c| c.init(self.d_model, device)),
            n_items: self.n_items,
            max_len: self.max_len,
        }
    }
}

impl Bert4Rec {
    /// The id that stands for a masked position.
    pub fn mask_id(&self) -> i64 {
        self.n_items as i64 + 1
    }

    /// # Shapes
    /// - ids: `[batch, len]`, left-padded, masked positions hold [`mask_id`](Self::mask_id)
    /// - rows: `[n_items + 2, d_model]`, the fused input table ([`rows`](Self::rows)), when the
    ///   model has content
    /// - completion: `batch * len` ratios, row-major, NaN where unknown (when the model reads
    ///   completion; `None`: all unknown)
    /// - output: `[batch, len, d_model]`
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        rows: Option<&Tensor<2>>,
        completion: Option<&[f32]>,
    ) -> Tensor<3> {
        let pad = padding_mask(&ids);
        let x = transformer::embed(
            self.input().embed(ids, rows, completion),
            &self.pos_emb,
            &self.emb_norm,
            &self.dropout,
            self.max_len,
        );
        self.encoder
            .forward(TransformerEncoderInput::new(x).mask_pad(pad))
    }
}

impl Backbone for Bert4Rec {
    item_input_methods!();

    fn mask_id(&self) -> Option<i64> {
        Some(Bert4Rec::mask_id(self))
    }

    fn item_bias(&self) -> Option<Tensor<1>> {
        Some(self.out_bias.val())
    }

    /// The output head (dense, GELU, LayerNorm) applied before scoring.
    fn project(&self, hidden: Tensor<2>) -> Tensor<2> {
        self.head_norm
            .forward(self.head_act.forward(self.head.forward(hidden)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn attention_is_bidirectional() {
        let d = Device::flex();
        let m = Bert4RecConfig::new(20).with_max_len(5).init(&d).valid();
        let a = Tensor::<2, Int>::from_data(TensorData::new(vec![0i64, 3, 21, 5, 6], [1, 5]), &d);
        let b = Tensor::<2, Int>::from_data(TensorData::new(vec![0i64, 3, 21, 5, 9], [1, 5]), &d);
        let ha: Vec<f32> = m
            .forward(a, None, None)
            .narrow(1, 2, 1)
            .into_data()
            .try_to_vec()
            .unwrap();
        let hb: Vec<f32> = m
            .forward(b, None, None)
            .narrow(1, 2, 1)
            .into_data()
            .try_to_vec()
            .unwrap();
        let diff: f32 = ha.iter().zip(&hb).map(|(x, y)| (x - y).abs()).sum();
        assert!(
            diff > 1e-4,
            "a later item changes the masked position's state"
        );
    }
}
