//! Ranking metrics for next-item prediction with one target per case.
//!
//! The rank of the target is `1 + the number of other candidates scoring at least as high`:
//! ties count against the model, so a model that scores everything equally ranks the target
//! last, never first. With a single relevant item, Recall@K equals HR@K.

use serde::{Deserialize, Serialize};

/// The cut-offs every report carries.
pub const KS: [usize; 6] = [1, 5, 10, 20, 50, 100];

/// Conservative rank (1-based) of the target with score `target` among `others` (the other
/// candidates' scores, not including the target itself). A NaN target score ranks last.
pub fn rank(target: f32, others: impl IntoIterator<Item = f32>) -> usize {
    1 + others
        .into_iter()
        .filter(|&s| target.is_nan() || s.is_nan() || s >= target)
        .count()
}

/// Per-case metric values for one rank.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CaseMetrics {
    pub rank: usize,
}

impl CaseMetrics {
    pub fn hr(&self, k: usize) -> f64 {
        f64::from(u8::from(self.rank <= k))
    }
    pub fn ndcg(&self, k: usize) -> f64 {
        if self.rank <= k {
            1.0 / (self.rank as f64 + 1.0).log2()
        } else {
            0.0
        }
    }
    pub fn mrr(&self, k: usize) -> f64 {
        if self.rank <= k {
            1.0 / self.rank as f64
        } else {
            0.0
        }
    }
}

/// Accumulated ranks of a run: means per metric and the per-case values paired tests need.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ranks {
    /// Case identifiers (user ids), in evaluation order.
    pub users: Vec<u32>,
    pub ranks: Vec<u32>,
}

impl Ranks {
    pub fn push(&mut self, user: u32, rank: usize) {
        self.users.push(user);
        self.ranks.push(rank as u32);
    }

    pub fn len(&self) -> usize {
        self.ranks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranks.is_empty()
    }

    /// Per-case values of a named metric (`HR@10`, `NDCG@10`, `MRR@10`, `MRR`).
    pub fn values(&self, metric: &str) -> Option<Vec<f64>> {
        let f: Box<dyn Fn(CaseMetrics) -> f64> = match metric.split_once('@') {
            None if metric == "MRR" => Box::new(|c: CaseMetrics| 1.0 / c.rank as f64),
            Some((name, k)) => {
                let k: usize = k.parse().ok()?;
                match name {
                    "HR" | "Recall" => Box::new(move |c: CaseMetrics| c.hr(k)),
                    "NDCG" => Box::new(move |c: CaseMetrics| c.ndcg(k)),
                    "MRR" => Box::new(move |c: CaseMetrics| c.mrr(k)),
                    _ => return None,
                }
            }
            None => return None,
        };
        Some(
            self.ranks
                .iter()
                .map(|&r| f(CaseMetrics { rank: r as usize }))
                .collect(),
        )
    }

    /// Mean of a named metric over the cases (NaN when there are none).
    pub fn mean(&self, metric: &str) -> Option<f64> {
        let v = self.values(metric)?;
        Some(if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        })
    }

    /// Every metric name a report carries: HR, NDCG and MRR at each of [`KS`], and MRR.
    pub fn metric_names() -> Vec<String> {
        let mut names = Vec::new();
        for m in ["HR", "NDCG", "MRR"] {
            for k in KS {
                names.push(format!("{m}@{k}"));
            }
        }
        names.push("MRR".into());
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_count_ties_against_the_model() {
        assert_eq!(rank(0.9, [0.1, 0.5]), 1);
        assert_eq!(rank(0.5, [0.1, 0.5, 0.7]), 3, "a tie ranks below");
        assert_eq!(rank(1.0, [1.0; 99]), 100, "all equal: last, not first");
        assert_eq!(rank(f32::NAN, [0.0, 1.0]), 3);
        assert_eq!(rank(0.3, [f32::NAN]), 2);
        assert_eq!(rank(0.3, []), 1);
    }

    #[test]
    fn metrics_by_hand() {
        // Ranks 1, 3 and 12 on three cases.
        let mut r = Ranks::default();
        for (u, k) in [(0, 1), (1, 3), (2, 12)] {
            r.push(u, k);
        }
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(r.mean("HR@1").unwrap(), 1.0 / 3.0));
        assert!(close(r.mean("HR@5").unwrap(), 2.0 / 3.0));
        assert!(close(r.mean("Recall@20").unwrap(), 1.0));
        assert!(close(
            r.mean("NDCG@5").unwrap(),
            (1.0 + 1.0 / 4f64.log2()) / 3.0
        ));
        assert!(close(
            r.mean("NDCG@20").unwrap(),
            (1.0 + 0.5 + 1.0 / 13f64.log2()) / 3.0
        ));
        assert!(close(r.mean("MRR@10").unwrap(), (1.0 + 1.0 / 3.0) / 3.0));
        assert!(close(
            r.mean("MRR").unwrap(),
            (1.0 + 1.0 / 3.0 + 1.0 / 12.0) / 3.0
        ));
        assert!(r.mean("F1@10").is_none());
        assert_eq!(Ranks::metric_names().len(), 19);
    }
}
