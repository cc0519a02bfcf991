//! A trained E4SRec as a [`Scorer`]: histories in batches through the decoder.

use super::{Scorer, read_scores};
use crate::model::e4srec::E4SRec;
use burn::tensor::Tensor;

/// An E4SRec model as a [`Scorer`]: histories in batches through the decoder.
pub struct E4SRecScorer<'a> {
    pub model: &'a E4SRec,
    pub batch: usize,
}

impl Scorer for E4SRecScorer<'_> {
    fn n_items(&self) -> usize {
        self.model.n_items()
    }

    fn score_all(&self, history: &[u32], out: &mut [f32]) {
        self.score_batch(&[history], out);
    }

    fn score_batch(&self, histories: &[&[u32]], out: &mut [f32]) {
        read_scores(self.model.forward(histories), out);
    }

    fn score_batch_completion(
        &self,
        histories: &[&[u32]],
        completions: &[&[f32]],
        out: &mut [f32],
    ) {
        read_scores(self.model.forward_with(histories, Some(completions)), out);
    }

    fn batch_hint(&self) -> usize {
        self.batch
    }

    fn score_device(
        &self,
        histories: &[&[u32]],
        completions: Option<&[&[f32]]>,
    ) -> Option<Tensor<2>> {
        Some(self.model.forward_with(histories, completions))
    }
}
