//! Training objectives over the positions of a batch that have a target.
//!
//! * `ce`: full-softmax cross-entropy over every track (the default; Klenitskiy & Vasilev 2023
//!   found it beats BCE for SASRec).
//! * `sampled-softmax`: softmax over the target and N negatives shared by the batch, drawn from
//!   popularity^0.75 and corrected by `log(N q(item))` (logQ correction), accidental hits masked.
//! * `bce`: binary cross-entropy with N uniform negatives per position (the original SASRec).
//! * cloze training is `ce` over the masked positions (the batch decides which positions count).

use crate::model::SeqModel;
use crate::util::rng::{Alias, Rng};
use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Loss {
    Ce,
    SampledSoftmax { negatives: usize },
    Bce { negatives: usize },
}

impl std::str::FromStr for Loss {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, n) = match s.split_once(':') {
            Some((a, b)) => (
                a,
                Some(
                    b.parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("'{b}' is not a positive number of negatives"))?,
                ),
            ),
            None => (s, None),
        };
        match name {
            "ce" => Ok(Self::Ce),
            "sampled-softmax" => Ok(Self::SampledSoftmax {
                negatives: n.unwrap_or(256),
            }),
            "bce" => Ok(Self::Bce {
                negatives: n.unwrap_or(1),
            }),
            _ => Err(format!(
                "unknown loss '{s}' (ce, sampled-softmax[:N], bce[:N])"
            )),
        }
    }
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ce => f.write_str("ce"),
            Self::SampledSoftmax { negatives } => write!(f, "sampled-softmax:{negatives}"),
            Self::Bce { negatives } => write!(f, "bce:{negatives}"),
        }
    }
}

/// Popularity sampler for sampled softmax: `q(i) ∝ (count_i + 1)^0.75`.
pub struct NegativeSampler {
    alias: Alias,
    log_q: Vec<f32>,
}

impl NegativeSampler {
    pub fn new(counts: &[u32]) -> Self {
        let w: Vec<f64> = counts
            .iter()
            .map(|&c| (f64::from(c) + 1.0).powf(0.75))
            .collect();
        let total: f64 = w.iter().sum();
        Self {
            log_q: w.iter().map(|x| (x / total).ln() as f32).collect(),
            alias: Alias::new(&w),
        }
    }
}

/// Mean loss over the given target positions.
///
/// # Shapes
/// - hidden: `[batch, len, d]` (the model's output for the batch)
/// - positions: row-major indices into `batch * len` of the positions with a target
/// - targets: their track ids
/// - weights: one per target (engagement weighting), `None` for equal weights
/// - table: `[n_items, d]`, the output table of this step ([`SeqModel::item_table_from`])
/// - output: `[1]`
#[allow(clippy::too_many_arguments)]
pub fn loss(
    model: &SeqModel,
    kind: Loss,
    hidden: Tensor<3>,
    table: Tensor<2>,
    positions: &[i64],
    targets: &[u32],
    weights: Option<&[f32]>,
    sampler: Option<&NegativeSampler>,
    rng: &mut Rng,
) -> Tensor<1> {
    let device = hidden.device();
    let [b, l, d] = hidden.dims();
    let n = positions.len();
    let pos = Tensor::<1, Int>::from_data(TensorData::new(positions.to_vec(), [n]), &device);
    let h = model.project(hidden.reshape([b * l, d]).select(0, pos));
    let n_items = model.n_items();
    // Per-target losses `[n, 1]` into one number: a mean, or a weighted mean.
    let reduce = |per: Tensor<2>| -> Tensor<1> {
        match weights {
            None => per.mean(),
            Some(w) => {
                assert_eq!(w.len(), n, "one weight per target");
                let total: f32 = w.iter().sum::<f32>().max(1e-12);
                let w = Tensor::<2>::from_data(TensorData::new(w.to_vec(), [n, 1]), &device);
                (per * w).sum() / total
            }
        }
    };
    match kind {
        Loss::Ce => {
            let logp = log_softmax(model.score_all_with(h, table), 1);
            let t = int_tensor(
                targets.iter().map(|&t| i64::from(t)).collect(),
                [n, 1],
                &device,
            );
            reduce(-logp.gather(1, t))
        }
        Loss::SampledSoftmax { negatives: k } => {
            let sampler = sampler.expect("sampled softmax needs a sampler");
            let negs: Vec<u32> = (0..k).map(|_| sampler.alias.sample(rng) as u32).collect();
            let mut cands = Vec::with_capacity(n * (k + 1));
            let mut hit = Vec::with_capacity(n * (k + 1));
            let mut corr = Vec::with_capacity(n * (k + 1));
            let ln_k = (k as f32).ln();
            for &t in targets {
                cands.push(i64::from(t));
                hit.push(false);
                corr.push(sampler.log_q[t as usize] + ln_k);
                for &g in &negs {
                    cands.push(i64::from(g));
                    hit.push(g == t);
                    corr.push(sampler.log_q[g as usize] + ln_k);
                }
            }
            let c = int_tensor(cands, [n, k + 1], &device);
            let logits = model.score_candidates_with(h, c, table)
                - Tensor::<2>::from_data(TensorData::new(corr, [n, k + 1]), &device);
            let hit = Tensor::<2, Bool>::from_data(TensorData::new(hit, [n, k + 1]), &device);
            let logp = log_softmax(logits.mask_fill(hit, -1e9), 1);
            reduce(-logp.narrow(1, 0, 1))
        }
        Loss::Bce { negatives: k } => {
            let mut cands = Vec::with_capacity(n * (k + 1));
            for &t in targets {
                cands.push(i64::from(t));
                for _ in 0..k {
                    let g = loop {
                        let g = rng.below(n_items as u64) as u32;
                        if g != t || n_items == 1 {
                            break g;
                        }
                    };
                    cands.push(i64::from(g));
                }
            }
            let s = model.score_candidates_with(h, int_tensor(cands, [n, k + 1], &device), table);
            let pos = -log_sigmoid(s.clone().narrow(1, 0, 1));
            let neg = -log_sigmoid(-s.narrow(1, 1, k)).mean_dim(1);
            reduce(pos + neg)
        }
    }
}

fn int_tensor(v: Vec<i64>, shape: [usize; 2], device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_names_parse() {
        assert_eq!("ce".parse::<Loss>(), Ok(Loss::Ce));
        assert_eq!(
            "sampled-softmax:64".parse::<Loss>(),
            Ok(Loss::SampledSoftmax { negatives: 64 })
        );
        assert_eq!("bce".parse::<Loss>(), Ok(Loss::Bce { negatives: 1 }));
        assert!("bce:0".parse::<Loss>().is_err());
        assert!("hinge".parse::<Loss>().is_err());
        for l in ["ce", "sampled-softmax:8", "bce:3"] {
            assert_eq!(l.parse::<Loss>().unwrap().to_string(), l);
        }
    }

    #[test]
    fn engagement_weights_scale_each_target() {
        use burn::module::Module;
        let d = Device::flex();
        let m = crate::model::ModelConfig::defaults("sasrec", 12)
            .unwrap()
            .init(&d)
            .valid();
        let hidden = Tensor::<3>::random([1, 3, 64], burn::tensor::Distribution::Default, &d);
        let one = |pos: &[i64], tg: &[u32], w: Option<&[f32]>| -> f32 {
            let mut rng = Rng::new(0);
            loss(
                &m,
                Loss::Ce,
                hidden.clone(),
                m.item_table(),
                pos,
                tg,
                w,
                None,
                &mut rng,
            )
            .into_scalar()
        };
        let first = one(&[0], &[4], None);
        let second = one(&[2], &[7], None);
        let both = one(&[0, 2], &[4, 7], None);
        assert!((both - (first + second) / 2.0).abs() < 1e-5);
        // Weight 0 drops a target; weights 3:1 weigh the mean.
        assert!((one(&[0, 2], &[4, 7], Some(&[1.0, 0.0])) - first).abs() < 1e-5);
        let w = one(&[0, 2], &[4, 7], Some(&[3.0, 1.0]));
        assert!((w - (3.0 * first + second) / 4.0).abs() < 1e-5);
        assert_eq!(crate::train::engagement_weight(0.2, f32::NAN), 1.0);
        assert!((crate::train::engagement_weight(0.2, 0.5) - 0.6).abs() < 1e-6);
    }
}
