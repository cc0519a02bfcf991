//! Listening sessions simulated from a catalog's content, for catalogs without a real log.
//!
//! Each listener has a taste over the catalog's tags and artists. A session starts on a track
//! drawn by taste and moves on to tracks drawn by taste plus similarity to the track just played
//! (shared artist and tags), never repeating the last few; how much of a track is heard follows
//! how well it fits, and poorly fitting tracks are skipped early. The log says nothing about
//! real listeners: it gives a demo model content-shaped sequences to learn.

use std::io::Write;

use super::{Catalog, Track};
use crate::util::rng::Rng;

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub listeners: usize,
    pub sessions_per_listener: usize,
    /// Mean session length in plays.
    pub session_len: f64,
    /// Weight of similarity to the previous track against the listener's taste.
    pub coherence: f64,
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listeners: 400,
            sessions_per_listener: 6,
            session_len: 8.0,
            coherence: 2.5,
            seed: 0,
        }
    }
}

/// One simulated play.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatedPlay {
    pub listener: usize,
    pub track: usize,
    /// Unix seconds.
    pub ts: i64,
    pub completion: f64,
}

fn similarity(a: &Track, b: &Track) -> f64 {
    let shared = b.tags.iter().filter(|t| a.tags.contains(t)).count() as f64;
    let union = (a.tags.len() + b.tags.len()) as f64 - shared;
    let jaccard = if union > 0.0 { shared / union } else { 0.0 };
    let artist = (!a.artist.is_empty() && a.artist == b.artist) as u8 as f64;
    let album = (!a.album.is_empty() && a.album == b.album) as u8 as f64;
    jaccard + 0.8 * artist + 0.4 * album
}

fn draw(weights: &[f64], rng: &mut Rng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.f64() * total;
    for (i, w) in weights.iter().enumerate() {
        x -= w;
        if x <= 0.0 {
            return i;
        }
    }
    weights.len() - 1
}

/// Simulates plays in (listener, time) order.
pub fn simulate(catalog: &Catalog, cfg: &SimConfig) -> Vec<SimulatedPlay> {
    let tracks = &catalog.tracks;
    let n = tracks.len();
    let mut vocab: Vec<String> = Vec::new();
    for t in tracks {
        for key in t
            .tags
            .iter()
            .cloned()
            .chain(std::iter::once(format!("artist:{}", t.artist)))
        {
            if !vocab.contains(&key) {
                vocab.push(key);
            }
        }
    }
    let sim: Vec<Vec<f64>> = tracks
        .iter()
        .map(|a| tracks.iter().map(|b| similarity(a, b)).collect())
        .collect();
    let mut plays = Vec::new();
    let start = 1_767_225_600i64; // 2026-01-01
    for listener in 0..cfg.listeners {
        let mut rng = Rng::stream(cfg.seed, listener as u64);
        // Taste: a few liked tags/artists with positive weight, the rest small noise.
        let liking: Vec<f64> = vocab
            .iter()
            .map(|_| {
                if rng.f64() < 0.25 {
                    1.0 + rng.f64()
                } else {
                    0.3 * rng.normal()
                }
            })
            .collect();
        let personal: Vec<f64> = (0..n).map(|_| 0.5 * rng.normal()).collect();
        let fit: Vec<f64> = tracks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let keys = t
                    .tags
                    .iter()
                    .cloned()
                    .chain(std::iter::once(format!("artist:{}", t.artist)));
                let s: f64 = keys
                    .filter_map(|k| vocab.iter().position(|v| *v == k))
                    .map(|k| liking[k])
                    .sum();
                s + personal[i]
            })
            .collect();
        let mut ts = start + (rng.f64() * 86_400.0 * 30.0) as i64;
        for _ in 0..cfg.sessions_per_listener {
            let len = 2 + rng.exp(cfg.session_len - 2.0).round() as usize;
            let mut recent: Vec<usize> = Vec::new();
            let mut prev: Option<usize> = None;
            for _ in 0..len {
                let weights: Vec<f64> = (0..n)
                    .map(|j| {
                        if recent.contains(&j) {
                            return 0.0;
                        }
                        let s = prev.map_or(0.0, |p| cfg.coherence * sim[p][j]);
                        (fit[j] + s).exp()
                    })
                    .collect();
                let j = draw(&weights, &mut rng);
                let affinity = fit[j] + prev.map_or(0.0, |p| sim[p][j]) + 0.5 * rng.normal();
                let completion = if affinity < 0.0 {
                    (0.05 + 0.25 * rng.f64()).min(1.0)
                } else {
                    (0.6 + 0.4 * (1.0 - (-affinity).exp()) + 0.1 * rng.normal()).clamp(0.3, 1.0)
                };
                plays.push(SimulatedPlay {
                    listener,
                    track: j,
                    ts,
                    completion,
                });
                ts += (tracks[j].duration_s * completion).ceil() as i64 + 1;
                recent.push(j);
                if recent.len() > 5 {
                    recent.remove(0);
                }
                prev = Some(j);
            }
            // The next session starts hours to days later (well past a 20-minute gap).
            ts += 3_600 + (rng.f64() * 86_400.0 * 3.0) as i64;
        }
    }
    plays
}

/// Writes plays as a RecBole `.inter` file (`user_id`, `item_id` = track id, `timestamp`,
/// `completion`).
pub fn write_inter(
    catalog: &Catalog,
    plays: &[SimulatedPlay],
    w: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(
        w,
        "user_id:token\titem_id:token\ttimestamp:float\tcompletion:float"
    )?;
    for p in plays {
        writeln!(
            w,
            "listener{:04}\t{}\t{}\t{:.3}",
            p.listener, catalog.tracks[p.track].id, p.ts, p.completion
        )?;
    }
    Ok(())
}

/// Writes the catalog as a RecBole `.item` file (`item_id`, `title`, `artist`, `duration_s`),
/// which names the tracks of [`write_inter`]'s log and gives the durations its completion
/// ratios are read through.
pub fn write_items(catalog: &Catalog, w: &mut impl Write) -> std::io::Result<()> {
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    writeln!(
        w,
        "item_id:token\ttitle:token_seq\tartist:token\tduration_s:float"
    )?;
    for t in &catalog.tracks {
        writeln!(
            w,
            "{}\t{}\t{}\t{}",
            t.id,
            clean(&t.title),
            clean(&t.artist),
            t.duration_s
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Track;

    fn catalog() -> Catalog {
        let t = |id: &str, artist: &str, tag: &str| Track {
            id: id.into(),
            title: id.into(),
            artist: artist.into(),
            album: String::new(),
            genre: tag.into(),
            duration_s: 100.0,
            audio: String::new(),
            licence: String::new(),
            attribution: String::new(),
            tags: vec![tag.into()],
        };
        let mut tracks = Vec::new();
        for i in 0..10 {
            tracks.push(t(&format!("a{i}"), "A", "calm"));
            tracks.push(t(&format!("b{i}"), "B", "loud"));
        }
        Catalog {
            name: "t".into(),
            description: String::new(),
            tracks,
        }
    }

    #[test]
    fn sessions_follow_content_and_are_deterministic() {
        let c = catalog();
        let cfg = SimConfig {
            listeners: 50,
            ..Default::default()
        };
        let plays = simulate(&c, &cfg);
        assert_eq!(plays, simulate(&c, &cfg));
        // Consecutive plays within a session share the artist far more often than chance (1/2).
        let (mut same, mut pairs) = (0, 0);
        for w in plays.windows(2) {
            if w[0].listener == w[1].listener && w[1].ts - w[0].ts < 1_200 {
                pairs += 1;
                same += (c.tracks[w[0].track].artist == c.tracks[w[1].track].artist) as usize;
            }
        }
        assert!(pairs > 500);
        assert!(same as f64 / pairs as f64 > 0.75, "{same}/{pairs}");
        assert!(plays.iter().all(|p| (0.0..=1.0).contains(&p.completion)));
    }
}
