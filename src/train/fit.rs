//! Fitting a sequential model for one seed: AdamW with warm-up and decay, gradient clipping,
//! dropout, early stopping on a validation metric, and a checkpoint after every epoch that a
//! killed run resumes from with the same final result.
//!
//! Determinism: the device is re-seeded at the start of every epoch from `(seed, epoch)`, and
//! shuffling and negative sampling use streams of the project's own generator keyed the same
//! way, so an epoch depends only on the weights and optimiser state it starts from, which the
//! checkpoint holds exactly.

use super::batch::{self, Window, cloze_batch, next_item_batch, windows};
use super::checkpoint;
use super::config::{EpochLog, TrainConfig};
use super::error::TrainError;
use super::loss::{self, Loss, NegativeSampler};
use crate::data::Dataset;
use crate::eval::model::ModelScorer;
use crate::eval::protocol::Prepared;
use crate::eval::{Ranks, evaluate};
use crate::model::{ModelConfig, SeqModel};
use crate::util::rng::Rng;
use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::Device;
use std::path::{Path, PathBuf};
use std::time::Instant;

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

/// What every epoch of one seed shares: the training plays, their windows and the sampler.
struct Plan<'a> {
    seqs: Vec<&'a [u32]>,
    ratios: Vec<&'a [f32]>,
    windows: Vec<Window>,
    steps_per_epoch: usize,
    total_steps: usize,
    sampler: Option<NegativeSampler>,
    mask_prob: f64,
    cloze: bool,
    reads_completion: bool,
    /// The autodiff twin of the job's device, where training runs.
    ad: Device,
}

/// One epoch's training figures.
struct EpochRun {
    loss_sum: f64,
    loss_n: usize,
    targets: usize,
    lr: f64,
    seconds: f64,
}

fn check_config(t: &TrainConfig) -> Result<(), TrainError> {
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
    Ok(())
}

impl<'a> Plan<'a> {
    fn new(job: &'a TrainJob) -> Result<Self, TrainError> {
        let (t, d) = (&job.train, job.data);
        let seqs = training_sequences(d, &job.prepared.fit_end);
        let ratios = training_completions(d, &job.prepared.fit_end);
        let cloze = job.model.is_cloze();
        let mut all = windows(&seqs, job.model.max_len(), cloze, t.window_stride);
        if let Some(n) = t.recent_windows {
            all = batch::most_recent(all, n);
        }
        if all.is_empty() {
            return Err(TrainError::Config("no training sequences".into()));
        }
        let steps_per_epoch = all.len().div_ceil(t.batch_size);
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
        Ok(Self {
            seqs,
            ratios,
            windows: all,
            steps_per_epoch,
            total_steps: steps_per_epoch * t.epochs,
            sampler,
            mask_prob,
            cloze,
            reads_completion: job.model.completion().is_some(),
            ad: job.device.clone().autodiff(),
        })
    }

    /// Batches of windows of similar length (padded only to their longest), in random order.
    fn batches(&self, shuffle: &mut Rng, batch_size: usize) -> Vec<Vec<Window>> {
        let mut order: Vec<Window> = self.windows.clone();
        shuffle.shuffle(&mut order);
        order.sort_by_key(|w| w.end - w.start);
        let mut batches: Vec<Vec<Window>> = order.chunks(batch_size).map(<[_]>::to_vec).collect();
        shuffle.shuffle(&mut batches);
        batches
    }
}

/// The model, optimiser, checkpoint state and best model a seed starts from: a fresh model, or
/// the checkpoint in `job.dir` when it was made by the same settings.
fn start(
    job: &TrainJob,
    ad: &Device,
) -> Result<
    (
        SeqModel,
        burn::optim::ModuleOptimizer,
        checkpoint::State,
        Option<SeqModel>,
    ),
    TrainError,
> {
    let t = &job.train;
    let fresh = job.model.init(ad).set_content(job.content)?;
    let optim = AdamWConfig::new()
        .with_weight_decay(t.weight_decay)
        .with_grad_clipping(t.grad_clip.map(GradientClippingConfig::Norm))
        .init();
    let fingerprint = checkpoint::fingerprint(&job.model, t, job.seed, job.data, job.content);
    Ok(
        match checkpoint::load(&job.dir, &fingerprint, fresh.clone(), &job.device)? {
            Some((m, o, s, b)) => {
                let optim = optim.load(&o).map_err(|e| TrainError::checkpoint(&o, e))?;
                (m, optim, s, Some(b))
            }
            None => (fresh, optim, checkpoint::State::new(fingerprint), None),
        },
    )
}

/// One optimiser step on one batch of windows; `None` when the batch has no target.
fn step(
    job: &TrainJob,
    plan: &Plan,
    model: SeqModel,
    optim: &mut burn::optim::ModuleOptimizer,
    state: &mut checkpoint::State,
    chunk: &[Window],
    rng: &mut Rng,
) -> (SeqModel, Option<(f64, usize, f64)>) {
    let t = &job.train;
    let longest = chunk
        .iter()
        .map(|w| (w.end - w.start) as usize)
        .max()
        .unwrap_or(1);
    let b = if plan.cloze {
        let mask_id = job.model.n_items() as i64 + 1;
        let p = plan.mask_prob;
        cloze_batch(&plan.seqs, &plan.ratios, chunk, longest, p, mask_id, rng)
    } else {
        next_item_batch(&plan.seqs, &plan.ratios, chunk, longest - 1)
    };
    let (positions, targets) = b.target_positions();
    if positions.is_empty() {
        return (model, None);
    }
    // Content is fused once per step, for the input and the output alike.
    let rows = model.rows();
    let completion = plan.reads_completion.then_some(&b.completion[..]);
    let hidden = model.forward_rows(b.ids_tensor(&plan.ad), rows.as_ref(), completion);
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
        plan.sampler.as_ref(),
        rng,
    );
    let lr = t.lr_at(state.step, plan.total_steps);
    let grads = GradientsParams::from_grads(l.backward(), &model);
    let lv = l.into_scalar::<f32>() as f64;
    let model = optim.step(lr, model, grads);
    state.step += 1;
    (model, Some((lv, positions.len(), lr)))
}

/// Trains one epoch over every window.
fn run_epoch(
    job: &TrainJob,
    plan: &Plan,
    mut model: SeqModel,
    optim: &mut burn::optim::ModuleOptimizer,
    state: &mut checkpoint::State,
    epoch: usize,
    bar: Option<&indicatif::ProgressBar>,
) -> (SeqModel, EpochRun) {
    let t = &job.train;
    job.device.seed(epoch_seed(job.seed, epoch));
    let mut shuffle = Rng::stream(job.seed, 0x5b0f_0000 + epoch as u64);
    let batches = plan.batches(&mut shuffle, t.batch_size);
    let mut rng = Rng::stream(job.seed, 0x4e60_0000 + epoch as u64);
    let t0 = Instant::now();
    let mut run = EpochRun {
        loss_sum: 0.0,
        loss_n: 0,
        targets: 0,
        lr: t.lr,
        seconds: 0.0,
    };
    if let Some(b) = bar {
        b.reset();
        b.set_prefix(format!("epoch {epoch}/{}", t.epochs));
    }
    for chunk in &batches {
        let (m, done) = step(job, plan, model, optim, state, chunk, &mut rng);
        model = m;
        let Some((lv, n, lr)) = done else { continue };
        run.targets += n;
        run.lr = lr;
        run.loss_sum += lv;
        run.loss_n += 1;
        if let Some(bar) = bar {
            bar.inc(1);
            bar.set_message(format!(
                "loss {:.4}  {:.0} seq/s",
                run.loss_sum / run.loss_n as f64,
                (bar.position() as usize * t.batch_size) as f64 / t0.elapsed().as_secs_f64()
            ));
        }
    }
    run.seconds = t0.elapsed().as_secs_f64();
    (model, run)
}

/// Scores the validation cases when `epoch` is due and keeps the best model so far.
fn validate(
    job: &TrainJob,
    model: &SeqModel,
    epoch: usize,
    state: &mut checkpoint::State,
    best: &mut Option<SeqModel>,
) -> Option<f64> {
    let t = &job.train;
    if !epoch.is_multiple_of(t.eval_every) && epoch != t.epochs {
        return None;
    }
    let m = model.valid();
    let p = job.prepared;
    let valid_cands = p.valid_candidates.as_deref();
    let r = rank_cases(
        &m,
        &job.model,
        job.data,
        &p.split.valid,
        valid_cands,
        false,
        &job.device,
    );
    let v = r.mean(&t.valid_metric).unwrap_or(f64::NAN);
    if best.is_none() || v > state.best_valid {
        state.best_valid = v;
        state.best_epoch = epoch;
        state.bad = 0;
        *best = Some(m);
    } else {
        state.bad += 1;
    }
    Some(v)
}

fn report_epoch(job: &TrainJob, log: &EpochLog) {
    eprintln!(
        "seed {} epoch {:>3}: loss {:.4}, {} {}, {:.1} s ({:.0} seq/s, {:.0} targets/s)",
        job.seed,
        log.epoch,
        log.loss,
        job.train.valid_metric,
        log.valid.map_or("-".into(), |v| format!("{v:.4}")),
        log.seconds,
        log.seq_per_s,
        log.targets_per_s
    );
}

/// Trains one seed, resuming from `job.dir`'s checkpoint when there is one.
pub fn train(job: &TrainJob) -> Result<Trained, TrainError> {
    let t = &job.train;
    check_config(t)?;
    std::fs::create_dir_all(&job.dir).map_err(|e| TrainError::checkpoint(&job.dir, e))?;
    let plan = Plan::new(job)?;
    job.device.seed(job.seed);
    let (mut model, mut optim, mut state, mut best) = start(job, &plan.ad)?;
    let mut ran = 0;
    let bar = crate::util::progress::progress_bar(job.progress, plan.steps_per_epoch as u64);
    while !state.finished && state.epoch < t.epochs {
        if job.stop_after.is_some_and(|n| ran >= n) {
            break;
        }
        let epoch = state.epoch + 1;
        let (m, run) = run_epoch(
            job,
            &plan,
            model,
            &mut optim,
            &mut state,
            epoch,
            bar.as_ref(),
        );
        model = m;
        let log = EpochLog {
            epoch,
            loss: run.loss_sum / run.loss_n.max(1) as f64,
            lr: run.lr,
            valid: validate(job, &model, epoch, &mut state, &mut best),
            seconds: run.seconds,
            seq_per_s: plan.windows.len() as f64 / run.seconds.max(1e-9),
            targets_per_s: run.targets as f64 / run.seconds.max(1e-9),
        };
        if job.progress {
            report_epoch(job, &log);
        }
        state.curve.push(log);
        state.epoch = epoch;
        if state.bad >= t.patience || epoch == t.epochs {
            state.finished = true;
        }
        let kept = best.as_ref().expect("validated");
        checkpoint::save(&job.dir, &state, &model, &optim, kept)?;
        ran += 1;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(Trained {
        model: best.unwrap_or_else(|| model.valid()),
        curve: state.curve,
        best_epoch: state.best_epoch,
        best_valid: state.best_valid,
        finished: state.finished,
    })
}

/// Loads a saved model (burnpack) for `cfg` onto `device`.
pub fn load_model(cfg: &ModelConfig, path: &Path, device: &Device) -> Result<SeqModel, TrainError> {
    cfg.init(device)
        .try_load_file(path)
        .map(|m| m.valid())
        .map_err(|e| TrainError::checkpoint(path, e))
}
