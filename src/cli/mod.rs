//! The native command line: each subcommand parses its arguments and calls the library.

mod data;
mod doctor;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::device::DeviceChoice;

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
}

/// Parses `--device auto|cpu|wgpu|cuda`.
pub(crate) fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    s.parse()
        .map_err(|e: crate::device::DeviceError| e.to_string())
}

/// Entry point of the native binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Doctor(args) => doctor::run(args),
        Command::Data(args) => data::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
