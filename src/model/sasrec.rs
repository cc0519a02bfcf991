//! SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the history.
//!
//! Item + learned position embeddings, LayerNorm and dropout, then `n_layers` post-norm
//! Transformer blocks with a causal mask and a padding mask (the layout RecBole's SASRec uses);
//! position `i`'s output predicts the item at `i + 1`. Scores are tied to the item embeddings.

use super::backbone::{Backbone, item_input_methods};
use super::completion::{CompletionEmb, CompletionInput};
use super::fusion::{FusionConfig, ItemFusion};
use super::item_input::padding_mask;
use super::transformer::{self, Dims};
use burn::config::Config;
use burn::module::Module;
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderInput};
use burn::nn::{Dropout, Embedding, LayerNorm};
use burn::tensor::{Device, Int, Tensor};

#[derive(Config, Debug, PartialEq)]
pub struct SasRecConfig {
    /// Number of tracks (ids `1..=n_items`; `0` is padding).
    pub n_items: usize,
    /// Embedding and hidden size.
    #[config(default = 64)]
    pub d_model: usize,
    /// Width of each block's feed-forward layer.
    #[config(default = 256)]
    pub d_ff: usize,
    #[config(default = 2)]
    pub n_layers: usize,
    #[config(default = 2)]
    pub n_heads: usize,
    /// Longest history read (older items are cut).
    #[config(default = 50)]
    pub max_len: usize,
    /// Dropout on embeddings, attention outputs and feed-forward outputs.
    #[config(default = 0.2)]
    pub dropout: f64,
    /// Content fused into the item representation (none: id embeddings only).
    pub fusion: Option<FusionConfig>,
    /// Completion ratio of each history play as an input (none: not used).
    pub completion: Option<CompletionInput>,
    /// The Transformer's linear layers drawn from N(0, init_std) (RecBole's and BERT's
    /// initialisation with 0.02) instead of burn's default (Kaiming uniform).
    pub init_std: Option<f64>,
}

#[derive(Module, Debug)]
pub struct SasRec {
    pub item_emb: Embedding,
    pub pos_emb: Embedding,
    pub emb_norm: LayerNorm,
    pub dropout: Dropout,
    pub encoder: TransformerEncoder,
    /// Content fusion; `None` for an id-only model.
    pub fusion: Option<ItemFusion>,
    /// Completion input; `None` when the model does not read completion.
    pub completion_emb: Option<CompletionEmb>,
    pub n_items: usize,
    pub max_len: usize,
}

impl SasRecConfig {
    pub fn init(&self, device: &Device) -> SasRec {
        let p = transformer::init(
            &Dims {
                n_embeddings: self.n_items + 1,
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
        SasRec {
            item_emb: p.item_emb,
            pos_emb: p.pos_emb,
            emb_norm: p.emb_norm,
            dropout: p.dropout,
            encoder: p.encoder,
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

impl SasRec {
    /// # Shapes
    /// - ids: `[batch, len]`, left-padded, `len <= max_len`
    /// - rows: `[n_items + 1, d_model]`, the fused input table ([`rows`](Self::rows)), when the
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
        let [batch, len] = ids.dims();
        let device = ids.device();
        let pad = padding_mask(&ids);
        let x = transformer::embed(
            self.input().embed(ids, rows, completion),
            &self.pos_emb,
            &self.emb_norm,
            &self.dropout,
            self.max_len,
        );
        let input = TransformerEncoderInput::new(x)
            .mask_pad(pad)
            .mask_attn(generate_autoregressive_mask(batch, len, &device));
        self.encoder.forward(input)
    }
}

impl Backbone for SasRec {
    item_input_methods!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn the_future_does_not_leak_into_the_past() {
        let d = Device::flex();
        let m = SasRecConfig::new(20).with_max_len(6).init(&d).valid();
        let a = Tensor::<2, Int>::from_data(TensorData::new(vec![0i64, 0, 3, 4, 5, 6], [1, 6]), &d);
        let b = Tensor::<2, Int>::from_data(TensorData::new(vec![0i64, 0, 3, 4, 9, 1], [1, 6]), &d);
        let ha: Vec<f32> = m
            .forward(a, None, None)
            .narrow(1, 2, 2)
            .into_data()
            .try_to_vec()
            .unwrap();
        let hb: Vec<f32> = m
            .forward(b, None, None)
            .narrow(1, 2, 2)
            .into_data()
            .try_to_vec()
            .unwrap();
        for (x, y) in ha.iter().zip(&hb) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }
}
