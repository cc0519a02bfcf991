//! Encore: multimodal next-track music recommendation.
//!
//! One crate, two faces: built for `wasm32-unknown-unknown` it is a leptos web app that computes
//! on the listener's GPU through WebGPU (or the CPU); built natively it is the `encore` command
//! line for the heavy work. Everything below `cli` and `web` compiles for both, except
//! training and experiments (native only).
//!
//! The modules are layers, bottom first (`src/layers.txt`, checked by `tests/architecture.rs`):
//! each imports only the layers below it.

#![recursion_limit = "256"]

pub mod util;

pub mod device;

#[cfg(not(target_arch = "wasm32"))]
pub mod audio;
pub mod data;

pub mod catalog;

pub mod features;
pub mod llm;

pub mod tagging;

pub mod model;

pub mod eval;

pub mod bundle;

#[cfg(not(target_arch = "wasm32"))]
pub mod train;

#[cfg(not(target_arch = "wasm32"))]
pub mod experiment;

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;

pub mod web;
