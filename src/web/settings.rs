//! Listener settings kept in the browser's localStorage.

use gloo::storage::{LocalStorage, Storage};

use super::state::OwnTrack;

const COMPUTE_KEY: &str = "encore.compute";
const OWN_KEY: &str = "encore.own";

/// The listener's own tracks kept in localStorage (without their audio, which never leaves the
/// file it came from).
pub fn load_own() -> Vec<OwnTrack> {
    LocalStorage::get::<Vec<OwnTrack>>(OWN_KEY).unwrap_or_default()
}

pub fn save_own(own: &[OwnTrack]) {
    let kept: Vec<OwnTrack> = own
        .iter()
        .map(|o| {
            let mut o = o.clone();
            o.track.audio.clear();
            o
        })
        .collect();
    if let Err(e) = LocalStorage::set(OWN_KEY, kept) {
        leptos::logging::warn!("could not keep your own tracks: {e}");
    }
}

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
        match LocalStorage::get::<String>(COMPUTE_KEY) {
            Ok(v) => Self::from_value(&v),
            Err(_) => ComputePreference::Auto,
        }
    }

    pub fn save(self) {
        if let Err(e) = LocalStorage::set(COMPUTE_KEY, self.as_value()) {
            leptos::logging::warn!("could not save the compute preference: {e}");
        }
    }

    /// Reads a stored or chosen value; anything unknown means `Auto`.
    pub fn from_value(value: &str) -> Self {
        match value {
            "cpu" => ComputePreference::Cpu,
            _ => ComputePreference::Auto,
        }
    }

    pub fn as_value(self) -> &'static str {
        match self {
            ComputePreference::Auto => "auto",
            ComputePreference::Cpu => "cpu",
        }
    }
}
