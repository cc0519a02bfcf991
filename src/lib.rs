//! Encore: multimodal next-track music recommendation.
//!
//! One crate, two faces: built for `wasm32-unknown-unknown` it is a leptos web app that computes
//! on the listener's GPU through WebGPU (or the CPU); built natively it is the `encore` command
//! line for the heavy work. Everything below `cli` and `web` compiles for both.

#![recursion_limit = "256"]

#[cfg(not(target_arch = "wasm32"))]
pub mod audio;
pub mod bundle;
pub mod catalog;
pub mod data;
pub mod device;
pub mod eval;
pub mod features;
pub mod listen;
pub mod llm;
pub mod model;
pub mod smoke;
pub mod tagging;

#[cfg(not(target_arch = "wasm32"))]
pub mod train;

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;

#[cfg(target_arch = "wasm32")]
pub mod web;
