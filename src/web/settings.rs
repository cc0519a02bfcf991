//! Listener settings kept in the browser's localStorage.

use gloo::storage::{LocalStorage, Storage};

const COMPUTE_KEY: &str = "encore.compute";

/// Where the listener wants models to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComputePreference {
    /// WebGPU when the browser offers an adapter, else the CPU.
    Auto,
    /// Always the CPU (flex), e.g. when a GPU driver misbehaves.
    Cpu,
}

impl ComputePreference {
    pub fn load() -> Self {
        match LocalStorage::get::<String>(COMPUTE_KEY).as_deref() {
            Ok("cpu") => ComputePreference::Cpu,
            _ => ComputePreference::Auto,
        }
    }

    pub fn save(self) {
        let value = match self {
            ComputePreference::Auto => "auto",
            ComputePreference::Cpu => "cpu",
        };
        if let Err(e) = LocalStorage::set(COMPUTE_KEY, value) {
            leptos::logging::warn!("could not save the compute preference: {e}");
        }
    }

    pub fn as_value(self) -> &'static str {
        match self {
            ComputePreference::Auto => "auto",
            ComputePreference::Cpu => "cpu",
        }
    }
}
