//! Named evaluation protocols: which split, which candidates, and what a model may train on.
//!
//! * `loo-sampled99`: leave-one-out, the target ranked against 99 negatives (S3-Rec's protocol;
//!   with `--samples NAME_sample.txt` its published negatives, else 99 sampled unheard tracks).
//! * `temporal-sampled200`: the paper's global temporal split, 200 candidates (the positive
//!   exactly once plus 199 unheard tracks).
//! * `loo-full`, `temporal-full` (and `full` = `temporal-full`): every track is a candidate.
//! * `loo-sampled-N`, `temporal-sampled-N`: N candidates in all (the positive and N-1 negatives).
//!
//! Every run also reports full-catalogue ranking, with and without the tracks the user already
//! heard, whatever its main protocol (sampled metrics can reorder models).

use crate::data::Dataset;
use crate::data::split::{self, Candidates, Case, Scheme, Split};
use crate::eval::EvalError;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    pub name: String,
    pub split: Scheme,
    pub candidates: Candidates,
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || {
            format!(
                "unknown protocol '{s}' (loo-sampled99, temporal-sampled200, full, loo-full, \
                 temporal-full, loo-sampled-N, temporal-sampled-N)"
            )
        };
        let (scheme, rest) = match s {
            "full" => (Scheme::Temporal, "full"),
            _ => {
                let (a, b) = s.split_once('-').ok_or_else(err)?;
                (a.parse::<Scheme>().map_err(|_| err())?, b)
            }
        };
        let candidates = match (scheme, rest) {
            (Scheme::LeaveOneOut, "sampled99") => Candidates::Sampled(100),
            (Scheme::Temporal, "sampled200") => Candidates::Sampled(200),
            (_, "full") => Candidates::Full,
            (_, r) if r.starts_with("sampled-") => r.parse().map_err(|_| err())?,
            _ => return Err(err()),
        };
        Ok(Self {
            name: s.to_string(),
            split: scheme,
            candidates,
        })
    }
}

impl Protocol {
    /// One line for reports: what exactly was measured.
    pub fn describe(&self) -> String {
        let split = match self.split {
            Scheme::LeaveOneOut => "leave-one-out (last play test, second to last validation)",
            Scheme::Temporal => "global temporal (90th-percentile cutoffs, 10 % validation users)",
        };
        let cands = match self.candidates {
            Candidates::Full => "every track".to_string(),
            Candidates::Sampled(n) => {
                format!("{n} candidates (the positive once + {} negatives)", n - 1)
            }
        };
        format!(
            "{}: {split}; {cands}; conservative ranks (ties count against the model)",
            self.name
        )
    }
}

/// Everything a training run needs from a protocol on one dataset.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub split: Split,
    /// Per user, the play index (exclusive) up to which plays are training data.
    pub fit_end: Vec<u32>,
    pub valid_candidates: Option<Vec<Vec<u32>>>,
    pub test_candidates: Option<Vec<Vec<u32>>>,
}

/// Splits `d`, draws candidates (or maps the negatives of `samples`: per original user id, its
/// negative original track ids), and sets the training cut-offs: leave-one-out trains on all but
/// the last two plays; temporal trains validation users up to the validation cutoff and all other
/// users up to the test cutoff.
pub fn prepare(
    d: &Dataset,
    p: &Protocol,
    seed: u64,
    samples: Option<&[(u32, Vec<u32>)]>,
) -> Result<Prepared, EvalError> {
    let split = match p.split {
        Scheme::LeaveOneOut => split::leave_one_out(d),
        Scheme::Temporal => split::temporal(d, 0.9, 0.1, seed),
    };
    let fit_end = match p.split {
        Scheme::LeaveOneOut => super::train_end(d, &split, super::Stage::Valid),
        Scheme::Temporal => {
            let mut e = super::train_end(d, &split, super::Stage::Test);
            let v = super::train_end(d, &split, super::Stage::Valid);
            for &u in &split.valid_users {
                e[u as usize] = v[u as usize];
            }
            e
        }
    };
    let (valid_candidates, test_candidates) = match (p.candidates, samples) {
        (Candidates::Full, _) => (None, None),
        (Candidates::Sampled(n), Some(rows)) => {
            let by_user = map_samples(d, rows, n)?;
            let pick = |cases: &[Case]| -> Result<Vec<Vec<u32>>, EvalError> {
                cases
                    .iter()
                    .map(|c| {
                        let negs = by_user[c.user as usize].as_ref().ok_or_else(|| {
                            EvalError::NoSamples {
                                user: d.users.get(c.user).to_string(),
                            }
                        })?;
                        if negs.contains(&c.target) {
                            return Err(EvalError::TargetIsNegative {
                                user: d.users.get(c.user).to_string(),
                                track: d.tracks.get(c.target).to_string(),
                            });
                        }
                        Ok(std::iter::once(c.target)
                            .chain(negs.iter().copied())
                            .collect())
                    })
                    .collect()
            };
            (Some(pick(&split.valid)?), Some(pick(&split.test)?))
        }
        (Candidates::Sampled(n), None) => (
            Some(split::sample_candidates(
                d,
                &split.valid,
                n,
                seed ^ 0x7a11d,
            )?),
            Some(split::sample_candidates(d, &split.test, n, seed)?),
        ),
    };
    Ok(Prepared {
        split,
        fit_end,
        valid_candidates,
        test_candidates,
    })
}

/// Cold start: a share of the tracks that are some user's last play become *cold*: every play
/// of a cold track is removed from the data except where it is a user's last play. Under
/// leave-one-out a cold track is then only ever a test target, in no training sequence and in
/// no history. Returns the reduced dataset and the cold flag of every track.
pub fn cold_start(
    d: &Dataset,
    fraction: f64,
    seed: u64,
) -> Result<(Dataset, Vec<bool>), EvalError> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(EvalError::Setting(format!(
            "cold-start share {fraction} is not in (0, 1)"
        )));
    }
    let mut is_target = vec![false; d.n_tracks()];
    for u in 0..d.n_users() as u32 {
        if let Some(&t) = d.sequence(u).last() {
            is_target[t as usize] = true;
        }
    }
    let mut rng = crate::util::rng::Rng::stream(seed, 0xc01d);
    let cold: Vec<bool> = is_target
        .iter()
        .map(|&t| t && rng.f64() < fraction)
        .collect();
    let mut keep = vec![true; d.n_plays()];
    for u in 0..d.n_users() as u32 {
        let r = d.user_range(u);
        for i in r.start..r.end.saturating_sub(1) {
            keep[i] = !cold[d.track[i] as usize];
        }
    }
    Ok((d.retain_plays(&keep), cold))
}

/// Per dataset user, its negatives from a samples file as dataset track ids.
fn map_samples(
    d: &Dataset,
    rows: &[(u32, Vec<u32>)],
    n: usize,
) -> Result<Vec<Option<Vec<u32>>>, EvalError> {
    let mut out = vec![None; d.n_users()];
    for (line, (u, negs)) in rows.iter().enumerate() {
        let Some(uid) = d.users.lookup(&u.to_string()) else {
            continue; // a user the preprocessing dropped
        };
        if negs.len() != n - 1 {
            return Err(EvalError::NegativeCount {
                line: line + 1,
                user: *u,
                got: negs.len(),
                want: n - 1,
            });
        }
        let mapped = negs
            .iter()
            .map(|t| {
                d.tracks
                    .lookup(&t.to_string())
                    .ok_or(EvalError::UnknownTrack {
                        line: line + 1,
                        track: *t,
                    })
            })
            .collect::<Result<Vec<u32>, EvalError>>()?;
        out[uid as usize] = Some(mapped);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_tracks_are_only_ever_test_targets() {
        use crate::data::{EventLog, Preset, RawEvent, preprocess};
        let mut log = EventLog::default();
        for u in 0..40 {
            let user = format!("u{u}");
            for i in 0..12 {
                let key = format!("t{}", (u * 3 + i * 7) % 25);
                log.push(&RawEvent {
                    user: &user,
                    ts: i64::from(i) * 60,
                    track_key: &key,
                    ..Default::default()
                });
            }
        }
        let d = preprocess(&log, &Preset::sessions_only(1200), |_| {}).dataset;
        let (c, cold) = cold_start(&d, 0.5, 1).unwrap();
        assert!(cold.iter().any(|&x| x) && cold.iter().any(|&x| !x));
        assert_eq!(c.n_tracks(), d.n_tracks());
        assert!(c.n_plays() < d.n_plays());
        let split = crate::data::split::leave_one_out(&c);
        let mut cold_targets = 0;
        for case in &split.test {
            assert!(case.history(&c).iter().all(|&t| !cold[t as usize]));
            cold_targets += usize::from(cold[case.target as usize]);
            // The last play is the original last play.
            assert_eq!(Some(&case.target), d.sequence(case.user).last());
        }
        assert!(cold_targets > 0);
        for v in &split.valid {
            assert!(!cold[v.target as usize]);
        }
        // Sessions and users stay consistent.
        assert_eq!(*c.user_start.last().unwrap() as usize, c.n_plays());
        assert_eq!(*c.session_start.last().unwrap() as usize, c.n_plays());
        assert!(c.session_start.windows(2).all(|w| w[0] < w[1]));
        assert!(cold_start(&d, 1.0, 1).is_err());
    }

    #[test]
    fn protocol_names() {
        let p: Protocol = "loo-sampled99".parse().unwrap();
        assert_eq!(
            (p.split, p.candidates),
            (Scheme::LeaveOneOut, Candidates::Sampled(100))
        );
        let p: Protocol = "temporal-sampled200".parse().unwrap();
        assert_eq!(
            (p.split, p.candidates),
            (Scheme::Temporal, Candidates::Sampled(200))
        );
        let p: Protocol = "full".parse().unwrap();
        assert_eq!(
            (p.split, p.candidates),
            (Scheme::Temporal, Candidates::Full)
        );
        let p: Protocol = "loo-sampled-50".parse().unwrap();
        assert_eq!(p.candidates, Candidates::Sampled(50));
        for bad in ["loo", "loo-sampled", "random-full", "temporal-sampled99x"] {
            assert!(bad.parse::<Protocol>().is_err(), "{bad}");
        }
    }
}
