//! Helpers shared by the native test binaries.

use std::process::Command;

pub mod seeds;
pub mod training;

/// Runs the `encore` binary as a user would: exit code, stdout, stderr.
pub fn encore(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_encore"))
        .args(args)
        .output()
        .expect("run encore");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `encore` and expects success; returns stdout.
#[allow(dead_code)] // not every test binary runs the CLI this way
pub fn encore_ok(args: &[&str]) -> String {
    let (code, out, err) = encore(args);
    assert_eq!(code, 0, "encore {args:?}\nstdout: {out}\nstderr: {err}");
    out
}

/// The asset cache ($ENCORE_ASSETS, else ~/.cache/encore/assets), which must hold `needed`.
#[allow(dead_code)] // only the tests on real models and music use it
pub fn assets(needed: &[&str]) -> std::path::PathBuf {
    let dir = std::env::var_os("ENCORE_ASSETS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/encore/assets")
        });
    let missing: Vec<&&str> = needed.iter().filter(|n| !dir.join(n).is_dir()).collect();
    assert!(
        missing.is_empty(),
        "no {missing:?} in {} (scripts/setup.sh fetches them)",
        dir.display()
    );
    dir
}

/// The Python with numpy and gguf that scripts/setup.sh installs for the reference
/// implementations in tests/reference ($ENCORE_PYTHON overrides).
#[allow(dead_code)] // only the tests against references use it
pub fn python() -> std::path::PathBuf {
    let p = std::env::var_os("ENCORE_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("ENCORE_CACHE")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/encore")
                });
            cache.join("pyenv/bin/python")
        });
    assert!(p.exists(), "no {} (scripts/setup.sh makes it)", p.display());
    p
}

/// Runs `tests/reference/SCRIPT ARGS... OUT.json` with [`python`] and returns what it wrote to
/// `OUT.json`.
#[allow(dead_code)] // only the tests against references use it
pub fn run_reference(script: &str, args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.json");
    let status = Command::new(python())
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/reference")
                .join(script),
        )
        .args(args)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "{script} failed");
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}
