//! Listening completion: the share of a track a listener heard before moving on.
//!
//! The paper's definition, on the raw log (before any filtering, since dropping plays inflates
//! the gaps): `(time of the next play in the same session - time of this play) / duration`,
//! clipped to [0, 1]. The last play of a session has none; nor does a track without a known
//! duration. Where the log records seconds played (Spotify's `ms_played`, the web app), the
//! ratio is measured directly: `seconds played / duration`, clipped.

use super::log::EventLog;

/// Completion ratio per event (index into the log), NaN where there is none.
/// `order` is the log in (user, time) order ([`EventLog::chronological`]).
pub fn completion_ratios(log: &EventLog, order: &[u32], gap_s: i64) -> Vec<f32> {
    let mut out = vec![f32::NAN; log.len()];
    for (k, &i) in order.iter().enumerate() {
        let i = i as usize;
        let Some(d) = log.duration(log.track[i]) else {
            continue;
        };
        if let Some(p) = log.played(i) {
            out[i] = (p / d).clamp(0.0, 1.0);
            continue;
        }
        let Some(&j) = order.get(k + 1) else { continue };
        let j = j as usize;
        if log.user[j] != log.user[i] {
            continue;
        }
        let gap = log.ts[j] - log.ts[i];
        if gap > gap_s {
            continue; // last play of its session
        }
        out[i] = (gap as f32 / d).clamp(0.0, 1.0);
    }
    out
}

/// Per-track summary of completion ratios.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrackCompletion {
    /// Plays that have a ratio.
    pub n: u32,
    pub mean: f32,
    pub median: f32,
    /// Share of plays with a ratio below the skip threshold.
    pub skip_rate: f32,
}

impl TrackCompletion {
    pub const NONE: Self = Self {
        n: 0,
        mean: f32::NAN,
        median: f32::NAN,
        skip_rate: f32::NAN,
    };
}

/// Over the plays that have a ratio: how many, their mean and the share below `skip_threshold`
/// (NaN when none has one). One pass, no copy.
pub fn ratio_summary(ratios: &[f32], skip_threshold: f32) -> (u64, f64, f64) {
    let (mut n, mut sum, mut skips) = (0u64, 0f64, 0u64);
    for &r in ratios.iter().filter(|r| r.is_finite()) {
        n += 1;
        sum += f64::from(r);
        skips += u64::from(r < skip_threshold);
    }
    let share = |x: f64| if n == 0 { f64::NAN } else { x / n as f64 };
    (n, share(sum), share(skips as f64))
}

/// Mean, median and skip rate per track of the log.
pub fn track_completion(
    log: &EventLog,
    ratios: &[f32],
    skip_threshold: f32,
) -> Vec<TrackCompletion> {
    let n_tracks = log.tracks.len();
    let mut start = vec![0u32; n_tracks + 1];
    for (i, r) in ratios.iter().enumerate() {
        if r.is_finite() {
            start[log.track[i] as usize + 1] += 1;
        }
    }
    for t in 0..n_tracks {
        start[t + 1] += start[t];
    }
    let mut fill = start.clone();
    let mut vals = vec![0f32; start[n_tracks] as usize];
    for (i, &r) in ratios.iter().enumerate() {
        if r.is_finite() {
            let t = log.track[i] as usize;
            vals[fill[t] as usize] = r;
            fill[t] += 1;
        }
    }
    (0..n_tracks)
        .map(|t| {
            let v = &mut vals[start[t] as usize..start[t + 1] as usize];
            summarize(v, skip_threshold)
        })
        .collect()
}

/// Summary of one track's ratios (reorders `v`).
pub fn summarize(v: &mut [f32], skip_threshold: f32) -> TrackCompletion {
    if v.is_empty() {
        return TrackCompletion::NONE;
    }
    let n = v.len();
    let mean = (v.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64) as f32;
    let skips = v.iter().filter(|&&x| x < skip_threshold).count();
    v.sort_unstable_by(f32::total_cmp);
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    TrackCompletion {
        n: n as u32,
        mean,
        median,
        skip_rate: skips as f32 / n as f32,
    }
}
