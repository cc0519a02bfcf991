//! The native command line: each subcommand parses its arguments and calls the library.

mod args;
mod catalog;
mod data;
mod doctor;
mod features;
mod llm;
mod tag;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "encore",
    version,
    about = "Encore: multimodal next-track music recommendation (native CLI of the same crate the web app runs)",
    long_about = None,
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Report the version, the compute backends and adapters, and check each one with a burn computation
    Doctor(doctor::DoctorArgs),
    /// Listening data: ingest logs, synthesize logs, make splits, show statistics
    Data(Box<data::DataArgs>),
    /// Train SASRec, BERT4Rec or GRU4Rec over K seeds and evaluate them (results.json, .md, curves.svg)
    Train(Box<train::TrainArgs>),
    /// Backbones x content subsets x fusion strategies x seeds, resumable; the table with paired lifts over id-only
    Ablate(Box<train::AblateArgs>),
    /// One seed of a recorded run (started by `train --jobs`)
    #[command(hide = true)]
    TrainSeed(train::TrainSeedArgs),
    /// Re-evaluate a run folder from its saved models; prints full-catalogue scoring throughput
    Eval(train::EvalArgs),
    /// Music catalogs: build one from audio folders, simulate listening sessions over it
    Catalog(catalog::CatalogArgs),
    /// Write a model bundle (weights, config, catalog, checksums) for the web app
    Export(catalog::ExportArgs),
    /// Next tracks from a bundle, natively (what the app computes in the page)
    Recommend(catalog::RecommendArgs),
    /// Content features: musicnn audio embeddings and tags, MiniLM text embeddings, imports, store info
    Features(features::FeaturesArgs),
    /// Run a GGUF model: speed benchmark, one chat answer
    Llm(Box<llm::LlmArgs>),
    /// MGPHot genes for a feature store's tracks by a local GGUF model (constrained JSON), resumable
    Tag(Box<tag::TagArgs>),
    /// Paired per-user test between two runs on the same data and protocol (bootstrap and Wilcoxon)
    Compare(train::CompareArgs),
}

/// Entry point of the native binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Doctor(args) => doctor::run(args),
        Command::Data(args) => data::run(*args),
        Command::Train(args) => train::run_train(*args),
        Command::Ablate(args) => train::run_ablate(*args),
        Command::TrainSeed(args) => train::run_train_seed(args),
        Command::Eval(args) => train::run_eval(args),
        Command::Compare(args) => train::run_compare(args),
        Command::Catalog(args) => catalog::run(args),
        Command::Export(args) => catalog::run_export(args),
        Command::Recommend(args) => catalog::run_recommend(args),
        Command::Features(args) => features::run(args),
        Command::Tag(args) => tag::run(*args),
        Command::Llm(args) => llm::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once: the library's errors already name
/// their cause in their own message (`path: reason`), so a cause whose text the message so far
/// holds is not repeated.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        // Causes may quote untrusted input: printable, and at most a few lines long.
        let text = crate::util::text::shown(&cause.to_string(), 2000);
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::message;

    #[test]
    fn each_cause_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let typed = crate::util::fsio::FileError::io(std::path::Path::new("run.json"), io);
        assert_eq!(message(&anyhow::Error::new(typed)), "run.json: gone");
        let ctx = anyhow::Error::msg("inner").context("outer");
        assert_eq!(message(&ctx), "outer: inner");
        let raw = anyhow::Error::msg(format!("bad '\u{1b}[2J{}'", "x".repeat(5000)));
        let m = message(&raw);
        assert!(m.starts_with("bad '\\u{1b}[2Jxxx") && m.len() < 2100, "{m}");
    }
}
