//! Listening data: every reader, sessions, completion ratios, presets, splits, the store and
//! the `encore data` commands. One test binary (one link) for all of it.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../common/mod.rs"]
mod common;
mod pipeline;
mod readers;
