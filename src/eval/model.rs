//! A trained sequential model as a [`Scorer`]: histories are scored in batches on the model's
//! device and read back once per batch (or left there for [`super::score_async`]).

use super::{Scorer, read_scores};
use crate::model::SeqModel;
use burn::tensor::{Device, Tensor};

pub struct ModelScorer<'a> {
    pub model: &'a SeqModel,
    pub max_len: usize,
    pub device: Device,
    n_items: usize,
    /// The fused input table and the output table, computed once (content does not change
    /// between histories).
    rows: Option<Tensor<2>>,
    table: Tensor<2>,
    /// The output bias over the table's rows, where the model has one.
    bias: Option<Tensor<1>>,
    /// Every window padded to `max_len` (see [`padded`](Self::padded)).
    full: bool,
    /// The input row of the first new track, once [`with_new_rows`](Self::with_new_rows)
    /// appended some, and how many.
    new: Option<(usize, usize)>,
}

impl<'a> ModelScorer<'a> {
    /// `model` should be in inference mode (`Module::valid`).
    pub fn new(model: &'a SeqModel, max_len: usize, device: Device) -> Self {
        let rows = model.rows();
        let table = model.item_table_from(rows.as_ref());
        Self {
            model,
            max_len,
            device,
            n_items: model.n_items(),
            rows,
            table,
            bias: model.item_bias(),
            full: false,
            new: None,
        }
    }

    /// Pads every window to `max_len`: one input shape for any history, so GPU kernels
    /// compile once (what an app scoring one listener after every event wants). Every model
    /// masks padding, so the scores are the same.
    pub fn padded(mut self) -> Self {
        self.full = true;
        self
    }

    /// Appends rows for tracks the model was not trained on (their fused content, `[m, d]`):
    /// they follow the model's input table, so the history id of new track `j` is the table's
    /// row count plus `j - 1`, and they are scored after the model's items, with the mean
    /// output bias (they were never trained on). An id-only model has no fused table to
    /// extend: it stays as it is.
    pub fn with_new_rows(mut self, new: Tensor<2>) -> Self {
        let m = new.dims()[0];
        let Some(r) = self.rows.take() else {
            return self;
        };
        self.new = Some((r.dims()[0], m));
        self.rows = Some(Tensor::cat(vec![r, new.clone()], 0));
        self.table = Tensor::cat(vec![self.table, new], 0);
        self.bias = self.bias.map(|b| {
            let mean = b.clone().mean().expand([m]);
            Tensor::cat(vec![b, mean], 0)
        });
        self.n_items += m;
        self
    }

    /// The history id of new track `j` (see [`with_new_rows`](Self::with_new_rows)).
    pub fn new_track_id(&self, j: usize) -> Option<u32> {
        let (first, m) = self.new?;
        (j < m).then(|| (first + j - 1) as u32)
    }

    /// The scores of a batch, on the device.
    fn scores(&self, histories: &[&[u32]], completions: Option<&[&[f32]]>) -> Tensor<2> {
        let state = self.model.history_state_with(
            histories,
            completions,
            self.max_len,
            self.full,
            self.rows.as_ref(),
            &self.device,
        );
        let s = state.matmul(self.table.clone().transpose());
        match &self.bias {
            Some(b) => s + b.clone().unsqueeze_dim(0),
            None => s,
        }
    }
}

impl Scorer for ModelScorer<'_> {
    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score_all(&self, history: &[u32], out: &mut [f32]) {
        self.score_batch(&[history], out);
    }

    fn score_batch(&self, histories: &[&[u32]], out: &mut [f32]) {
        read_scores(self.scores(histories, None), out);
    }

    fn score_batch_completion(
        &self,
        histories: &[&[u32]],
        completions: &[&[f32]],
        out: &mut [f32],
    ) {
        read_scores(self.scores(histories, Some(completions)), out);
    }

    fn batch_hint(&self) -> usize {
        // About 16 M scores per read-back.
        (16_000_000 / self.n_items.max(1)).clamp(1, 512)
    }

    fn score_device(
        &self,
        histories: &[&[u32]],
        completions: Option<&[&[f32]]>,
    ) -> Option<Tensor<2>> {
        Some(self.scores(histories, completions))
    }
}
