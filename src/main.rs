//! Native: run the command line. Browser: mount the web app. Nothing else.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    encore::cli::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {
    encore::web::mount();
}
