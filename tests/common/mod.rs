//! Helpers shared by the native test binaries.

use std::process::Command;

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
