//! Floors every model must beat: most-popular, and session item-kNN (items that follow an item
//! within a few positions in training sessions, weighted by 1 / distance and cosine-normalised,
//! scored from the last few items of the history with decaying weights).

use super::Scorer;
use std::collections::HashMap;

/// Scores every item by its number of training plays.
pub struct MostPopular {
    counts: Vec<f32>,
}

impl MostPopular {
    pub fn fit(n_items: usize, train: impl IntoIterator<Item = u32>) -> Self {
        let mut counts = vec![0f32; n_items];
        for t in train {
            counts[t as usize] += 1.0;
        }
        Self { counts }
    }

    /// From play counts already made (a bundle's popularity), one per item.
    pub fn from_counts(counts: Vec<f32>) -> Self {
        Self { counts }
    }
}

impl Scorer for MostPopular {
    fn n_items(&self) -> usize {
        self.counts.len()
    }
    fn score_all(&self, _history: &[u32], out: &mut [f32]) {
        out.copy_from_slice(&self.counts);
    }
}

/// Session item-kNN.
pub struct ItemKnn {
    n_items: usize,
    /// Top neighbours per item with cosine similarity.
    neighbours: Vec<Vec<(u32, f32)>>,
    /// Weights of the last items of the history, most recent first.
    decay: Vec<f32>,
    /// Popularity, a small tie-breaker for items without neighbours.
    popularity: Vec<f32>,
}

#[derive(Clone, Debug)]
pub struct ItemKnnConfig {
    /// How many following positions in a session count as co-occurring.
    pub window: usize,
    pub neighbours: usize,
    /// How many of the last history items score, with weights 1, 1/2, 1/4, ...
    pub last: usize,
}

impl Default for ItemKnnConfig {
    fn default() -> Self {
        Self {
            window: 5,
            neighbours: 100,
            last: 3,
        }
    }
}

impl ItemKnn {
    /// Fits on training sessions (each a slice of item ids in time order).
    pub fn fit<'a>(
        n_items: usize,
        sessions: impl IntoIterator<Item = &'a [u32]>,
        cfg: &ItemKnnConfig,
    ) -> Self {
        let mut count = vec![0f32; n_items];
        let mut cooc: Vec<HashMap<u32, f32>> = vec![HashMap::new(); n_items];
        for s in sessions {
            for (i, &a) in s.iter().enumerate() {
                count[a as usize] += 1.0;
                let hi = (i + cfg.window + 1).min(s.len());
                for (dist, &b) in s[i + 1..hi].iter().enumerate() {
                    if a != b {
                        *cooc[a as usize].entry(b).or_default() += 1.0 / (dist + 1) as f32;
                    }
                }
            }
        }
        let neighbours = cooc
            .into_iter()
            .enumerate()
            .map(|(a, m)| {
                let mut v: Vec<(u32, f32)> = m
                    .into_iter()
                    .map(|(b, c)| (b, c / (count[a] * count[b as usize]).sqrt()))
                    .collect();
                v.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
                v.truncate(cfg.neighbours);
                v
            })
            .collect();
        let total: f32 = count.iter().sum::<f32>().max(1.0);
        Self {
            n_items,
            neighbours,
            decay: (0..cfg.last).map(|i| 0.5f32.powi(i as i32)).collect(),
            popularity: count.iter().map(|c| 1e-6 * c / total).collect(),
        }
    }
}

impl Scorer for ItemKnn {
    fn n_items(&self) -> usize {
        self.n_items
    }
    fn score_all(&self, history: &[u32], out: &mut [f32]) {
        out.copy_from_slice(&self.popularity);
        for (w, &item) in self.decay.iter().zip(history.iter().rev()) {
            for &(b, s) in &self.neighbours[item as usize] {
                out[b as usize] += w * s;
            }
        }
    }
}
