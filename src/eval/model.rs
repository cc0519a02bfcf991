//! A trained sequential model as a [`Scorer`]: histories are scored in batches on the model's
//! device and read back once per batch.

use super::Scorer;
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
        self.score_batch_with(histories, None, out);
    }

    fn score_batch_completion(
        &self,
        histories: &[&[u32]],
        completions: &[&[f32]],
        out: &mut [f32],
    ) {
        self.score_batch_with(histories, Some(completions), out);
    }

    fn batch_hint(&self) -> usize {
        // About 16 M scores per read-back.
        (16_000_000 / self.n_items.max(1)).clamp(1, 512)
    }
}

impl ModelScorer<'_> {
    fn score_batch_with(
        &self,
        histories: &[&[u32]],
        completions: Option<&[&[f32]]>,
        out: &mut [f32],
    ) {
        let state = self.model.history_state_with(
            histories,
            completions,
            self.max_len,
            false,
            self.rows.as_ref(),
            &self.device,
        );
        let scores = self
            .model
            .score_all_with(state, self.table.clone())
            .into_data();
        out.copy_from_slice(scores.as_slice::<f32>().expect("f32 scores"));
    }
}
