//! Per-seed checkpoints: `ckpt/` holds the current weights (`model.bpk`), the optimiser state
//! (`optim.bpk`), the best weights so far (`best.bpk`) and `state.json` (epoch, step, early-stopping
//! state, the curve). A new checkpoint is written whole into `ckpt.tmp/` and swapped in by
//! renames, so a kill at any moment leaves either the previous or the new checkpoint.

use super::config::{EpochLog, TrainConfig};
use super::error::TrainError;
use crate::data::Dataset;
use crate::model::fusion::ContentTable;
use crate::model::{ModelConfig, SeqModel};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// What the checkpoint was made for (model, training, seed, data); resuming checks it.
    pub fingerprint: String,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimiser steps taken.
    pub step: usize,
    pub best_valid: f64,
    pub best_epoch: usize,
    /// Validations since the last improvement.
    pub bad: usize,
    pub finished: bool,
    pub curve: Vec<EpochLog>,
}

impl State {
    pub fn new(fingerprint: String) -> Self {
        Self {
            fingerprint,
            epoch: 0,
            step: 0,
            best_valid: f64::NEG_INFINITY,
            best_epoch: 0,
            bad: 0,
            finished: false,
            curve: Vec::new(),
        }
    }
}

/// A digest of everything that determines a training run.
pub fn fingerprint(
    model: &ModelConfig,
    t: &TrainConfig,
    seed: u64,
    d: &Dataset,
    content: &[ContentTable],
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(model.canonical_json().as_bytes());
    h.update(serde_json::to_vec(t).expect("config serialises"));
    h.update(seed.to_le_bytes());
    for v in [&d.track, &d.user_start] {
        for x in v.iter() {
            h.update(x.to_le_bytes());
        }
    }
    // Content enters only when there is some, so id-only checkpoints keep their fingerprints.
    for c in content {
        h.update(super::content::table_sha256(c).as_bytes());
    }
    format!("{:x}", h.finalize())
}

fn io(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::checkpoint(path, e)
}

/// Writes a checkpoint (whole, then swapped in).
pub fn save(
    dir: &Path,
    state: &State,
    model: &SeqModel,
    optim: &ModuleOptimizer,
    best: &SeqModel,
) -> Result<(), TrainError> {
    let tmp = dir.join("ckpt.tmp");
    let cur = dir.join("ckpt");
    let old = dir.join("ckpt.old");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let p = tmp.join("model.bpk");
    model.clone().valid().save_file(&p).map_err(|e| io(&p, e))?;
    let p = tmp.join("best.bpk");
    best.clone().save_file(&p).map_err(|e| io(&p, e))?;
    let p = tmp.join("optim.bpk");
    optim.save(&p).map_err(|e| io(&p, e))?;
    let p = tmp.join("state.json");
    let json = serde_json::to_vec_pretty(state).map_err(|e| io(&p, e))?;
    std::fs::write(&p, json).map_err(|e| io(&p, e))?;
    if cur.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
        }
        std::fs::rename(&cur, &old).map_err(|e| io(&cur, e))?;
    }
    std::fs::rename(&tmp, &cur).map_err(|e| io(&tmp, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
    }
    Ok(())
}

/// The checkpoint folder to resume from: `ckpt/`, or `ckpt.old/` when a kill fell between the
/// two renames.
fn current(dir: &Path) -> Option<PathBuf> {
    ["ckpt", "ckpt.old"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.join("state.json").exists())
}

/// Loads the checkpoint in `dir`, if any: the training model (on `fresh`'s autodiff device), the
/// optimiser state's path, the state, and the best model on `device`.
pub fn load(
    dir: &Path,
    fingerprint: &str,
    fresh: SeqModel,
    device: &Device,
) -> Result<Option<(SeqModel, PathBuf, State, SeqModel)>, TrainError> {
    let Some(ck) = current(dir) else {
        return Ok(None);
    };
    let sp = ck.join("state.json");
    let text = std::fs::read_to_string(&sp).map_err(|e| io(&sp, e))?;
    let state: State = serde_json::from_str(&text).map_err(|e| io(&sp, e))?;
    if state.fingerprint != fingerprint {
        return Err(TrainError::OtherRun {
            dir: dir.to_path_buf(),
        });
    }
    let mp = ck.join("model.bpk");
    let model = fresh
        .clone()
        .try_load_file(&mp)
        .map_err(|e| io(&mp, e))?
        .train();
    let bp = ck.join("best.bpk");
    let best = fresh
        .valid()
        .to_device(device)
        .try_load_file(&bp)
        .map_err(|e| io(&bp, e))?;
    Ok(Some((model, ck.join("optim.bpk"), state, best)))
}
