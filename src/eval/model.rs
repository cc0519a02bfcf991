//! A trained sequential model as a [`Scorer`]: histories are scored in batches on the model's
//! device and read back once per batch.

use super::Scorer;
use crate::model::SeqModel;
use burn::tensor::Device;

pub struct ModelScorer<'a> {
    pub model: &'a SeqModel,
    pub max_len: usize,
    pub device: Device,
    n_items: usize,
}

impl<'a> ModelScorer<'a> {
    /// `model` should be in inference mode (`Module::valid`).
    pub fn new(model: &'a SeqModel, max_len: usize, device: Device) -> Self {
        let n_items = model.item_table().dims()[0];
        Self {
            model,
            max_len,
            device,
            n_items,
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
        let state = self
            .model
            .history_state(histories, self.max_len, &self.device);
        let scores = self.model.score_all(state).into_data();
        out.copy_from_slice(scores.as_slice::<f32>().expect("f32 scores"));
    }

    fn batch_hint(&self) -> usize {
        // About 16 M scores per read-back.
        (16_000_000 / self.n_items.max(1)).clamp(1, 512)
    }
}
