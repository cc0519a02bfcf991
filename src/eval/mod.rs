//! Evaluation: conservative ranking metrics, the protocols (sampled candidates, full catalogue
//! with or without already-heard tracks), training cut-offs per split, and the honest floors
//! every model must beat (most-popular, session item-kNN).

pub mod baselines;
pub mod e4srec;
mod error;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod stats;

use crate::data::Dataset;
use crate::data::split::{Case, Scheme, Split};
use burn::tensor::Tensor;
pub use error::EvalError;
pub use metrics::{Ranks, rank};

/// Anything that scores every item after a history of item ids (time order).
pub trait Scorer {
    fn n_items(&self) -> usize;
    /// Writes one score per item into `out` (`out.len() == n_items()`); higher is better.
    fn score_all(&self, history: &[u32], out: &mut [f32]);
    /// Scores several histories at once into `out` (`histories.len() * n_items()`, row-major).
    fn score_batch(&self, histories: &[&[u32]], out: &mut [f32]) {
        let n = self.n_items();
        for (h, row) in histories.iter().zip(out.chunks_mut(n)) {
            self.score_all(h, row);
        }
    }
    /// [`score_batch`](Self::score_batch) with the completion ratio of every history play
    /// (NaN where unknown); scorers that do not read completion ignore it.
    fn score_batch_completion(
        &self,
        histories: &[&[u32]],
        _completions: &[&[f32]],
        out: &mut [f32],
    ) {
        self.score_batch(histories, out);
    }
    /// How many histories [`score_batch`](Self::score_batch) should get at once.
    fn batch_hint(&self) -> usize {
        1
    }
    /// The scores of several histories left on the scorer's device (`[histories, n_items]`),
    /// for a caller that reads them back itself ([`score_async`] in the page, where WebGPU
    /// reads back asynchronously); `None` for scorers that compute on the host.
    fn score_device(
        &self,
        _histories: &[&[u32]],
        _completions: Option<&[&[f32]]>,
    ) -> Option<Tensor<2>> {
        None
    }
}

/// Scores several histories with any scorer and reads device scores back asynchronously (what
/// a browser needs); row-major, `histories.len() * n_items()`. `completions` as in
/// [`Scorer::score_batch_completion`] (`None`: unknown).
pub async fn score_async(
    scorer: &dyn Scorer,
    histories: &[&[u32]],
    completions: Option<&[&[f32]]>,
) -> Result<Vec<f32>, EvalError> {
    if let Some(t) = scorer.score_device(histories, completions) {
        let data = t.into_data_async().await.map_err(EvalError::read_back)?;
        return data.try_into_vec::<f32>().map_err(EvalError::read_back);
    }
    let mut out = vec![0f32; histories.len() * scorer.n_items()];
    match completions {
        Some(c) => scorer.score_batch_completion(histories, c, &mut out),
        None => scorer.score_batch(histories, &mut out),
    }
    Ok(out)
}

/// Reads device scores back on the host (native: blocking).
pub(crate) fn read_scores(t: Tensor<2>, out: &mut [f32]) {
    let data = t.into_data();
    out.copy_from_slice(data.as_slice::<f32>().expect("f32 scores"));
}

/// Which stage of a split a model is trained for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Train for validation cases (model selection, early stopping).
    Valid,
    /// Train for test cases.
    Test,
}

/// Per user, the play index (exclusive) up to which plays may be used for training at `stage`:
/// temporal splits cut every user at the stage's cutoff, leave-one-out drops the last one
/// (test) or two (validation) plays.
pub fn train_end(d: &Dataset, split: &Split, stage: Stage) -> Vec<u32> {
    (0..d.n_users() as u32)
        .map(|u| {
            let r = d.user_range(u);
            match split.scheme {
                Scheme::Temporal => {
                    let cut = match stage {
                        Stage::Valid => split.valid_cutoff,
                        Stage::Test => split.test_cutoff,
                    }
                    .unwrap_or(i64::MAX);
                    (r.start + d.ts[r.clone()].partition_point(|&t| t < cut)) as u32
                }
                Scheme::LeaveOneOut => {
                    let drop = match stage {
                        Stage::Valid => 2,
                        Stage::Test => 1,
                    };
                    r.end.saturating_sub(drop).max(r.start) as u32
                }
            }
        })
        .collect()
}

/// One way of ranking a case's target: among its candidate list (positive first), or among
/// every item, optionally leaving out the tracks in the case's history (other than the target).
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub candidates: Option<&'a [Vec<u32>]>,
    pub mask_heard: bool,
}

/// Ranks the target of every case under one view (see [`View`]).
pub fn evaluate(
    scorer: &dyn Scorer,
    d: &Dataset,
    cases: &[Case],
    candidates: Option<&[Vec<u32>]>,
    mask_heard: bool,
) -> Ranks {
    let view = View {
        candidates,
        mask_heard,
    };
    evaluate_views(scorer, d, cases, &[view]).remove(0)
}

/// Ranks the target of every case under each view, scoring each case once.
pub fn evaluate_views(
    scorer: &dyn Scorer,
    d: &Dataset,
    cases: &[Case],
    views: &[View],
) -> Vec<Ranks> {
    let n = scorer.n_items();
    let mut out = vec![Ranks::default(); views.len()];
    let chunk = scorer.batch_hint().max(1);
    let mut scores = vec![0f32; chunk * n];
    let mut heard = vec![false; n];
    for (ci, group) in cases.chunks(chunk).enumerate() {
        let histories: Vec<&[u32]> = group.iter().map(|c| c.history(d)).collect();
        let completions: Vec<&[f32]> = group
            .iter()
            .map(|c| &d.completion[c.history.0 as usize..c.history.1 as usize])
            .collect();
        let block = &mut scores[..group.len() * n];
        scorer.score_batch_completion(&histories, &completions, block);
        for (j, c) in group.iter().enumerate() {
            let i = ci * chunk + j;
            let row = &block[j * n..(j + 1) * n];
            let target = row[c.target as usize];
            for (view, ranks) in views.iter().zip(out.iter_mut()) {
                let r = match view.candidates {
                    Some(cands) => {
                        let list = &cands[i];
                        debug_assert_eq!(
                            list[0], c.target,
                            "candidate lists start with the positive"
                        );
                        rank(target, list[1..].iter().map(|&t| row[t as usize]))
                    }
                    None => {
                        if view.mask_heard {
                            for &t in histories[j] {
                                heard[t as usize] = true;
                            }
                        }
                        let r = rank(
                            target,
                            row.iter()
                                .enumerate()
                                .filter(|&(t, _)| t != c.target as usize && !heard[t])
                                .map(|(_, &s)| s),
                        );
                        if view.mask_heard {
                            for &t in histories[j] {
                                heard[t as usize] = false;
                            }
                        }
                        r
                    }
                };
                ranks.push(c.user, r);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::baselines::{ItemKnn, ItemKnnConfig, MostPopular};
    use super::*;
    use crate::data::{EventLog, RawEvent, preprocess};

    /// Users cycling through 0..5 in order, one play a minute: every session is the cycle.
    fn cyclic(users: usize, plays: usize) -> Dataset {
        let mut log = EventLog::default();
        for u in 0..users {
            let user = format!("u{u}");
            for i in 0..plays {
                let key = ((i + u) % 5).to_string();
                log.push(&RawEvent {
                    user: &user,
                    ts: (i * 60) as i64,
                    track_key: &key,
                    ..Default::default()
                });
            }
        }
        let p = crate::data::Preset::sessions_only(1200);
        preprocess(&log, &p, |_| {}).dataset
    }

    #[test]
    fn item_knn_learns_a_cycle_and_popularity_does_not() {
        let d = cyclic(20, 23);
        let split = crate::data::split::leave_one_out(&d);
        let ends = train_end(&d, &split, Stage::Test);
        let sessions: Vec<&[u32]> = (0..d.n_users() as u32)
            .map(|u| &d.track[d.user_range(u).start..ends[u as usize] as usize])
            .collect();
        let knn = ItemKnn::fit(
            d.n_tracks(),
            sessions.iter().copied(),
            &ItemKnnConfig::default(),
        );
        let r = evaluate(&knn, &d, &split.test, None, false);
        assert_eq!(r.mean("HR@1"), Some(1.0));
        let pop = MostPopular::fit(
            d.n_tracks(),
            sessions.iter().flat_map(|s| s.iter().copied()),
        );
        let r = evaluate(&pop, &d, &split.test, None, false);
        assert!(r.mean("HR@1").unwrap() < 0.5, "{:?}", r.mean("HR@1"));
    }

    #[test]
    fn candidates_and_masking() {
        let d = cyclic(6, 12);
        let split = crate::data::split::leave_one_out(&d);
        let pop = MostPopular::fit(d.n_tracks(), d.track.iter().copied());
        // Full ranking equals ranking among a candidate list of every item (positive first).
        let all: Vec<Vec<u32>> = split
            .test
            .iter()
            .map(|c| {
                std::iter::once(c.target)
                    .chain((0..d.n_tracks() as u32).filter(|&t| t != c.target))
                    .collect()
            })
            .collect();
        assert_eq!(
            evaluate(&pop, &d, &split.test, Some(&all), false),
            evaluate(&pop, &d, &split.test, None, false)
        );
        // Every track was heard, so masking leaves only the target: rank 1.
        let masked = evaluate(&pop, &d, &split.test, None, true);
        assert!(masked.ranks.iter().all(|&r| r == 1));
        // Temporal cut-offs: nothing at or after the cutoff is training data.
        let t = crate::data::split::temporal(&d, 0.9, 0.0, 1);
        for (u, &e) in train_end(&d, &t, Stage::Test).iter().enumerate() {
            let r = d.user_range(u as u32);
            assert!(
                d.ts[r.start..e as usize]
                    .iter()
                    .all(|&x| x < t.test_cutoff.unwrap())
            );
            assert!(
                d.ts[e as usize..r.end]
                    .iter()
                    .all(|&x| x >= t.test_cutoff.unwrap())
            );
        }
    }
}
