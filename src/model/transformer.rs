//! The parts SASRec and BERT4Rec share: item and position embeddings with their LayerNorm and
//! dropout, and the Transformer encoder (post-norm, as RecBole's). Only the attention mask and
//! the output head differ between the two, so each keeps its fields and calls these.

use burn::nn::transformer::{TransformerEncoder, TransformerEncoderConfig};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
};
use burn::tensor::{Device, Int, Tensor};

/// Embedding initialisation (BERT-style N(0, 0.02)).
pub(crate) fn emb_init() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

pub(crate) struct Dims {
    /// Rows of the item table (padding, tracks and any special ids).
    pub n_embeddings: usize,
    pub d_model: usize,
    pub d_ff: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub max_len: usize,
    pub dropout: f64,
    /// Linear layers from N(0, std) instead of burn's default.
    pub init_std: Option<f64>,
}

pub(crate) struct Parts {
    pub item_emb: Embedding,
    pub pos_emb: Embedding,
    pub emb_norm: LayerNorm,
    pub dropout: Dropout,
    pub encoder: TransformerEncoder,
}

pub(crate) fn init(d: &Dims, device: &Device) -> Parts {
    Parts {
        item_emb: EmbeddingConfig::new(d.n_embeddings, d.d_model)
            .with_initializer(emb_init())
            .init(device),
        pos_emb: EmbeddingConfig::new(d.max_len, d.d_model)
            .with_initializer(emb_init())
            .init(device),
        emb_norm: LayerNormConfig::new(d.d_model)
            .with_epsilon(1e-12)
            .init(device),
        dropout: DropoutConfig::new(d.dropout).init(),
        encoder: {
            let c = TransformerEncoderConfig::new(d.d_model, d.d_ff, d.n_heads, d.n_layers)
                .with_dropout(d.dropout)
                .with_layer_norm_eps(1e-12);
            match d.init_std {
                Some(std) => c.with_initializer(Initializer::Normal { mean: 0.0, std }),
                None => c,
            }
            .init(device)
        },
    }
}

/// Item + right-aligned position embeddings, LayerNorm, dropout.
///
/// # Shapes
/// - items: `[batch, len, d_model]`, the item embeddings of the window
/// - output: `[batch, len, d_model]`, `len <= max_len`
pub(crate) fn embed(
    items: Tensor<3>,
    pos_emb: &Embedding,
    emb_norm: &LayerNorm,
    dropout: &Dropout,
    max_len: usize,
) -> Tensor<3> {
    let [batch, len, _] = items.dims();
    let device = items.device();
    let x = items + pos_emb.forward(positions(batch, len, max_len, &device));
    dropout.forward(emb_norm.forward(x))
}

/// Right-aligned positions `max_len - len .. max_len` for every row: the latest item of a
/// window always has position `max_len - 1`, however much padding the batch needs.
///
/// # Shapes
/// - output: `[batch, len]`
pub fn positions(batch: usize, len: usize, max_len: usize, device: &Device) -> Tensor<2, Int> {
    Tensor::<1, Int>::arange((max_len - len) as i64..max_len as i64, device)
        .unsqueeze_dim::<2>(0)
        .expand([batch, len])
}
