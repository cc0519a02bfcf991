//! The seed runner: where and how a run executes, each seed's folder, and seeds trained at once
//! in child processes of this program (`encore train-seed`), whatever kind of run recorded them.

use burn::tensor::Device;
use std::path::{Path, PathBuf};

use super::ExperimentError;
use super::results::SeedTraining;

/// Where and how a run executes.
pub struct Execution {
    pub device: Device,
    /// The device as reports name it.
    pub device_label: String,
    /// The `--device` value child processes get.
    pub device_arg: String,
    /// Progress bars and per-epoch lines on stderr.
    pub progress: bool,
    /// Seeds trained at once in child processes (1: in this process, one after another).
    pub jobs: usize,
}

/// A seed's folder in a run.
pub(crate) fn seed_dir(run: &Path, seed: u64) -> PathBuf {
    run.join(format!("seed-{seed}"))
}

pub(crate) use crate::util::fsio::{read_json, write_json};

/// Trains `seeds` of a recorded run (a `run.json` or an `e4srec.json` in `run`) in up to `jobs`
/// child processes of this program (`encore train-seed`).
pub fn train_in_children(
    seeds: &[u64],
    run: &Path,
    jobs: usize,
    device: &str,
) -> Result<(), ExperimentError> {
    // On Linux, /proc/self/exe runs this very program even after a rebuild has replaced (and
    // so deleted) its file, which would otherwise end a long run at its next seed.
    let proc_exe = std::path::Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe().map_err(ExperimentError::Exe)?
    };
    let mut pending: Vec<u64> = seeds.iter().rev().copied().collect();
    let mut running: Vec<(u64, std::process::Child)> = Vec::new();
    let mut failed = Vec::new();
    while !pending.is_empty() || !running.is_empty() {
        while running.len() < jobs
            && let Some(seed) = pending.pop()
        {
            let child = std::process::Command::new(&exe)
                .arg("train-seed")
                .arg(run)
                .arg(seed.to_string())
                .args(["--device", device])
                .stdout(std::process::Stdio::null())
                .spawn()
                .map_err(|source| ExperimentError::Spawn {
                    program: exe.clone(),
                    source,
                })?;
            eprintln!("seed {seed}: training in process {}", child.id());
            running.push((seed, child));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut i = 0;
        while i < running.len() {
            match running[i].1.try_wait() {
                Ok(Some(status)) => {
                    let (seed, _) = running.swap_remove(i);
                    eprintln!("seed {seed}: {status}");
                    if !status.success() {
                        failed.push((seed, status));
                    }
                }
                Ok(None) => i += 1,
                Err(source) => {
                    return Err(ExperimentError::Wait {
                        seed: running[i].0,
                        source,
                    });
                }
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(ExperimentError::Children { failed })
    }
}

/// The line a `train-seed` child prints when its seed is done.
pub(crate) fn report_seed(t: &SeedTraining, valid_metric: &str) {
    eprintln!(
        "seed {}: best {valid_metric} {:.4} at epoch {} of {}, {:.0} s",
        t.seed, t.best_valid, t.best_epoch, t.epochs, t.seconds
    );
}
