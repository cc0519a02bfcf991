//! Small datasets and quick training jobs for the tests that train models.
#![allow(dead_code)] // each test binary uses its own part

use burn::tensor::Device;
use encore::data::{Dataset, EventLog, Preset, RawEvent, preprocess};
use encore::eval::protocol::Prepared;
use encore::model::ModelConfig;
use encore::train::{TrainConfig, TrainJob};
use std::sync::Mutex;

/// burn's flex generator is process-wide: trainings in parallel test threads would draw from it
/// in an unpredictable order, so the tests that train take turns.
static TRAINING: Mutex<()> = Mutex::new(());

pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    TRAINING.lock().unwrap_or_else(|e| e.into_inner())
}

/// One user per sequence (`u0`, `u1`, ...), plays one time unit apart, track `t` keyed `t{t}`;
/// each play optionally with its seconds heard of `duration_s` (a completion ratio).
pub fn dataset_heard(seqs: &[Vec<(u32, Option<f32>)>], duration_s: Option<f32>) -> Dataset {
    let mut log = EventLog::default();
    for (u, s) in seqs.iter().enumerate() {
        let user = format!("u{u}");
        for (i, &(t, played_s)) in s.iter().enumerate() {
            let key = format!("t{t}");
            log.push(&RawEvent {
                user: &user,
                ts: i as i64,
                track_key: &key,
                track_name: &key,
                duration_s,
                played_s,
                ..Default::default()
            });
        }
    }
    preprocess(&log, &Preset::sessions_only(i64::MAX / 4), |_| {}).dataset
}

/// [`dataset_heard`] without durations.
pub fn dataset(seqs: &[Vec<u32>]) -> Dataset {
    let seqs: Vec<Vec<(u32, Option<f32>)>> = seqs
        .iter()
        .map(|s| s.iter().map(|&t| (t, None)).collect())
        .collect();
    dataset_heard(&seqs, None)
}

pub fn quick(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 16,
        lr: 5e-3,
        warmup_steps: 5,
        patience: 1000,
        ..Default::default()
    }
}

/// A training job on flex with no progress output and no content.
pub fn job<'a>(
    d: &'a Dataset,
    prep: &'a Prepared,
    model: &ModelConfig,
    train: TrainConfig,
    seed: u64,
    dir: &std::path::Path,
) -> TrainJob<'a> {
    TrainJob {
        data: d,
        prepared: prep,
        model: model.clone(),
        content: &[],
        train,
        seed,
        device: Device::flex(),
        dir: dir.to_path_buf(),
        progress: false,
        stop_after: None,
    }
}
