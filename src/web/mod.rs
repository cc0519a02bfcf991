//! The leptos (CSR) web app.

mod analyse;
mod app;
mod bundles;
mod settings;
pub mod storage;

pub use app::App;

/// Mounts the app on `<body>`; panics go to the browser console.
pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
