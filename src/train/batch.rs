//! Training examples: windows cut from each user's training plays, and the batches built from
//! them (next-item targets at every position, or cloze-masked positions for BERT4Rec).

use crate::data::rng::Rng;
use crate::model::PAD;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// A window `seq[start..end]` of user sequence `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub seq: u32,
    pub start: u32,
    pub end: u32,
}

/// Cuts every sequence into windows from its end backwards so that each play is a target once
/// per epoch. Next-item windows hold `max_len + 1` plays (inputs and their shifted targets) and
/// overlap by one; cloze windows hold `max_len` plays and do not overlap.
pub fn windows(seqs: &[&[u32]], max_len: usize, cloze: bool) -> Vec<Window> {
    let mut out = Vec::new();
    for (i, s) in seqs.iter().enumerate() {
        let mut end = s.len();
        if cloze {
            while end > 0 {
                let start = end.saturating_sub(max_len);
                out.push(Window {
                    seq: i as u32,
                    start: start as u32,
                    end: end as u32,
                });
                end = start;
            }
        } else {
            while end >= 2 {
                let start = end.saturating_sub(max_len + 1);
                out.push(Window {
                    seq: i as u32,
                    start: start as u32,
                    end: end as u32,
                });
                end = start + 1;
            }
        }
    }
    out
}

/// One batch on the host: left-padded ids and targets (`0` = no target), row-major `[rows, len]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub rows: usize,
    pub len: usize,
    pub ids: Vec<i64>,
    pub targets: Vec<i64>,
}

impl Batch {
    /// `rows` windows of `len` positions, all padding.
    pub fn empty(rows: usize, len: usize) -> Self {
        Self {
            rows,
            len,
            ids: vec![PAD; rows * len],
            targets: vec![PAD; rows * len],
        }
    }

    /// Number of positions with a target.
    pub fn n_targets(&self) -> usize {
        self.targets.iter().filter(|&&t| t != PAD).count()
    }

    /// Row-major indices of positions with a target, and those targets as track ids.
    pub fn target_positions(&self) -> (Vec<i64>, Vec<u32>) {
        self.targets
            .iter()
            .enumerate()
            .filter(|&(_, &t)| t != PAD)
            .map(|(i, &t)| (i as i64, (t - 1) as u32))
            .unzip()
    }

    pub fn ids_tensor(&self, device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(
            TensorData::new(self.ids.clone(), [self.rows, self.len]),
            device,
        )
    }
}

/// Next-item batch: inputs `seq[start..end-1]`, targets `seq[start+1..end]`, right-aligned.
pub fn next_item_batch(seqs: &[&[u32]], ws: &[Window], len: usize) -> Batch {
    let mut b = Batch::empty(ws.len(), len);
    for (r, w) in ws.iter().enumerate() {
        let s = &seqs[w.seq as usize][w.start as usize..w.end as usize];
        let k = s.len() - 1;
        let off = r * len + len - k;
        for j in 0..k {
            b.ids[off + j] = i64::from(s[j]) + 1;
            b.targets[off + j] = i64::from(s[j + 1]) + 1;
        }
    }
    b
}

/// Cloze batch: each play of a window is masked with probability `mask_prob` (at least one per
/// window) and must be predicted; `mask_id` replaces it in the input.
pub fn cloze_batch(
    seqs: &[&[u32]],
    ws: &[Window],
    len: usize,
    mask_prob: f64,
    mask_id: i64,
    rng: &mut Rng,
) -> Batch {
    let mut b = Batch::empty(ws.len(), len);
    for (r, w) in ws.iter().enumerate() {
        let s = &seqs[w.seq as usize][w.start as usize..w.end as usize];
        let off = r * len + len - s.len();
        let mut any = false;
        for (j, &t) in s.iter().enumerate() {
            let id = i64::from(t) + 1;
            if rng.f64() < mask_prob {
                b.ids[off + j] = mask_id;
                b.targets[off + j] = id;
                any = true;
            } else {
                b.ids[off + j] = id;
            }
        }
        if !any {
            // Mask the last play: the position inference asks about.
            let j = s.len() - 1;
            b.targets[off + j] = b.ids[off + j];
            b.ids[off + j] = mask_id;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_play_but_the_first_is_a_target_once() {
        let s: Vec<u32> = (0..12).collect();
        let seqs = [&s[..], &[7u32][..], &[1, 2][..]];
        let ws = windows(&seqs, 4, false);
        let b = next_item_batch(&seqs, &ws, 4);
        let mut targets: Vec<i64> = b.targets.iter().copied().filter(|&t| t != 0).collect();
        targets.sort_unstable();
        let mut want: Vec<i64> = (2..=12).collect();
        want.push(3);
        want.sort_unstable();
        assert_eq!(targets, want);
        // The first window is the most recent: inputs 7..=10 (ids +1) predict 8..=11.
        assert_eq!(&b.ids[0..4], &[8, 9, 10, 11]);
        assert_eq!(&b.targets[0..4], &[9, 10, 11, 12]);
        // The single play gives no window; [1, 2] is right-aligned.
        assert_eq!(ws.iter().filter(|w| w.seq == 1).count(), 0);
        let last = b.rows - 1;
        assert_eq!(&b.ids[last * 4..], &[0, 0, 0, 2]);
        assert_eq!(&b.targets[last * 4..], &[0, 0, 0, 3]);
    }

    #[test]
    fn cloze_masks_at_least_one_play() {
        let s: Vec<u32> = (0..9).collect();
        let seqs = [&s[..]];
        let ws = windows(&seqs, 4, true);
        assert_eq!(ws.len(), 3);
        let mut rng = Rng::new(1);
        let b = cloze_batch(&seqs, &ws, 4, 0.0, 99, &mut rng);
        assert_eq!(b.n_targets(), 3);
        for r in 0..3 {
            assert_eq!(b.ids[r * 4 + 3], 99);
        }
        let b = cloze_batch(&seqs, &ws, 4, 1.0, 99, &mut rng);
        assert_eq!(b.n_targets(), 9);
    }
}
