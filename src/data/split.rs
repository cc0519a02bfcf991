//! Evaluation splits and candidate sets.
//!
//! * Global temporal (the paper's): the test cutoff is the 90th percentile (nearest rank) of all
//!   play times, the validation cutoff the 90th percentile of the times before it. A seeded 10 %
//!   of users are validation users. A case's target is the user's first play at or after the
//!   cutoff; its history is every play strictly before the cutoff, so no history holds anything
//!   from after it. Validation targets must also fall before the test cutoff.
//! * Leave-one-out: the last play is the test target, the second to last the validation target.
//!
//! Candidates are `sampled-N` (the positive once, first, then N-1 distinct tracks the user
//! never played anywhere in the dataset, seeded per user) or `full` (every track).

use super::preprocess::Dataset;
use crate::util::rng::Rng;
use serde::{Deserialize, Serialize};

/// One evaluation case: predict `target` after the plays `history` (indices into the dataset).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub user: u32,
    /// Play index range `[start, end)` of the history.
    pub history: (u32, u32),
    /// Play index of the target.
    pub target_play: u32,
    /// Track id of the target.
    pub target: u32,
}

impl Case {
    pub fn history<'a>(&self, d: &'a Dataset) -> &'a [u32] {
        &d.track[self.history.0 as usize..self.history.1 as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    Temporal,
    LeaveOneOut,
}

impl std::str::FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "temporal" => Ok(Self::Temporal),
            "loo" | "leave-one-out" => Ok(Self::LeaveOneOut),
            _ => Err(format!("unknown split '{s}' (temporal, loo)")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub scheme: Scheme,
    pub seed: u64,
    /// Temporal only: Unix seconds.
    pub test_cutoff: Option<i64>,
    pub valid_cutoff: Option<i64>,
    /// Temporal only: the validation users (never test users).
    pub valid_users: Vec<u32>,
    pub test: Vec<Case>,
    pub valid: Vec<Case>,
}

/// Nearest-rank percentile of sorted values: the smallest value with at least `q` of the values
/// at or below it.
pub fn percentile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn first_at_or_after(d: &Dataset, u: u32, t: i64) -> usize {
    let r = d.user_range(u);
    r.start + d.ts[r.clone()].partition_point(|&x| x < t)
}

/// The paper's global temporal split; `valid_share` of users (seeded) are validation users.
pub fn temporal(d: &Dataset, q: f64, valid_share: f64, seed: u64) -> Split {
    let mut ts = d.ts.clone();
    ts.sort_unstable();
    let test_cutoff = percentile(&ts, q).unwrap_or(0);
    let before = ts.partition_point(|&x| x < test_cutoff);
    let valid_cutoff = percentile(&ts[..before], q).unwrap_or(test_cutoff);
    let mut users: Vec<u32> = (0..d.n_users() as u32).collect();
    Rng::stream(seed, 0x5eed_0001).shuffle(&mut users);
    let n_valid = (valid_share * users.len() as f64).round() as usize;
    let mut valid_users = users[..n_valid].to_vec();
    valid_users.sort_unstable();
    let mut is_valid = vec![false; d.n_users()];
    for &u in &valid_users {
        is_valid[u as usize] = true;
    }
    let (mut test, mut valid) = (Vec::new(), Vec::new());
    for u in 0..d.n_users() as u32 {
        let r = d.user_range(u);
        let cut = if is_valid[u as usize] {
            valid_cutoff
        } else {
            test_cutoff
        };
        let k = first_at_or_after(d, u, cut);
        if k == r.start || k == r.end {
            continue; // no history or no future play
        }
        if is_valid[u as usize] && d.ts[k] >= test_cutoff {
            continue; // its next play is already test time
        }
        let case = Case {
            user: u,
            history: (r.start as u32, k as u32),
            target_play: k as u32,
            target: d.track[k],
        };
        if is_valid[u as usize] {
            valid.push(case)
        } else {
            test.push(case)
        }
    }
    Split {
        scheme: Scheme::Temporal,
        seed,
        test_cutoff: Some(test_cutoff),
        valid_cutoff: Some(valid_cutoff),
        valid_users,
        test,
        valid,
    }
}

/// Leave-one-out: users with at least three plays give a test and a validation case.
pub fn leave_one_out(d: &Dataset) -> Split {
    let (mut test, mut valid) = (Vec::new(), Vec::new());
    for u in 0..d.n_users() as u32 {
        let r = d.user_range(u);
        if r.len() < 3 {
            continue;
        }
        let (s, e) = (r.start as u32, r.end as u32);
        test.push(Case {
            user: u,
            history: (s, e - 1),
            target_play: e - 1,
            target: d.track[e as usize - 1],
        });
        valid.push(Case {
            user: u,
            history: (s, e - 2),
            target_play: e - 2,
            target: d.track[e as usize - 2],
        });
    }
    Split {
        scheme: Scheme::LeaveOneOut,
        seed: 0,
        test_cutoff: None,
        valid_cutoff: None,
        valid_users: vec![],
        test,
        valid,
    }
}

/// Candidate set per case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Candidates {
    /// The positive plus N-1 sampled tracks the user never played.
    Sampled(usize),
    /// Every track.
    Full,
}

impl std::str::FromStr for Candidates {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "full" {
            return Ok(Self::Full);
        }
        s.strip_prefix("sampled-")
            .and_then(|n| n.parse().ok())
            .filter(|&n: &usize| n >= 1)
            .map(Self::Sampled)
            .ok_or_else(|| {
                format!("unknown candidates '{s}' (full, sampled-N such as sampled-200)")
            })
    }
}

impl std::fmt::Display for Candidates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sampled(n) => write!(f, "sampled-{n}"),
            Self::Full => f.write_str("full"),
        }
    }
}

/// Sorted, de-duplicated tracks of each user over the whole dataset.
pub fn played_sets(d: &Dataset) -> Vec<Vec<u32>> {
    (0..d.n_users() as u32)
        .map(|u| {
            let mut v = d.sequence(u).to_vec();
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect()
}

/// For each case: the positive followed by `n - 1` distinct tracks its user never played,
/// drawn uniformly with a per-user seeded stream.
pub fn sample_candidates(
    d: &Dataset,
    cases: &[Case],
    n: usize,
    seed: u64,
) -> Result<Vec<Vec<u32>>, crate::data::error::DataError> {
    let played = played_sets(d);
    let n_tracks = d.n_tracks() as u64;
    cases
        .iter()
        .map(|c| {
            let heard = &played[c.user as usize];
            let free = n_tracks as usize - heard.len();
            if free < n - 1 {
                return Err(crate::data::error::DataError::TooFewUnheard {
                    user: d.users.get(c.user).to_string(),
                    heard: heard.len(),
                    tracks: n_tracks,
                    needed: n - 1,
                });
            }
            let mut rng = Rng::stream(seed, u64::from(c.user) << 32 | u64::from(c.target_play));
            let mut out = Vec::with_capacity(n);
            out.push(c.target);
            let mut taken = std::collections::HashSet::with_capacity(n);
            if free <= 4 * (n - 1) {
                // Dense case: shuffle the unheard tracks and take a prefix.
                let mut pool: Vec<u32> = (0..n_tracks as u32)
                    .filter(|t| heard.binary_search(t).is_err())
                    .collect();
                rng.shuffle(&mut pool);
                out.extend_from_slice(&pool[..n - 1]);
                return Ok(out);
            }
            while out.len() < n {
                let t = rng.below(n_tracks) as u32;
                if heard.binary_search(&t).is_err() && taken.insert(t) {
                    out.push(t);
                }
            }
            Ok(out)
        })
        .collect()
}
