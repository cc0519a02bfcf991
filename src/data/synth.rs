//! Synthetic listening logs with known latent content, in the LastFM-1K format.
//!
//! Every track has a content vector (its artist's centre plus noise); every user has a few
//! "moods", unit vectors in the same space. A user's pool of tracks for a mood is drawn from a
//! power-law popularity and re-ranked by how well the track's content matches the mood, mixed
//! with noise by `content_weight` (0: content explains nothing; 1: the ranking is all content).
//! Sessions pick a mood and play from its pool with a Zipf preference, repeats, and skips that
//! are likelier for tracks far from the mood; a play lasts its listened time plus a few seconds,
//! sessions are separated by gaps of more than 20 minutes. Rows are written newest-first per
//! user, as in LastFM-1K.

use super::time::push_datetime;
use crate::util::rng::{Alias, Rng};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SynthConfig {
    /// Exact number of log lines.
    pub lines: u64,
    pub seed: u64,
    pub users: u32,
    pub tracks: u32,
    pub artists: u32,
    /// Dimension of the latent content space.
    pub dim: usize,
    /// Moods per user.
    pub moods: usize,
    /// How much of a user's preference content explains, in [0, 1].
    pub content_weight: f64,
    /// Chance that a play repeats the previous track.
    pub repeat_rate: f64,
    /// Mean session length in plays.
    pub session_len: f64,
}

impl SynthConfig {
    /// Sizes scaled from LastFM-1K (992 users, ~1.5 M tracks for 19.15 M lines).
    pub fn scaled(lines: u64, seed: u64) -> Self {
        let users = ((lines as f64 * 992.0 / 19_150_868.0).round() as u32).clamp(4, 992);
        let tracks = ((lines / 12) as u32).max(200);
        Self {
            lines,
            seed,
            users,
            tracks,
            artists: (tracks / 8).max(20),
            dim: 16,
            moods: 3,
            content_weight: 0.8,
            repeat_rate: 0.05,
            session_len: 14.0,
        }
    }

    pub fn validate(&self) -> Result<(), crate::data::error::DataError> {
        use crate::data::error::DataError;
        if self.users == 0
            || self.tracks == 0
            || self.artists == 0
            || self.dim == 0
            || self.moods == 0
        {
            return Err(DataError::Setting(
                "users, tracks, artists, dim and moods must be positive".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.content_weight) {
            return Err(DataError::Setting(format!(
                "content weight {} is outside [0, 1]",
                self.content_weight
            )));
        }
        if !(0.0..1.0).contains(&self.repeat_rate) || self.session_len < 1.0 {
            return Err(DataError::Setting(
                "repeat rate must be in [0, 1) and session length at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// A generated track.
#[derive(Clone, Debug)]
pub struct SynthTrack {
    pub mbid: Option<String>,
    pub artist: u32,
    pub title: String,
    pub duration_s: f32,
    pub tags: Vec<&'static str>,
    pub lyric: String,
}

/// Catalogue and latent factors behind a synthetic log.
#[derive(Clone, Debug)]
pub struct SynthCatalog {
    pub dim: usize,
    pub artists: Vec<(Option<String>, String)>,
    pub tracks: Vec<SynthTrack>,
    /// `tracks x dim`, row-major.
    pub content: Vec<f32>,
    /// `users x moods x dim`, row-major.
    pub moods: Vec<f32>,
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ra", "ve", "sol", "dun", "bri", "tor", "ël", "ñu", "zé", "ßa", "fa", "gro",
    "nox", "pi", "que", "sta", "vin", "ø", "ko", "mar", "lu", "ä", "rey", "chi",
];
const WORDS: &[&str] = &[
    "night", "river", "silver", "heart", "city", "fire", "summer", "ghost", "electric", "golden",
    "broken", "dream", "ocean", "highway", "velvet", "shadow", "neon", "winter", "morning", "echo",
    "paper", "thunder", "glass", "garden",
];
/// Tag and lyric vocabulary: per latent dimension, a word for each sign.
const POLES: &[(&str, &str)] = &[
    ("energetic", "calm"),
    ("acoustic", "electronic"),
    ("happy", "melancholic"),
    ("danceable", "ambient"),
    ("vocal", "instrumental"),
    ("heavy", "light"),
    ("fast", "slow"),
    ("bright", "dark"),
    ("romantic", "political"),
    ("live", "studio"),
    ("guitar", "synth"),
    ("minimal", "orchestral"),
    ("raw", "polished"),
    ("groovy", "straight"),
    ("dreamy", "gritty"),
    ("folk", "urban"),
];

fn name(rng: &mut Rng, parts: usize) -> String {
    let mut s = String::new();
    for i in 0..parts {
        s.push_str(SYLLABLES[rng.below(SYLLABLES.len() as u64) as usize]);
        if i == 0 && parts > 2 {
            s.push(' ');
        }
    }
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => s,
    }
}

fn uuid(rng: &mut Rng) -> String {
    let (a, b) = (rng.next_u64(), rng.next_u64());
    let h = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn unit(rng: &mut Rng, dim: usize) -> Vec<f32> {
    let v: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-9);
    v.into_iter().map(|x| (x / n) as f32).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Builds the catalogue (artists, tracks, content vectors, user moods).
pub fn catalog(cfg: &SynthConfig) -> SynthCatalog {
    let mut rng = Rng::stream(cfg.seed, 1);
    let dim = cfg.dim;
    let centres: Vec<Vec<f32>> = (0..cfg.artists).map(|_| unit(&mut rng, dim)).collect();
    let artists: Vec<(Option<String>, String)> = (0..cfg.artists)
        .map(|a| {
            let mbid = (rng.f64() < 0.95).then(|| uuid(&mut rng));
            let parts = 2 + rng.below(3) as usize;
            (mbid, format!("{} {a}", name(&mut rng, parts)))
        })
        .collect();
    let mut content = Vec::with_capacity(cfg.tracks as usize * dim);
    let mut tracks = Vec::with_capacity(cfg.tracks as usize);
    for t in 0..cfg.tracks {
        let artist = rng.below(u64::from(cfg.artists)) as u32;
        let noise = unit(&mut rng, dim);
        let mut v: Vec<f32> = centres[artist as usize]
            .iter()
            .zip(&noise)
            .map(|(c, n)| 0.8 * c + 0.6 * n)
            .collect();
        let n = dot(&v, &v).sqrt().max(1e-9);
        v.iter_mut().for_each(|x| *x /= n);
        let mut order: Vec<usize> = (0..dim.min(POLES.len())).collect();
        order.sort_by(|&a, &b| v[b].abs().total_cmp(&v[a].abs()));
        let pole = |d: usize| if v[d] >= 0.0 { POLES[d].0 } else { POLES[d].1 };
        let tags: Vec<&'static str> = order.iter().take(3).map(|&d| pole(d)).collect();
        let weights: Vec<f64> = order
            .iter()
            .map(|&d| f64::from(v[d].abs()).powi(2) + 1e-6)
            .collect();
        let pick = Alias::new(&weights);
        let lyric: Vec<&str> = (0..10)
            .map(|i| {
                if i % 3 == 2 {
                    WORDS[rng.below(WORDS.len() as u64) as usize]
                } else {
                    pole(order[pick.sample(&mut rng)])
                }
            })
            .collect();
        let title = format!(
            "{} {} {t}",
            WORDS[rng.below(WORDS.len() as u64) as usize],
            WORDS[rng.below(WORDS.len() as u64) as usize]
        );
        let duration_s = (230.0 * (0.3 * rng.normal()).exp())
            .clamp(60.0, 900.0)
            .round() as f32;
        tracks.push(SynthTrack {
            mbid: (rng.f64() < 0.8).then(|| uuid(&mut rng)),
            artist,
            title,
            duration_s,
            tags,
            lyric: lyric.join(" "),
        });
        content.extend_from_slice(&v);
    }
    let mut moods = Vec::with_capacity(cfg.users as usize * cfg.moods * dim);
    for _ in 0..cfg.users as usize * cfg.moods {
        moods.extend(unit(&mut rng, dim));
    }
    SynthCatalog {
        dim,
        artists,
        tracks,
        content,
        moods,
    }
}

/// Plays per user: log-normal shares of `lines`, summing exactly.
fn plays_per_user(cfg: &SynthConfig) -> Vec<u64> {
    let mut rng = Rng::stream(cfg.seed, 2);
    let w: Vec<f64> = (0..cfg.users).map(|_| (0.9 * rng.normal()).exp()).collect();
    let total: f64 = w.iter().sum();
    let mut n: Vec<u64> = w
        .iter()
        .map(|x| (x / total * cfg.lines as f64).floor() as u64)
        .collect();
    let mut rest = cfg.lines - n.iter().sum::<u64>();
    let (mut i, len) = (0, n.len());
    while rest > 0 {
        n[i % len] += 1;
        rest -= 1;
        i += 1;
    }
    n
}

const START: i64 = 1_108_339_200; // 2005-02-14
const END: i64 = 1_245_369_600; // 2009-06-19

/// Generates the log, calling `line` with each line (no newline), newest-first per user.
pub fn generate(cfg: &SynthConfig, cat: &SynthCatalog, mut line: impl FnMut(&str)) {
    let dim = cat.dim;
    // Global popularity: a Zipf law over a random ranking of the tracks.
    let mut rng = Rng::stream(cfg.seed, 3);
    let mut rank: Vec<u32> = (0..cfg.tracks).collect();
    rng.shuffle(&mut rank);
    let mut pop = vec![0f64; cfg.tracks as usize];
    for (r, &t) in rank.iter().enumerate() {
        pop[t as usize] = 1.0 / (r as f64 + 10.0);
    }
    let popularity = Alias::new(&pop);
    // Per track, everything after the timestamp on a line.
    let tails: Vec<String> = cat
        .tracks
        .iter()
        .map(|t| {
            let (am, an) = &cat.artists[t.artist as usize];
            format!(
                "{}\t{}\t{}\t{}",
                am.as_deref().unwrap_or(""),
                an,
                t.mbid.as_deref().unwrap_or(""),
                t.title
            )
        })
        .collect();
    let per_user = plays_per_user(cfg);
    let mut buf = String::with_capacity(256);
    let mut plays: Vec<(i64, u32)> = Vec::new();
    for (u, &n) in per_user.iter().enumerate() {
        let mut rng = Rng::stream(cfg.seed, 1000 + u as u64);
        let user = format!("user_{:06}", u + 1);
        // Pools per mood.
        let pool_size = ((n as f64 / 6.0) as usize)
            .clamp(20, 4000)
            .min(cfg.tracks as usize);
        let pools: Vec<(Vec<u32>, Alias)> = (0..cfg.moods)
            .map(|k| {
                let mood = &cat.moods[(u * cfg.moods + k) * dim..(u * cfg.moods + k + 1) * dim];
                let draws = (4 * pool_size).min(cfg.tracks as usize * 2);
                let mut cand: Vec<(f64, u32)> = (0..draws)
                    .map(|_| {
                        let t = popularity.sample(&mut rng) as u32;
                        let sim = f64::from(dot(
                            mood,
                            &cat.content[t as usize * dim..(t as usize + 1) * dim],
                        ));
                        let gumbel = -(-(1.0 - rng.f64()).ln()).ln();
                        (
                            cfg.content_weight * sim * 4.0 * (dim as f64).sqrt()
                                + (1.0 - cfg.content_weight) * gumbel,
                            t,
                        )
                    })
                    .collect();
                cand.sort_by(|a, b| b.0.total_cmp(&a.0));
                let mut seen = std::collections::HashSet::new();
                let pool: Vec<u32> = cand
                    .into_iter()
                    .map(|c| c.1)
                    .filter(|t| seen.insert(*t))
                    .take(pool_size)
                    .collect();
                let w: Vec<f64> = (0..pool.len())
                    .map(|r| 1.0 / (r as f64 + 1.0).powf(0.8))
                    .collect();
                (pool, Alias::new(&w))
            })
            .collect();
        let est_sessions = (n as f64 / cfg.session_len).max(1.0);
        let start = START + rng.below(((END - START) as f64 * 0.6) as u64) as i64;
        let mean_gap = (((END - start) as f64 - n as f64 * 200.0) / est_sessions).max(3600.0);
        let mut ts = start;
        plays.clear();
        let mut mood = 0usize;
        while (plays.len() as u64) < n {
            if !plays.is_empty() {
                ts += 1201 + rng.exp(mean_gap - 1201.0).round() as i64;
            }
            if rng.f64() < 0.6 {
                mood = rng.below(cfg.moods as u64) as usize;
            }
            let mood_vec =
                &cat.moods[(u * cfg.moods + mood) * dim..(u * cfg.moods + mood + 1) * dim];
            let len = 1 + rng.exp(cfg.session_len - 1.0).round() as u64;
            let (pool, alias) = &pools[mood];
            let mut prev: Option<u32> = None;
            for _ in 0..len {
                if plays.len() as u64 >= n {
                    break;
                }
                let t = match prev {
                    Some(p) if rng.f64() < cfg.repeat_rate => p,
                    _ => pool[alias.sample(&mut rng)],
                };
                plays.push((ts, t));
                let track = &cat.tracks[t as usize];
                let affinity = f64::from(dot(
                    mood_vec,
                    &cat.content[t as usize * dim..(t as usize + 1) * dim],
                ));
                let p_skip = (0.25 - 0.25 * cfg.content_weight * affinity).clamp(0.03, 0.6);
                let share = if rng.f64() < p_skip {
                    0.02 + 0.43 * rng.f64()
                } else {
                    0.9 + 0.1 * rng.f64()
                };
                ts += (f64::from(track.duration_s) * share).round() as i64 + rng.below(6) as i64;
                prev = Some(t);
            }
        }
        for &(t, track) in plays.iter().rev() {
            buf.clear();
            buf.push_str(&user);
            buf.push('\t');
            push_datetime(&mut buf, t);
            buf.push('\t');
            buf.push_str(&tails[track as usize]);
            line(&buf);
        }
    }
}

/// Writes a `.npy` (format 1.0, little-endian f32, C order) of the given shape.
pub fn write_npy<W: std::io::Write>(
    w: &mut W,
    data: &[f32],
    shape: &[usize],
) -> std::io::Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    w.write_all(b"\x93NUMPY\x01\x00")?;
    w.write_all(&(header.len() as u16).to_le_bytes())?;
    w.write_all(header.as_bytes())?;
    for c in data.chunks(4096) {
        let b: Vec<u8> = c.iter().flat_map(|x| x.to_le_bytes()).collect();
        w.write_all(&b)?;
    }
    Ok(())
}
