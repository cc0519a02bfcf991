//! Completion ratio as an input: how much of each play in the history was heard (a skip near
//! 0, a full listen 1) joins that position's item embedding, either as a learned embedding of
//! its bucket or as a scalar times a learned vector. Unknown ratios (logs without durations,
//! padding, BERT4Rec's masked positions) have their own bucket or add nothing, so a model
//! trained with completion still runs on histories without it.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// How completion enters the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CompletionInput {
    /// A learned embedding per bucket of width `1 / n` (bucket 0: unknown).
    Buckets { n: usize },
    /// `(2 ratio - 1) * w`, one learned vector: a skip and a full listen pull opposite ways,
    /// an unknown ratio adds nothing.
    Scalar,
}

impl std::str::FromStr for CompletionInput {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            None if s == "scalar" => Ok(Self::Scalar),
            None if s == "buckets" => Ok(Self::Buckets { n: 10 }),
            Some(("buckets", n)) => n
                .parse::<usize>()
                .ok()
                .filter(|&n| n >= 2)
                .map(|n| Self::Buckets { n })
                .ok_or_else(|| format!("'{n}' is not a number of buckets >= 2")),
            _ => Err(format!(
                "unknown completion input '{s}' (buckets[:N], scalar)"
            )),
        }
    }
}

impl std::fmt::Display for CompletionInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Buckets { n } => write!(f, "buckets:{n}"),
            Self::Scalar => f.write_str("scalar"),
        }
    }
}

impl CompletionInput {
    pub fn init(&self, d: usize, device: &Device) -> CompletionEmb {
        match *self {
            Self::Buckets { n } => CompletionEmb::Buckets(
                EmbeddingConfig::new(n + 1, d)
                    .with_initializer(super::transformer::emb_init())
                    .init(device),
            ),
            Self::Scalar => CompletionEmb::Scalar(
                LinearConfig::new(1, d)
                    .with_bias(false)
                    .with_initializer(super::transformer::emb_init())
                    .init(device),
            ),
        }
    }
}

/// Bucket of a ratio among `n` (NaN: 0, unknown; else 1..=n).
pub fn bucket(ratio: f32, n: usize) -> i64 {
    if ratio.is_nan() {
        return 0;
    }
    let b = (ratio.clamp(0.0, 1.0) * n as f32).floor() as usize;
    1 + b.min(n - 1) as i64
}

#[derive(Module, Debug)]
pub enum CompletionEmb {
    Buckets(Embedding),
    /// Input: the centred ratio (0 where unknown).
    Scalar(Linear),
}

impl CompletionEmb {
    /// What each position adds to its item embedding.
    ///
    /// # Shapes
    /// - ratios: `batch * len` row-major, NaN where unknown
    /// - output: `[batch, len, d]`
    pub fn forward(&self, ratios: &[f32], batch: usize, len: usize, device: &Device) -> Tensor<3> {
        assert_eq!(ratios.len(), batch * len, "one ratio per position");
        match self {
            Self::Buckets(e) => {
                let n = e.weight.dims()[0] - 1;
                let ids: Vec<i64> = ratios.iter().map(|&r| bucket(r, n)).collect();
                e.forward(Tensor::<2, Int>::from_data(
                    TensorData::new(ids, [batch, len]),
                    device,
                ))
            }
            Self::Scalar(w) => {
                let x: Vec<f32> = ratios
                    .iter()
                    .map(|&r| {
                        if r.is_nan() {
                            0.0
                        } else {
                            2.0 * r.clamp(0.0, 1.0) - 1.0
                        }
                    })
                    .collect();
                w.forward(Tensor::<3>::from_data(
                    TensorData::new(x, [batch, len, 1]),
                    device,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_the_unit_interval() {
        assert_eq!(bucket(f32::NAN, 10), 0);
        assert_eq!(bucket(0.0, 10), 1);
        assert_eq!(bucket(0.099, 10), 1);
        assert_eq!(bucket(0.1, 10), 2);
        assert_eq!(bucket(1.0, 10), 10);
        assert_eq!(bucket(1.7, 10), 10);
        assert_eq!(bucket(-0.5, 4), 1);
        assert_eq!("buckets:4".parse(), Ok(CompletionInput::Buckets { n: 4 }));
        assert_eq!("scalar".parse(), Ok(CompletionInput::Scalar));
        assert!("buckets:1".parse::<CompletionInput>().is_err());
        assert!("ratio".parse::<CompletionInput>().is_err());
    }

    #[test]
    fn unknown_ratios_add_the_unknown_row_and_known_ones_differ() {
        let dev = Device::flex();
        for c in [CompletionInput::Buckets { n: 4 }, CompletionInput::Scalar] {
            let m = c.init(3, &dev);
            let out: Vec<f32> = m
                .forward(&[f32::NAN, 0.1, 0.9, f32::NAN], 2, 2, &dev)
                .into_data()
                .try_to_vec()
                .unwrap();
            assert_eq!(out[0..3], out[9..12], "{c}: unknown twice, same vector");
            assert_ne!(out[3..6], out[6..9], "{c}: a skip and a full listen differ");
            if c == CompletionInput::Scalar {
                assert!(out[0..3].iter().all(|&x| x == 0.0), "unknown adds nothing");
            }
        }
    }
}
