//! The leptos (CSR) web app.
//!
//! `state` is the page's state as plain data and compiles everywhere (its unit tests run
//! natively); the rest is the page in the browser: `page` holds what the components share,
//! one file per part of the page lays it out, and `analyse`, `bundles`, `settings` and
//! `storage` talk to the browser (audio decoding, downloads, localStorage, IndexedDB).

pub mod state;

#[cfg(target_arch = "wasm32")]
mod analyse;
#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod bundles;
#[cfg(target_arch = "wasm32")]
mod catalog;
#[cfg(target_arch = "wasm32")]
mod device;
#[cfg(target_arch = "wasm32")]
pub mod error;
#[cfg(target_arch = "wasm32")]
mod history;
#[cfg(target_arch = "wasm32")]
mod own_tracks;
#[cfg(target_arch = "wasm32")]
mod page;
#[cfg(target_arch = "wasm32")]
mod player;
#[cfg(target_arch = "wasm32")]
mod settings;
#[cfg(target_arch = "wasm32")]
pub mod storage;
#[cfg(target_arch = "wasm32")]
mod up_next;

#[cfg(target_arch = "wasm32")]
pub use app::App;

/// Mounts the app on `<body>`; panics go to the browser console.
#[cfg(target_arch = "wasm32")]
pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
