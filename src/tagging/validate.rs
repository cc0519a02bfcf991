//! Agreement of predicted MGPHot genes with reference values, per gene and per category:
//! Spearman's rho (average ranks for ties) and mean absolute error, over the tracks both have.

use super::schema::{CATEGORIES, genes};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeneScore {
    pub gene: String,
    pub category: String,
    /// `None` when either side is constant over the tracks (rho undefined).
    pub spearman: Option<f64>,
    pub mae: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CategoryScore {
    pub category: String,
    /// Mean of the genes' defined rhos.
    pub spearman: Option<f64>,
    pub mae: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub tracks: usize,
    pub genes: Vec<GeneScore>,
    pub categories: Vec<CategoryScore>,
    pub overall: CategoryScore,
}

/// Ranks 1..n, ties sharing their average rank.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rho: Pearson correlation of the ranks.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    assert_eq!(a.len(), b.len());
    if a.len() < 2 {
        return None;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

/// Scores `pairs` of (predicted, reference) 58-gene vectors.
pub fn validate(pairs: &[(Vec<f32>, Vec<f32>)]) -> Validation {
    let all = genes();
    let scores: Vec<GeneScore> = all
        .iter()
        .map(|g| {
            let p: Vec<f64> = pairs.iter().map(|(p, _)| f64::from(p[g.index])).collect();
            let r: Vec<f64> = pairs.iter().map(|(_, r)| f64::from(r[g.index])).collect();
            GeneScore {
                gene: g.name.to_string(),
                category: g.category.to_string(),
                spearman: spearman(&p, &r),
                mae: mean(p.iter().zip(&r).map(|(x, y)| (x - y).abs())).unwrap_or(f64::NAN),
            }
        })
        .collect();
    let summarise = |name: &str, sel: &[&GeneScore]| CategoryScore {
        category: name.to_string(),
        spearman: mean(sel.iter().filter_map(|g| g.spearman)),
        mae: mean(sel.iter().map(|g| g.mae)).unwrap_or(f64::NAN),
    };
    let categories = CATEGORIES
        .iter()
        .map(|c| {
            let sel: Vec<&GeneScore> = scores.iter().filter(|g| g.category == *c).collect();
            summarise(c, &sel)
        })
        .collect();
    let every: Vec<&GeneScore> = scores.iter().collect();
    let overall = summarise("all", &every);
    Validation {
        tracks: pairs.len(),
        genes: scores,
        categories,
        overall,
    }
}

impl Validation {
    pub fn to_markdown(&self) -> String {
        let rho = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:+.3}"));
        let mut s = format!(
            "MGPHot agreement over {} tracks (Spearman rho, mean absolute error on [0, 1])\n\n",
            self.tracks
        );
        s.push_str("| category | rho | MAE |\n|---|---|---|\n");
        for c in self.categories.iter().chain(std::iter::once(&self.overall)) {
            s.push_str(&format!(
                "| {} | {} | {:.3} |\n",
                c.category,
                rho(c.spearman),
                c.mae
            ));
        }
        s.push_str("\n| gene | category | rho | MAE |\n|---|---|---|---|\n");
        for g in &self.genes {
            s.push_str(&format!(
                "| {} | {} | {} | {:.3} |\n",
                g.gene,
                g.category,
                rho(g.spearman),
                g.mae
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_against_hand_computed_values() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
        // Ties: ranks (1.5, 1.5, 3) and (1, 2, 3): rho = 0.866.
        let r = spearman(&[0.2, 0.2, 0.8], &[0.1, 0.5, 0.9]).unwrap();
        assert!((r - 0.75f64.sqrt()).abs() < 1e-12, "{r}");
    }

    #[test]
    fn perfect_and_shifted_predictions() {
        let v = |x: f32| {
            (0..58)
                .map(|g| (x + g as f32 * 0.01).min(1.0))
                .collect::<Vec<f32>>()
        };
        let pairs: Vec<(Vec<f32>, Vec<f32>)> = (0..5)
            .map(|i| (v(i as f32 * 0.1), v(i as f32 * 0.1)))
            .collect();
        let r = validate(&pairs);
        assert_eq!(r.tracks, 5);
        assert!(r.overall.mae < 1e-9);
        assert!((r.overall.spearman.unwrap() - 1.0).abs() < 1e-9);
        // Every prediction 0.1 too high: same ranks, MAE 0.1.
        let shifted: Vec<(Vec<f32>, Vec<f32>)> = pairs
            .iter()
            .map(|(p, r)| (p.iter().map(|x| x + 0.1).collect(), r.clone()))
            .collect();
        let r = validate(&shifted);
        assert!((r.overall.mae - 0.1).abs() < 1e-6);
        assert!(
            r.to_markdown()
                .contains("| instrumentation | +1.000 | 0.100 |")
        );
    }
}
