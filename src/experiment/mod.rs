//! Experiments (native): a run asked for by its spec (`run.json`, `e4srec.json`), trained seed
//! by seed (in child processes with `--jobs`), scored under its protocol beside the floors, and
//! summarised into one results record with its reports; E4SRec and zero-shot runs over a
//! finished run, the fusion ablation, and the export of a run as a bundle.

pub mod ablate;
pub mod e4srec;
pub mod error;
pub mod export;
pub mod results;
pub mod run;
pub mod runner;
pub mod zeroshot;

pub use error::ExperimentError;

use burn::tensor::Device;
use std::path::Path;

/// `encore train-seed RUN SEED`: one seed of a recorded run (what `--jobs` starts), an E4SRec
/// run when `RUN` holds its `e4srec.json`, else a sequence-model run.
pub fn train_recorded_seed(run: &Path, seed: u64, device: &Device) -> Result<(), ExperimentError> {
    if run.join(e4srec::SPEC_FILE).exists() {
        e4srec::train_recorded_seed(run, seed, device)
    } else {
        run::train_recorded_seed(run, seed, device)
    }
}
