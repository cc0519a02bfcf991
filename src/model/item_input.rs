//! The item input every backbone shares: the window of ids (left-padded, ids shifted by one for
//! padding), the input table fused with content, lookups into it, and the completion ratio of
//! each play added to its embedding.

use super::completion::CompletionEmb;
use super::fusion::ItemFusion;
use burn::nn::Embedding;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

/// A backbone's item input, borrowed: its id embedding table, content fusion and completion
/// input. Every backbone declares these fields under the same names (so trained weights keep
/// their paths) and lends them through [`super::Backbone::input`].
pub struct ItemInput<'a> {
    /// `[n_embeddings, d]`: padding, `n_items` tracks, any special ids.
    pub item_emb: &'a Embedding,
    pub fusion: Option<&'a ItemFusion>,
    pub completion: Option<&'a CompletionEmb>,
    pub n_items: usize,
}

impl ItemInput<'_> {
    /// The input table fused with content (see [`fused_rows`]); `None` without fusion.
    pub fn rows(&self) -> Option<Tensor<2>> {
        fused_rows(self.item_emb, self.fusion, self.n_items)
    }

    /// The tracks' rows of the input table (`rows`: [`rows`](Self::rows), when fused).
    pub fn table(&self, rows: Option<&Tensor<2>>) -> Tensor<2> {
        item_table(self.item_emb, rows, self.n_items)
    }

    /// A window's input embeddings with each play's completion input added.
    ///
    /// # Shapes
    /// - ids: `[batch, len]`
    /// - rows: `[n_embeddings, d]` (the fused table, when there is one)
    /// - completion: `batch * len` ratios, NaN where unknown
    /// - output: `[batch, len, d]`
    pub fn embed(
        &self,
        ids: Tensor<2, Int>,
        rows: Option<&Tensor<2>>,
        completion: Option<&[f32]>,
    ) -> Tensor<3> {
        with_completion(
            lookup(self.item_emb, rows, ids),
            self.completion,
            completion,
        )
    }
}

/// Padding id.
pub const PAD: i64 = 0;

/// Left-pads the last `max_len` items of each history (shifted by one: `0` is padding) to the
/// longest of them. With `mask_id`, the last slot holds the mask and only `max_len - 1` history
/// items fit.
///
/// # Shapes
/// - output: `[histories.len(), len]`, `len <= max_len`
pub fn history_window(
    histories: &[&[u32]],
    max_len: usize,
    mask_id: Option<i64>,
    device: &Device,
) -> Tensor<2, Int> {
    window(histories, None, max_len, mask_id, false, device).0
}

/// The window of ids and, with `completions`, the ratios at the same positions (NaN for
/// padding and the mask).
pub(crate) fn window(
    histories: &[&[u32]],
    completions: Option<&[&[f32]]>,
    max_len: usize,
    mask_id: Option<i64>,
    full: bool,
    device: &Device,
) -> (Tensor<2, Int>, Option<Vec<f32>>) {
    let extra = usize::from(mask_id.is_some());
    let longest = if full {
        max_len
    } else {
        histories.iter().map(|h| h.len()).max().unwrap_or(0)
    };
    let room = longest.min(max_len - extra).max(1);
    let max_len = room + extra;
    let mut ids = vec![PAD; histories.len() * max_len];
    let mut ratios = completions.map(|_| vec![f32::NAN; histories.len() * max_len]);
    for (row, h) in histories.iter().enumerate() {
        let skip = h.len().saturating_sub(room);
        let take = &h[skip..];
        let out = &mut ids[row * max_len..(row + 1) * max_len];
        let start = room - take.len();
        for (slot, &t) in out[start..room].iter_mut().zip(take) {
            *slot = i64::from(t) + 1;
        }
        if let Some(m) = mask_id {
            out[max_len - 1] = m;
        }
        if let (Some(r), Some(c)) = (ratios.as_mut(), completions) {
            let c = &c[row][skip..];
            assert_eq!(c.len(), take.len(), "one completion ratio per history play");
            r[row * max_len + start..row * max_len + room].copy_from_slice(c);
        }
    }
    (
        Tensor::from_data(TensorData::new(ids, [histories.len(), max_len]), device),
        ratios,
    )
}

/// Adds each position's completion input to its item embedding, when the model has one.
///
/// # Shapes
/// - items: `[batch, len, d]`
/// - ratios: `batch * len`, NaN where unknown (`None`: all unknown)
/// - output: `[batch, len, d]`
pub(crate) fn with_completion(
    items: Tensor<3>,
    emb: Option<&CompletionEmb>,
    ratios: Option<&[f32]>,
) -> Tensor<3> {
    let Some(e) = emb else { return items };
    let [b, l, _] = items.dims();
    let unknown;
    let r = match ratios {
        Some(r) => r,
        None => {
            unknown = vec![f32::NAN; b * l];
            &unknown
        }
    };
    let device = items.device();
    items + e.forward(r, b, l, &device)
}

/// The input table with the tracks' rows fused with content (padding and special rows keep
/// their id embeddings); `None` without fusion.
///
/// # Shapes
/// - item_emb: `[n_embeddings, d]` (padding, `n_items` tracks, special ids)
/// - output: `[n_embeddings, d]`
pub(crate) fn fused_rows(
    item_emb: &Embedding,
    fusion: Option<&ItemFusion>,
    n_items: usize,
) -> Option<Tensor<2>> {
    let f = fusion?;
    let w = item_emb.weight.val();
    let rows = w.dims()[0];
    let mut parts = vec![
        w.clone().narrow(0, 0, 1),
        f.forward(w.clone().narrow(0, 1, n_items)),
    ];
    if rows > n_items + 1 {
        parts.push(w.narrow(0, n_items + 1, rows - n_items - 1));
    }
    Some(Tensor::cat(parts, 0))
}

/// The tracks' rows of the input table.
///
/// # Shapes
/// - output: `[n_items, d]`
pub(crate) fn item_table(
    item_emb: &Embedding,
    rows: Option<&Tensor<2>>,
    n_items: usize,
) -> Tensor<2> {
    match rows {
        Some(r) => r.clone().narrow(0, 1, n_items),
        None => item_emb.weight.val().narrow(0, 1, n_items),
    }
}

/// Input embeddings of a window: from the fused table when there is one, else the id table.
///
/// # Shapes
/// - ids: `[batch, len]`
/// - rows: `[n_embeddings, d]`
/// - output: `[batch, len, d]`
pub(crate) fn lookup(
    item_emb: &Embedding,
    rows: Option<&Tensor<2>>,
    ids: Tensor<2, Int>,
) -> Tensor<3> {
    match rows {
        None => item_emb.forward(ids),
        Some(r) => {
            let [b, l] = ids.dims();
            let d = r.dims()[1];
            r.clone().select(0, ids.reshape([b * l])).reshape([b, l, d])
        }
    }
}

/// `true` where `ids` is padding.
///
/// # Shapes
/// - ids: `[batch, len]`
/// - output: `[batch, len]`
pub fn padding_mask(ids: &Tensor<2, Int>) -> Tensor<2, Bool> {
    ids.clone().equal_elem(PAD)
}
