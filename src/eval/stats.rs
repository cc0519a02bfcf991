//! Statistics for reports: mean and 95 % confidence interval over seeds (Student's t), and paired
//! tests between two runs over the same users (bootstrap of the mean difference, and the Wilcoxon
//! signed-rank test with the normal approximation and tie correction).

use crate::util::rng::Rng;
use serde::{Deserialize, Serialize};

/// Two-sided 97.5 % quantiles of Student's t for 1..=30 degrees of freedom.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

fn t975(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T975[df - 1],
        _ => 1.96,
    }
}

/// Mean and the 95 % interval of the mean (`[mean, mean]` for a single value).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub mean: f64,
    pub ci95: [f64; 2],
}

pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn sample_sd(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() as f64 - 1.0)).sqrt()
}

pub fn summarize(v: &[f64]) -> Summary {
    let m = mean(v);
    if v.len() < 2 {
        return Summary {
            mean: m,
            ci95: [m, m],
        };
    }
    let half = t975(v.len() - 1) * sample_sd(v) / (v.len() as f64).sqrt();
    Summary {
        mean: m,
        ci95: [m - half, m + half],
    }
}

/// A paired comparison of per-user values `b - a`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Paired {
    pub n: usize,
    pub mean_a: f64,
    pub mean_b: f64,
    /// Mean of `b - a` with its bootstrap 95 % interval.
    pub diff: f64,
    pub ci95: [f64; 2],
    /// Two-sided bootstrap p-value for "no difference".
    pub p_bootstrap: f64,
    /// Two-sided Wilcoxon signed-rank p-value (zero differences dropped).
    pub p_wilcoxon: f64,
}

pub fn paired(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> Paired {
    assert_eq!(a.len(), b.len(), "paired values");
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    let n = d.len();
    let diff = mean(&d);
    let mut rng = Rng::new(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| d[rng.below(n as u64) as usize]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let q = |p: f64| means[((p * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    // Bootstrap test: shift the resampled means to centre on 0 and count as extreme or more.
    let extreme = means
        .iter()
        .filter(|&&m| (m - diff).abs() >= diff.abs() - 1e-15)
        .count();
    Paired {
        n,
        mean_a: mean(a),
        mean_b: mean(b),
        diff,
        ci95: [q(0.025), q(0.975)],
        p_bootstrap: ((extreme + 1) as f64 / (resamples + 1) as f64).min(1.0),
        p_wilcoxon: wilcoxon(&d),
    }
}

/// Two-sided p-value of the Wilcoxon signed-rank test (normal approximation, average ranks for
/// ties with the variance corrected for them; zero differences dropped). 1 when nothing differs.
pub fn wilcoxon(d: &[f64]) -> f64 {
    let mut nz: Vec<f64> = d.iter().copied().filter(|x| *x != 0.0).collect();
    let n = nz.len();
    if n == 0 {
        return 1.0;
    }
    nz.sort_by(|x, y| x.abs().total_cmp(&y.abs()));
    let mut w_plus = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && nz[j + 1].abs() == nz[i].abs() {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        for x in &nz[i..=j] {
            if *x > 0.0 {
                w_plus += avg;
            }
        }
        i = j + 1;
    }
    let nf = n as f64;
    let mu = nf * (nf + 1.0) / 4.0;
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term / 48.0;
    if var <= 0.0 {
        return 1.0;
    }
    // Continuity correction.
    let z = ((w_plus - mu).abs() - 0.5).max(0.0) / var.sqrt();
    (2.0 * normal_sf(z)).min(1.0)
}

/// Upper tail of the standard normal, `P(Z > z)` (Abramowitz & Stegun 7.1.26 through erfc,
/// absolute error below 1.5e-7).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.3275911 * x.abs());
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let r = poly * (-x * x).exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_interval_by_hand() {
        // mean 2, sd 1, n 3: half-width 4.303 / sqrt(3).
        let s = summarize(&[1.0, 2.0, 3.0]);
        assert!((s.mean - 2.0).abs() < 1e-12);
        assert!((s.ci95[1] - (2.0 + 4.303 / 3f64.sqrt())).abs() < 1e-9);
        assert_eq!(summarize(&[0.5]).ci95, [0.5, 0.5]);
    }

    #[test]
    fn normal_tail() {
        assert!((normal_sf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_sf(1.959964) - 0.025).abs() < 1e-6);
        assert!((normal_sf(-1.0) - 0.841345).abs() < 1e-6);
    }

    #[test]
    fn wilcoxon_matches_a_hand_computation() {
        // d = 1..=10, all positive: W+ = 55, mu = 27.5, var = 96.25, z = (27.5 - 0.5) / 9.8107.
        let d: Vec<f64> = (1..=10).map(f64::from).collect();
        let z: f64 = 27.0 / 96.25f64.sqrt();
        assert!((wilcoxon(&d) - 2.0 * normal_sf(z)).abs() < 1e-12);
        // Symmetric differences: no evidence.
        assert!(wilcoxon(&[1.0, -1.0, 2.0, -2.0]) > 0.9);
        assert_eq!(wilcoxon(&[0.0, 0.0]), 1.0);
    }

    #[test]
    fn paired_tests_see_a_real_shift_and_not_noise() {
        let mut rng = Rng::new(3);
        let a: Vec<f64> = (0..300).map(|_| rng.f64()).collect();
        let shifted: Vec<f64> = a.iter().map(|x| x + 0.05 + 0.01 * rng.normal()).collect();
        let p = paired(&a, &shifted, 2000, 1);
        assert!(p.p_bootstrap < 0.01 && p.p_wilcoxon < 0.01, "{p:?}");
        assert!(p.ci95[0] > 0.03 && p.ci95[1] < 0.07, "{p:?}");
        let noise: Vec<f64> = a.iter().map(|x| x + 0.1 * rng.normal()).collect();
        let p = paired(&a, &noise, 2000, 1);
        assert!(
            p.p_bootstrap > 0.01 && p.ci95[0] < 0.0 && p.ci95[1] > 0.0,
            "{p:?}"
        );
    }
}
