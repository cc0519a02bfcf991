//! A trained E4SRec as a [`Scorer`]: histories in batches through the decoder.

use super::Scorer;
use crate::model::e4srec::E4SRec;

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
        let s = self.model.forward(histories).into_data();
        out.copy_from_slice(s.as_slice::<f32>().expect("f32 scores"));
    }

    fn score_batch_completion(
        &self,
        histories: &[&[u32]],
        completions: &[&[f32]],
        out: &mut [f32],
    ) {
        let s = self
            .model
            .forward_with(histories, Some(completions))
            .into_data();
        out.copy_from_slice(s.as_slice::<f32>().expect("f32 scores"));
    }

    fn batch_hint(&self) -> usize {
        self.batch
    }
}
