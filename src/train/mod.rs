//! Training a sequential model for one seed: AdamW with warm-up and decay, gradient clipping,
//! dropout, early stopping on a validation metric, and a checkpoint after every epoch that a
//! killed run resumes from with the same final result.
//!
//! Determinism: the device is re-seeded at the start of every epoch from `(seed, epoch)`, and
//! shuffling and negative sampling use streams of the project's own generator keyed the same
//! way, so an epoch depends only on the weights and optimiser state it starts from, which the
//! checkpoint holds exactly.

pub mod ablate;
pub mod batch;
pub mod checkpoint;
pub mod content;
pub mod e4srec;
pub mod loss;
pub mod run;
pub mod zeroshot;

use crate::data::Dataset;
use crate::data::rng::Rng;
use crate::eval::model::ModelScorer;
use crate::eval::protocol::Prepared;
use crate::eval::{Ranks, evaluate};
use crate::model::{ModelConfig, SeqModel};
use batch::{Window, cloze_batch, next_item_batch, windows};
use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::Device;
use loss::{Loss, NegativeSampler};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

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

/// Everything one seed's training needs.
pub struct TrainJob<'a> {
    pub data: &'a Dataset,
    pub prepared: &'a Prepared,
    pub model: ModelConfig,
    /// Content for the model's fusion, one table per configured modality (empty for id-only).
    pub content: &'a [crate::model::fusion::ContentTable],
    pub train: TrainConfig,
    pub seed: u64,
    /// The inference device; training runs on its autodiff twin.
    pub device: Device,
    /// Where checkpoints go (created).
    pub dir: PathBuf,
    pub progress: bool,
    /// Stop (as if killed) after this many epochs in this call; for resume tests.
    pub stop_after: Option<usize>,
}

/// What training produced.
pub struct Trained {
    /// The best model (by the validation metric), in inference mode on the job's device.
    pub model: SeqModel,
    pub curve: Vec<EpochLog>,
    pub best_epoch: usize,
    pub best_valid: f64,
    /// Whether training ran to its end (early stop or last epoch); false after `stop_after`.
    pub finished: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Checkpoint(String),
    #[error("{0}")]
    Config(String),
}

fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    let mut r = Rng::stream(seed, 0xe90c_0000 + epoch as u64);
    r.next_u64()
}

/// The plays each user trains on.
pub fn training_sequences<'a>(d: &'a Dataset, fit_end: &[u32]) -> Vec<&'a [u32]> {
    (0..d.n_users() as u32)
        .map(|u| &d.track[d.user_range(u).start..fit_end[u as usize] as usize])
        .collect()
}

/// The completion ratios of [`training_sequences`]'s plays (NaN where unknown).
pub fn training_completions<'a>(d: &'a Dataset, fit_end: &[u32]) -> Vec<&'a [f32]> {
    (0..d.n_users() as u32)
        .map(|u| &d.completion[d.user_range(u).start..fit_end[u as usize] as usize])
        .collect()
}

/// Engagement weight of a target play (see [`TrainConfig::engagement_floor`]).
pub fn engagement_weight(floor: f32, completion: f32) -> f32 {
    if completion.is_nan() {
        1.0
    } else {
        floor + (1.0 - floor) * completion.clamp(0.0, 1.0)
    }
}

/// Ranks of `cases` under `model` (inference mode).
pub fn rank_cases(
    model: &SeqModel,
    cfg: &ModelConfig,
    d: &Dataset,
    cases: &[crate::data::split::Case],
    candidates: Option<&[Vec<u32>]>,
    mask_heard: bool,
    device: &Device,
) -> Ranks {
    let scorer = ModelScorer::new(model, cfg.max_len(), device.clone());
    evaluate(&scorer, d, cases, candidates, mask_heard)
}

/// Trains one seed, resuming from `job.dir`'s checkpoint when there is one.
pub fn train(job: &TrainJob) -> Result<Trained, TrainError> {
    let t = &job.train;
    if t.batch_size == 0 || t.epochs == 0 || t.eval_every == 0 {
        return Err(TrainError::Config(
            "epochs, batch size and eval-every must be positive".into(),
        ));
    }
    if Ranks::default().values(&t.valid_metric).is_none() {
        return Err(TrainError::Config(format!(
            "unknown validation metric '{}' (e.g. NDCG@10, HR@10, MRR)",
            t.valid_metric
        )));
    }
    std::fs::create_dir_all(&job.dir)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", job.dir.display())))?;
    let d = job.data;
    let seqs = training_sequences(d, &job.prepared.fit_end);
    let ratios = training_completions(d, &job.prepared.fit_end);
    let reads_completion = job.model.completion().is_some();
    let cloze = job.model.is_cloze();
    let max_len = job.model.max_len();
    let mut all_windows = windows(&seqs, max_len, cloze, t.window_stride);
    if let Some(n) = t.recent_windows {
        all_windows = batch::most_recent(all_windows, n);
    }
    if all_windows.is_empty() {
        return Err(TrainError::Config("no training sequences".into()));
    }
    let steps_per_epoch = all_windows.len().div_ceil(t.batch_size);
    let total_steps = steps_per_epoch * t.epochs;
    let mut counts = vec![0u32; d.n_tracks()];
    for s in &seqs {
        for &x in *s {
            counts[x as usize] += 1;
        }
    }
    let sampler =
        matches!(t.loss, Loss::SampledSoftmax { .. }).then(|| NegativeSampler::new(&counts));
    let mask_prob = match &job.model {
        ModelConfig::Bert4rec(c) => c.mask_prob,
        _ => 0.0,
    };

    let ad = job.device.clone().autodiff();
    job.device.seed(job.seed);
    let fresh = job
        .model
        .init(&ad)
        .set_content(job.content)
        .map_err(TrainError::Config)?;
    let mut optim = AdamWConfig::new()
        .with_weight_decay(t.weight_decay)
        .with_grad_clipping(t.grad_clip.map(GradientClippingConfig::Norm))
        .init();
    let fingerprint = checkpoint::fingerprint(&job.model, t, job.seed, d, job.content);
    let (mut model, mut state, mut best) =
        match checkpoint::load(&job.dir, &fingerprint, fresh.clone(), &job.device)? {
            Some((m, o, s, b)) => {
                optim = optim
                    .load(&o)
                    .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", o.display())))?;
                (m, s, Some(b))
            }
            None => (fresh, checkpoint::State::new(fingerprint.clone()), None),
        };
    let valid_cands = job.prepared.valid_candidates.as_deref();
    let valid_cases = &job.prepared.split.valid;
    let mut ran = 0;
    let bar = progress_bar(job.progress, steps_per_epoch as u64);
    while !state.finished && state.epoch < t.epochs {
        if job.stop_after.is_some_and(|n| ran >= n) {
            break;
        }
        let epoch = state.epoch + 1;
        job.device.seed(epoch_seed(job.seed, epoch));
        // Batches of windows of similar length (padded only to their longest), in random order.
        let mut shuffle = Rng::stream(job.seed, 0x5b0f_0000 + epoch as u64);
        let mut order: Vec<Window> = all_windows.clone();
        shuffle.shuffle(&mut order);
        order.sort_by_key(|w| w.end - w.start);
        let mut batches: Vec<&[Window]> = order.chunks(t.batch_size).collect();
        shuffle.shuffle(&mut batches);
        let mut rng = Rng::stream(job.seed, 0x4e60_0000 + epoch as u64);
        let t0 = Instant::now();
        let (mut loss_sum, mut loss_n, mut n_targets) = (0.0f64, 0usize, 0usize);
        let mut lr = t.lr;
        if let Some(b) = &bar {
            b.reset();
            b.set_prefix(format!("epoch {epoch}/{}", t.epochs));
        }
        for chunk in batches {
            let longest = chunk
                .iter()
                .map(|w| (w.end - w.start) as usize)
                .max()
                .unwrap_or(1);
            let b = if cloze {
                let mask_id = job.model.n_items() as i64 + 1;
                cloze_batch(&seqs, &ratios, chunk, longest, mask_prob, mask_id, &mut rng)
            } else {
                next_item_batch(&seqs, &ratios, chunk, longest - 1)
            };
            let (positions, targets) = b.target_positions();
            if positions.is_empty() {
                continue;
            }
            n_targets += positions.len();
            // Content is fused once per step, for the input and the output alike.
            let rows = model.rows();
            let completion = reads_completion.then_some(&b.completion[..]);
            let hidden = model.forward_rows(b.ids_tensor(&ad), rows.as_ref(), completion);
            let weights = t.engagement_floor.map(|f| {
                b.target_ratios()
                    .into_iter()
                    .map(|c| engagement_weight(f, c))
                    .collect::<Vec<f32>>()
            });
            let table = model.item_table_from(rows.as_ref());
            let l = loss::loss(
                &model,
                t.loss,
                hidden,
                table,
                &positions,
                &targets,
                weights.as_deref(),
                sampler.as_ref(),
                &mut rng,
            );
            lr = t.lr_at(state.step, total_steps);
            let grads = GradientsParams::from_grads(l.backward(), &model);
            let lv = l.into_scalar::<f32>() as f64;
            model = optim.step(lr, model, grads);
            state.step += 1;
            loss_sum += lv;
            loss_n += 1;
            if let Some(bar) = &bar {
                bar.inc(1);
                bar.set_message(format!(
                    "loss {:.4}  {:.0} seq/s",
                    loss_sum / loss_n as f64,
                    (bar.position() as usize * t.batch_size) as f64 / t0.elapsed().as_secs_f64()
                ));
            }
        }
        let seconds = t0.elapsed().as_secs_f64();
        let mut log = EpochLog {
            epoch,
            loss: loss_sum / loss_n.max(1) as f64,
            lr,
            valid: None,
            seconds,
            seq_per_s: all_windows.len() as f64 / seconds.max(1e-9),
            targets_per_s: n_targets as f64 / seconds.max(1e-9),
        };
        if epoch % t.eval_every == 0 || epoch == t.epochs {
            let m = model.valid();
            let r = rank_cases(
                &m,
                &job.model,
                d,
                valid_cases,
                valid_cands,
                false,
                &job.device,
            );
            let v = r.mean(&t.valid_metric).unwrap_or(f64::NAN);
            log.valid = Some(v);
            if best.is_none() || v > state.best_valid {
                state.best_valid = v;
                state.best_epoch = epoch;
                state.bad = 0;
                best = Some(m);
            } else {
                state.bad += 1;
            }
        }
        if job.progress {
            eprintln!(
                "seed {} epoch {epoch:>3}: loss {:.4}, {} {}, {:.1} s ({:.0} seq/s, {:.0} targets/s)",
                job.seed,
                log.loss,
                t.valid_metric,
                log.valid.map_or("-".into(), |v| format!("{v:.4}")),
                log.seconds,
                log.seq_per_s,
                log.targets_per_s
            );
        }
        state.curve.push(log);
        state.epoch = epoch;
        if state.bad >= t.patience || epoch == t.epochs {
            state.finished = true;
        }
        checkpoint::save(
            &job.dir,
            &state,
            &model,
            &optim,
            best.as_ref().expect("validated"),
        )?;
        ran += 1;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let best = match best {
        Some(b) => b,
        None => model.valid(),
    };
    Ok(Trained {
        model: best,
        curve: state.curve,
        best_epoch: state.best_epoch,
        best_valid: state.best_valid,
        finished: state.finished,
    })
}

pub(crate) fn progress_bar(show: bool, steps: u64) -> Option<indicatif::ProgressBar> {
    if !show {
        return None;
    }
    let b = indicatif::ProgressBar::new(steps);
    b.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    Some(b)
}

/// Loads a saved model (burnpack) for `cfg` onto `device`.
pub fn load_model(cfg: &ModelConfig, path: &Path, device: &Device) -> Result<SeqModel, TrainError> {
    cfg.init(device)
        .try_load_file(path)
        .map(|m| m.valid())
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.display())))
}

/// An LLM's GGUF file as the LLM runs (E4SRec, zero-shot) read it: parsed, with its tokenizer,
/// chat template and name, and its sha256.
pub struct LlmFile {
    pub gguf: crate::llm::gguf::Gguf,
    pub sha256: String,
    pub tok: crate::llm::tokenizer::BpeTokenizer,
    pub template: crate::llm::generate::ChatTemplate,
    pub name: String,
}

/// Reads `path`; `recorded` is the sha256 a run recorded when it started (empty: none yet), and
/// a file that changed since is refused.
pub fn read_llm(path: &Path, recorded: &str) -> Result<LlmFile, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let sha256 = crate::data::sha256_hex(&bytes);
    if !recorded.is_empty() && recorded != sha256 {
        return Err(format!(
            "{} changed since the run started (sha256 {sha256}, then {recorded})",
            path.display()
        ));
    }
    let at = |e: String| format!("{}: {e}", path.display());
    let gguf = crate::llm::gguf::Gguf::parse(bytes).map_err(|e| at(e.to_string()))?;
    let info = crate::llm::ChatInfo::from_gguf(&gguf).map_err(at)?;
    let template = info.template().map_err(at)?;
    Ok(LlmFile {
        gguf,
        sha256,
        tok: info.tok,
        template,
        name: info.name,
    })
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
