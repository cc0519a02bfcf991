//! Every training knob (recorded in `results.json`), the learning-rate schedule, one epoch's
//! record, and the training layer's error.

use super::loss::Loss;
use serde::{Deserialize, Serialize};

/// Learning-rate decay after warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decay {
    None,
    Linear,
    Cosine,
}

impl std::str::FromStr for Decay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Self::None),
            "linear" => Ok(Self::Linear),
            "cosine" => Ok(Self::Cosine),
            _ => Err(format!("unknown decay '{s}' (none, linear, cosine)")),
        }
    }
}

/// Every training knob; recorded in `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f32,
    /// Linear warm-up from 0 over this many optimiser steps.
    pub warmup_steps: usize,
    /// Decay from the peak to 1 % of it at `epochs` (early stopping usually ends sooner).
    pub decay: Decay,
    /// Largest gradient L2 norm per parameter tensor; `None` disables clipping.
    pub grad_clip: Option<f32>,
    pub loss: Loss,
    /// Stop after this many validations without improvement.
    pub patience: usize,
    /// Validate every this many epochs.
    pub eval_every: usize,
    /// Metric that selects the best epoch (on the validation cases).
    pub valid_metric: String,
    /// Engagement-weighted loss: each target play counts `floor + (1 - floor) * completion`
    /// (1 where its completion is unknown); `None` weighs every target alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement_floor: Option<f32>,
    /// Next-item training windows move by this many plays and predict only their last
    /// `stride` (see [`batch::windows`]); `None` tiles each sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_stride: Option<usize>,
    /// Train on each user's most recent `n` windows only (1: the last `max_len` plays, S3-Rec's
    /// recipe; see [`batch::most_recent`]); `None` trains on every play.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_windows: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 200,
            batch_size: 128,
            lr: 1e-3,
            weight_decay: 0.0,
            warmup_steps: 100,
            decay: Decay::Linear,
            grad_clip: Some(5.0),
            loss: Loss::Ce,
            patience: 20,
            eval_every: 1,
            valid_metric: "NDCG@10".into(),
            engagement_floor: None,
            window_stride: None,
            recent_windows: None,
        }
    }
}

impl TrainConfig {
    /// Learning rate at optimiser step `step` of `total`.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
        let done = ((step - self.warmup_steps) as f64 / span).min(1.0);
        match self.decay {
            Decay::None => self.lr,
            Decay::Linear => self.lr * (1.0 - done).max(0.01),
            Decay::Cosine => {
                self.lr * (0.5 * (1.0 + (std::f64::consts::PI * done).cos())).max(0.01)
            }
        }
    }
}

/// One epoch's record (the training curve).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub loss: f64,
    pub lr: f64,
    /// The validation metric, when validated this epoch.
    pub valid: Option<f64>,
    pub seconds: f64,
    /// Training windows (sequences) per second.
    pub seq_per_s: f64,
    /// Target positions (interactions predicted) per second.
    #[serde(default)]
    pub targets_per_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay() {
        let t = TrainConfig {
            warmup_steps: 10,
            lr: 1.0,
            ..Default::default()
        };
        assert!((t.lr_at(0, 110) - 0.1).abs() < 1e-12);
        assert!((t.lr_at(9, 110) - 1.0).abs() < 1e-12);
        assert!((t.lr_at(60, 110) - 0.5).abs() < 1e-12);
        assert!(t.lr_at(109, 110) <= 0.02);
        let c = TrainConfig {
            decay: Decay::Cosine,
            ..t.clone()
        };
        assert!((c.lr_at(60, 110) - 0.5).abs() < 1e-12);
        let n = TrainConfig {
            decay: Decay::None,
            ..t
        };
        assert_eq!(n.lr_at(100, 110), 1.0);
    }
}
