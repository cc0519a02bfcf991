//! Inputs that name their file: `NAME\0BODY`. The readers take paths and choose by the file's
//! name, so the body is written under NAME to a fresh temporary folder. The seeds (written by the
//! tests, see `tests/common/seeds.rs`) use the same form.
use std::path::PathBuf;

/// NAME and BODY when NAME is one of `names`.
pub fn named<'a>(data: &'a [u8], names: &[&'static str]) -> Option<(&'static str, &'a [u8])> {
    let at = data.iter().position(|&b| b == 0)?;
    let name = names.iter().find(|n| n.as_bytes() == &data[..at])?;
    Some((name, &data[at + 1..]))
}

/// A temporary folder holding `files`; the first file's path.
pub fn files(files: &[(&str, &[u8])]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).expect("a temporary file");
    }
    let first = dir.path().join(files[0].0);
    (dir, first)
}
