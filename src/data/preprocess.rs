//! Preprocessing presets and the pipeline that turns a raw [`EventLog`] into a [`Dataset`]:
//! filters, sessions, de-duplication, with the counts after every step.

use super::completion::{TrackCompletion, completion_ratios, ratio_summary, track_completion};
use super::intern::Interner;
use super::log::{EventLog, TextColumn};
use serde::{Deserialize, Serialize};

/// Every knob of the pipeline. See `presets.toml` for the step order and the two presets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Preset {
    pub session_gap_s: i64,
    pub min_user_plays: u32,
    pub min_track_plays: u32,
    pub k_core: u32,
    pub dedupe_in_session: bool,
    pub min_session_len: u32,
    pub max_session_len: u32,
    pub min_user_sessions: u32,
    pub skip_threshold: f32,
}

/// The presets shipped with Encore (`paper`, `default`).
pub const BUILTIN_PRESETS: &str = include_str!("presets.toml");

#[cfg(not(target_arch = "wasm32"))]
/// Parses a presets file (a TOML table per preset).
pub fn parse_presets(
    text: &str,
) -> Result<std::collections::BTreeMap<String, Preset>, crate::data::error::DataError> {
    toml::from_str(text).map_err(|e| crate::data::error::DataError::Setting(e.to_string()))
}

impl Preset {
    /// Every filter off: the log is only cut into sessions at gaps longer than `session_gap_s`.
    pub fn sessions_only(session_gap_s: i64) -> Self {
        Self {
            session_gap_s,
            min_user_plays: 0,
            min_track_plays: 0,
            k_core: 0,
            dedupe_in_session: false,
            min_session_len: 1,
            max_session_len: 0,
            min_user_sessions: 0,
            skip_threshold: 0.5,
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Preset {
    /// A built-in preset by name.
    pub fn builtin(name: &str) -> Result<Self, crate::data::error::DataError> {
        let all = parse_presets(BUILTIN_PRESETS).expect("built-in presets parse");
        let names: Vec<&str> = all.keys().map(String::as_str).collect();
        let names = names.join(", ");
        all.get(name).cloned().ok_or_else(|| {
            crate::data::error::DataError::Setting(format!(
                "no preset '{name}' (built in: {names})"
            ))
        })
    }
}

/// Counts after one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    pub step: String,
    pub users: u64,
    pub tracks: u64,
    /// `None` before the log is cut into sessions.
    pub sessions: Option<u64>,
    pub plays: u64,
}

/// A processed dataset: plays in (user, time) order, cut into sessions, with dense ids.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub users: Interner,
    pub tracks: Interner,
    pub track_name: TextColumn,
    pub track_artist: Vec<u32>,
    pub artists: Interner,
    pub artist_name: TextColumn,
    /// Seconds, NaN when unknown.
    pub track_duration: Vec<f32>,
    /// Completion summary per track, from the raw log.
    pub track_completion: Vec<TrackCompletion>,
    pub user: Vec<u32>,
    pub ts: Vec<i64>,
    pub track: Vec<u32>,
    /// Completion ratio per play (from the raw log), NaN where there is none.
    pub completion: Vec<f32>,
    /// Play index where each session starts, plus the end (`sessions + 1` entries).
    pub session_start: Vec<u32>,
    /// Play index where each user starts, plus the end (`users + 1` entries).
    pub user_start: Vec<u32>,
}

impl Dataset {
    pub fn n_users(&self) -> usize {
        self.users.len()
    }
    pub fn n_tracks(&self) -> usize {
        self.tracks.len()
    }
    pub fn n_plays(&self) -> usize {
        self.ts.len()
    }
    pub fn n_sessions(&self) -> usize {
        self.session_start.len().saturating_sub(1)
    }
    /// Play indices of user `u`.
    pub fn user_range(&self, u: u32) -> std::ops::Range<usize> {
        self.user_start[u as usize] as usize..self.user_start[u as usize + 1] as usize
    }
    /// Track ids of user `u` in time order.
    pub fn sequence(&self, u: u32) -> &[u32] {
        &self.track[self.user_range(u)]
    }

    /// The dataset with only the plays where `keep` is true. Users, tracks and artists keep
    /// their ids (a user or track may be left without plays); a session loses the dropped
    /// plays, and an emptied one disappears.
    pub fn retain_plays(&self, keep: &[bool]) -> Dataset {
        assert_eq!(keep.len(), self.n_plays(), "one flag per play");
        let mut d = Dataset {
            users: self.users.clone(),
            tracks: self.tracks.clone(),
            track_name: self.track_name.clone(),
            track_artist: self.track_artist.clone(),
            artists: self.artists.clone(),
            artist_name: self.artist_name.clone(),
            track_duration: self.track_duration.clone(),
            track_completion: self.track_completion.clone(),
            ..Default::default()
        };
        let mut session = 0usize;
        let mut last_session = usize::MAX;
        d.user_start.push(0);
        for u in 0..self.n_users() as u32 {
            for i in self.user_range(u) {
                while self.session_start[session + 1] as usize <= i {
                    session += 1;
                }
                if !keep[i] {
                    continue;
                }
                if session != last_session {
                    d.session_start.push(d.track.len() as u32);
                    last_session = session;
                }
                d.user.push(u);
                d.ts.push(self.ts[i]);
                d.track.push(self.track[i]);
                d.completion.push(self.completion[i]);
            }
            d.user_start.push(d.track.len() as u32);
        }
        d.session_start.push(d.track.len() as u32);
        d
    }
}

/// Result of preprocessing.
pub struct Processed {
    pub dataset: Dataset,
    pub steps: Vec<StepStats>,
    /// Completion ratios on the raw log: how many plays have one, and their mean.
    pub raw_plays_with_ratio: u64,
    pub raw_mean_ratio: f64,
    pub raw_tracks_with_duration: u64,
}

fn count(log: &EventLog, keep: &[u32], sessions: Option<u64>, step: &str) -> StepStats {
    let mut users = vec![false; log.users.len()];
    let mut tracks = vec![false; log.tracks.len()];
    for &i in keep {
        users[log.user[i as usize] as usize] = true;
        tracks[log.track[i as usize] as usize] = true;
    }
    StepStats {
        step: step.to_string(),
        users: users.iter().filter(|&&b| b).count() as u64,
        tracks: tracks.iter().filter(|&&b| b).count() as u64,
        sessions,
        plays: keep.len() as u64,
    }
}

fn filter_by_count(keep: &mut Vec<u32>, key: &[u32], n_keys: usize, min: u32) -> bool {
    let mut c = vec![0u32; n_keys];
    for &i in keep.iter() {
        c[key[i as usize] as usize] += 1;
    }
    let before = keep.len();
    keep.retain(|&i| c[key[i as usize] as usize] >= min);
    keep.len() != before
}

/// Keeps the plays (and their session numbers, a parallel column) for which `f(play, session)`
/// holds, in order.
fn retain_plays(keep: &mut Vec<u32>, sess: &mut Vec<u32>, mut f: impl FnMut(u32, u32) -> bool) {
    let mut w = 0;
    for k in 0..keep.len() {
        if f(keep[k], sess[k]) {
            keep[w] = keep[k];
            sess[w] = sess[k];
            w += 1;
        }
    }
    keep.truncate(w);
    sess.truncate(w);
}

/// Runs the preset's steps on `log`. `progress` is called with each finished step's name.
pub fn preprocess(log: &EventLog, p: &Preset, mut progress: impl FnMut(&str)) -> Processed {
    let order = log.chronological();
    progress("sort");
    let ratios = completion_ratios(log, &order, p.session_gap_s);
    let raw_completion = track_completion(log, &ratios, p.skip_threshold);
    let (raw_plays_with_ratio, raw_mean_ratio, _) = ratio_summary(&ratios, p.skip_threshold);
    progress("completion");

    let mut steps = vec![count(log, &order, None, "read")];
    let mut keep = order;
    if p.min_user_plays > 0 {
        filter_by_count(&mut keep, &log.user, log.users.len(), p.min_user_plays);
        steps.push(count(log, &keep, None, "min-user-plays"));
        progress("min-user-plays");
    }
    if p.min_track_plays > 0 {
        filter_by_count(&mut keep, &log.track, log.tracks.len(), p.min_track_plays);
        steps.push(count(log, &keep, None, "min-track-plays"));
        progress("min-track-plays");
    }
    if p.k_core > 0 {
        loop {
            let a = filter_by_count(&mut keep, &log.user, log.users.len(), p.k_core);
            let b = filter_by_count(&mut keep, &log.track, log.tracks.len(), p.k_core);
            if !a && !b {
                break;
            }
        }
        steps.push(count(log, &keep, None, "k-core"));
        progress("k-core");
    }
    // Sessions: `sess[k]` is the session number of play keep[k].
    let mut sess = Vec::with_capacity(keep.len());
    let mut s = 0u32;
    for k in 0..keep.len() {
        if k > 0 {
            let (a, b) = (keep[k - 1] as usize, keep[k] as usize);
            if log.user[a] != log.user[b] || log.ts[b] - log.ts[a] > p.session_gap_s {
                s += 1;
            }
        }
        sess.push(s);
    }
    let n_sessions = |sess: &[u32]| {
        (sess.len() as u64).min(1) + sess.windows(2).filter(|w| w[0] != w[1]).count() as u64
    };
    steps.push(count(log, &keep, Some(n_sessions(&sess)), "sessions"));
    progress("sessions");
    if p.dedupe_in_session {
        let mut seen = vec![u32::MAX; log.tracks.len()];
        retain_plays(&mut keep, &mut sess, |i, s| {
            let t = log.track[i as usize] as usize;
            let first = seen[t] != s;
            seen[t] = s;
            first
        });
        steps.push(count(
            log,
            &keep,
            Some(n_sessions(&sess)),
            "dedupe-in-session",
        ));
        progress("dedupe-in-session");
    }
    if p.min_session_len > 1 || p.max_session_len > 0 {
        let (mut w, mut k) = (0, 0);
        while k < keep.len() {
            let mut e = k;
            while e < keep.len() && sess[e] == sess[k] {
                e += 1;
            }
            if (e - k) as u32 >= p.min_session_len {
                let take = if p.max_session_len > 0 {
                    (e - k).min(p.max_session_len as usize)
                } else {
                    e - k
                };
                for j in k..k + take {
                    keep[w] = keep[j];
                    sess[w] = sess[j];
                    w += 1;
                }
            }
            k = e;
        }
        keep.truncate(w);
        sess.truncate(w);
        steps.push(count(log, &keep, Some(n_sessions(&sess)), "session-length"));
        progress("session-length");
    }
    if p.min_user_sessions > 0 {
        let mut per_user = vec![0u32; log.users.len()];
        for k in 0..keep.len() {
            if k == 0 || sess[k] != sess[k - 1] {
                per_user[log.user[keep[k] as usize] as usize] += 1;
            }
        }
        retain_plays(&mut keep, &mut sess, |i, _| {
            per_user[log.user[i as usize] as usize] >= p.min_user_sessions
        });
        steps.push(count(
            log,
            &keep,
            Some(n_sessions(&sess)),
            "min-user-sessions",
        ));
        progress("min-user-sessions");
    }
    let dataset = build(log, &keep, &sess, &ratios, &raw_completion);
    progress("dataset");
    Processed {
        dataset,
        steps,
        raw_plays_with_ratio,
        raw_mean_ratio,
        raw_tracks_with_duration: log.track_duration.iter().filter(|d| d.is_finite()).count()
            as u64,
    }
}

/// Re-indexes the kept plays densely: users and tracks in order of first appearance in the raw
/// log, so ids are stable for a given input whatever the preset keeps.
fn build(
    log: &EventLog,
    keep: &[u32],
    sess: &[u32],
    ratios: &[f32],
    completion: &[TrackCompletion],
) -> Dataset {
    let mut user_map = vec![u32::MAX; log.users.len()];
    let mut track_map = vec![u32::MAX; log.tracks.len()];
    let mut artist_map = vec![u32::MAX; log.artists.len()];
    for &i in keep {
        user_map[log.user[i as usize] as usize] = 0;
        track_map[log.track[i as usize] as usize] = 0;
    }
    let mut d = Dataset::default();
    for (u, m) in user_map.iter_mut().enumerate() {
        if *m == 0 {
            *m = d.users.id(log.users.get(u as u32));
        }
    }
    for (t, m) in track_map.iter_mut().enumerate() {
        if *m == 0 {
            *m = d.tracks.id(log.tracks.get(t as u32));
            d.track_name.push(log.track_name.get(t as u32));
            let a = log.track_artist[t] as usize;
            if artist_map[a] == u32::MAX {
                artist_map[a] = d.artists.id(log.artists.get(a as u32));
                d.artist_name.push(log.artist_name.get(a as u32));
            }
            d.track_artist.push(artist_map[a]);
            d.track_duration.push(log.track_duration[t]);
            d.track_completion.push(completion[t]);
        }
    }
    // Plays grouped by new user id (the raw order is by raw user id; new ids preserve it).
    d.user.reserve(keep.len());
    for (k, &i) in keep.iter().enumerate() {
        let i = i as usize;
        let u = user_map[log.user[i] as usize];
        if k == 0 || sess[k] != sess[k - 1] {
            d.session_start.push(k as u32);
        }
        if d.user.last() != Some(&u) {
            d.user_start.push(k as u32);
        }
        d.user.push(u);
        d.ts.push(log.ts[i]);
        d.track.push(track_map[log.track[i] as usize]);
        d.completion.push(ratios[i]);
    }
    d.session_start.push(keep.len() as u32);
    d.user_start.push(keep.len() as u32);
    d
}
