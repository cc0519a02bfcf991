//! Training examples: windows cut from each user's training plays, and the batches built from
//! them (next-item targets at every position, or cloze-masked positions for BERT4Rec).

use crate::model::PAD;
use crate::util::rng::Rng;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// A window `seq[start..end]` of user sequence `seq`. Next-item windows predict the plays
/// `seq[own..end]` (each from everything before it in the window); the plays before `own` are
/// context only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub seq: u32,
    pub start: u32,
    pub end: u32,
    pub own: u32,
}

/// Cuts every sequence into windows from its end backwards so that each play is a target once
/// per epoch. Next-item windows hold up to `max_len + 1` plays (inputs and their shifted
/// targets). Without `stride` they tile the sequence, overlapping by one play, so a target near
/// a window's start sees little history; with `stride`, consecutive windows move by `stride`
/// plays and each predicts only its last `stride` (the earliest window all of its own), so every
/// target but the first few of a sequence sees at least `max_len - stride` plays, at
/// `max_len / stride` times the computation (`stride` 1: every target with its full history, as
/// RecBole's one sequence per prefix). Cloze windows hold `max_len` plays and do not overlap.
pub fn windows(seqs: &[&[u32]], max_len: usize, cloze: bool, stride: Option<usize>) -> Vec<Window> {
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
                    own: start as u32,
                });
                end = start;
            }
        } else {
            let step = stride.unwrap_or(max_len).clamp(1, max_len);
            while end >= 2 {
                let start = end.saturating_sub(max_len + 1);
                let own = if start == 0 {
                    1
                } else {
                    (end - step).max(start + 1)
                };
                out.push(Window {
                    seq: i as u32,
                    start: start as u32,
                    end: end as u32,
                    own: own as u32,
                });
                end = own;
            }
        }
    }
    out
}

/// Keeps each sequence's `n` most recent windows of `ws` (as [`windows`] cuts them: from each
/// sequence's end backwards). `n` = 1 trains on the last `max_len` plays of each user only, as
/// S3-Rec's SASRec does; older plays are then context for nothing and targets of nothing.
pub fn most_recent(ws: Vec<Window>, n: usize) -> Vec<Window> {
    let mut kept = Vec::with_capacity(ws.len());
    let mut seq = None;
    let mut count = 0;
    for w in ws {
        if seq != Some(w.seq) {
            seq = Some(w.seq);
            count = 0;
        }
        if count < n {
            kept.push(w);
        }
        count += 1;
    }
    kept
}

/// One batch on the host: left-padded ids and targets (`0` = no target), row-major `[rows, len]`,
/// with the completion ratio of each input play and of each target play (NaN: unknown, padding,
/// masked).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub rows: usize,
    pub len: usize,
    pub ids: Vec<i64>,
    pub targets: Vec<i64>,
    pub completion: Vec<f32>,
    pub target_completion: Vec<f32>,
}

impl Batch {
    /// `rows` windows of `len` positions, all padding.
    pub fn empty(rows: usize, len: usize) -> Self {
        Self {
            rows,
            len,
            ids: vec![PAD; rows * len],
            targets: vec![PAD; rows * len],
            completion: vec![f32::NAN; rows * len],
            target_completion: vec![f32::NAN; rows * len],
        }
    }

    /// Number of positions with a target.
    pub fn n_targets(&self) -> usize {
        self.targets.iter().filter(|&&t| t != PAD).count()
    }

    /// The completion ratio of each target play, in [`target_positions`](Self::target_positions)
    /// order.
    pub fn target_ratios(&self) -> Vec<f32> {
        self.targets
            .iter()
            .zip(&self.target_completion)
            .filter(|&(&t, _)| t != PAD)
            .map(|(_, &c)| c)
            .collect()
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
/// `ratios` (parallel to `seqs`) gives each play's completion ratio.
pub fn next_item_batch(seqs: &[&[u32]], ratios: &[&[f32]], ws: &[Window], len: usize) -> Batch {
    let mut b = Batch::empty(ws.len(), len);
    for (r, w) in ws.iter().enumerate() {
        let range = w.start as usize..w.end as usize;
        let s = &seqs[w.seq as usize][range.clone()];
        let c = &ratios[w.seq as usize][range];
        let k = s.len() - 1;
        let off = r * len + len - k;
        // Target j is play start + j + 1 of the sequence.
        let own = (w.own - w.start) as usize;
        for j in 0..k {
            b.ids[off + j] = i64::from(s[j]) + 1;
            if j + 1 >= own {
                b.targets[off + j] = i64::from(s[j + 1]) + 1;
            }
            b.completion[off + j] = c[j];
            b.target_completion[off + j] = c[j + 1];
        }
    }
    b
}

/// Cloze batch: each play of a window is masked with probability `mask_prob` (at least one per
/// window) and must be predicted; `mask_id` replaces it in the input.
pub fn cloze_batch(
    seqs: &[&[u32]],
    ratios: &[&[f32]],
    ws: &[Window],
    len: usize,
    mask_prob: f64,
    mask_id: i64,
    rng: &mut Rng,
) -> Batch {
    let mut b = Batch::empty(ws.len(), len);
    for (r, w) in ws.iter().enumerate() {
        let range = w.start as usize..w.end as usize;
        let s = &seqs[w.seq as usize][range.clone()];
        let c = &ratios[w.seq as usize][range];
        let off = r * len + len - s.len();
        let mut any = false;
        for (j, &t) in s.iter().enumerate() {
            let id = i64::from(t) + 1;
            if rng.f64() < mask_prob {
                // A masked play's completion is hidden too: it would tell the answer's fate.
                b.ids[off + j] = mask_id;
                b.targets[off + j] = id;
                b.target_completion[off + j] = c[j];
                any = true;
            } else {
                b.ids[off + j] = id;
                b.completion[off + j] = c[j];
            }
        }
        if !any {
            // Mask the last play: the position inference asks about.
            let j = s.len() - 1;
            b.targets[off + j] = b.ids[off + j];
            b.ids[off + j] = mask_id;
            b.target_completion[off + j] = c[j];
            b.completion[off + j] = f32::NAN;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_windows_predict_each_play_once_with_a_long_history() {
        let s: Vec<u32> = (0..23).collect();
        let c = [f32::NAN; 23];
        let (seqs, ratios) = ([&s[..]], [&c[..]]);
        for stride in [1, 2, 3, 5] {
            let ws = windows(&seqs, 5, false, Some(stride));
            let b = next_item_batch(&seqs, &ratios, &ws, 5);
            // Each play after the first is predicted exactly once.
            let mut targets: Vec<i64> = b.targets.iter().copied().filter(|&t| t != 0).collect();
            targets.sort_unstable();
            assert_eq!(targets, (2..=23).collect::<Vec<i64>>(), "stride {stride}");
            // Outside the earliest window, a target sees at least max_len - stride + 1 plays.
            for w in ws.iter().filter(|w| w.start > 0) {
                assert!(
                    w.own - w.start >= (5 - stride + 1) as u32,
                    "stride {stride}: {w:?}"
                );
                assert_eq!(w.end - w.own, stride as u32);
            }
        }
        // Without a stride the windows tile: as many as before the option existed.
        assert_eq!(windows(&seqs, 5, false, None).len(), 5);
    }

    #[test]
    fn most_recent_keeps_the_last_windows_of_each_sequence() {
        let long: Vec<u32> = (0..23).collect();
        let seqs = [&long[..], &[7u32, 8][..], &long[..9]];
        let all = windows(&seqs, 5, false, None);
        let one = most_recent(all.clone(), 1);
        assert_eq!(one.len(), 3);
        // Each kept window ends its sequence.
        for (w, s) in one.iter().zip(&seqs) {
            assert_eq!(w.end as usize, s.len(), "{w:?}");
        }
        let two = most_recent(all.clone(), 2);
        assert_eq!(two.iter().filter(|w| w.seq == 0).count(), 2);
        assert_eq!(two.iter().filter(|w| w.seq == 1).count(), 1);
        assert!(two.iter().all(|w| all.contains(w)));
        assert_eq!(most_recent(all.clone(), 100), all);
    }

    #[test]
    fn every_play_but_the_first_is_a_target_once() {
        let s: Vec<u32> = (0..12).collect();
        let seqs = [&s[..], &[7u32][..], &[1, 2][..]];
        let c: Vec<f32> = (0..12).map(|i| i as f32 / 10.0).collect();
        let ratios = [&c[..], &[f32::NAN][..], &[0.5, 0.25][..]];
        let ws = windows(&seqs, 4, false, None);
        let b = next_item_batch(&seqs, &ratios, &ws, 4);
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
        // Completion follows the plays: inputs' ratios, and the targets' for weighting.
        assert_eq!(&b.completion[0..4], &[0.7, 0.8, 0.9, 1.0]);
        assert_eq!(&b.target_completion[0..4], &[0.8, 0.9, 1.0, 1.1]);
        assert!(
            b.completion[last * 4..last * 4 + 3]
                .iter()
                .all(|x| x.is_nan())
        );
        assert_eq!(b.completion[last * 4 + 3], 0.5);
        assert_eq!(b.target_ratios().len(), b.n_targets());
    }

    #[test]
    fn cloze_masks_at_least_one_play() {
        let s: Vec<u32> = (0..9).collect();
        let seqs = [&s[..]];
        let c = [0.5f32; 9];
        let ratios = [&c[..]];
        let ws = windows(&seqs, 4, true, None);
        assert_eq!(ws.len(), 3);
        let mut rng = Rng::new(1);
        let b = cloze_batch(&seqs, &ratios, &ws, 4, 0.0, 99, &mut rng);
        assert_eq!(b.n_targets(), 3);
        for r in 0..3 {
            assert_eq!(b.ids[r * 4 + 3], 99);
            assert!(
                b.completion[r * 4 + 3].is_nan(),
                "a masked play hides its completion"
            );
            assert_eq!(b.target_completion[r * 4 + 3], 0.5);
        }
        let b = cloze_batch(&seqs, &ratios, &ws, 4, 1.0, 99, &mut rng);
        assert_eq!(b.n_targets(), 9);
        assert!(b.completion.iter().all(|x| x.is_nan()));
    }
}
