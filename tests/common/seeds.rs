//! Fuzz seeds from the tests' own inputs. With `ENCORE_FUZZ_SEEDS=DIR` set, the inputs tests
//! write through these helpers are also saved as `DIR/TARGET/NAME-HASH` in the form the fuzz
//! targets read (`fuzz/fuzz_targets`): `NAME\0BODY` for the readers, parts joined by NUL for
//! weights and bundles. `scripts/fuzz.sh --seeds` regenerates `fuzz/seeds` this way.
#![allow(dead_code)] // each test binary seeds its own targets

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Seeds are cut here, as the fuzzers' `-max_len` would cut them.
const MAX_SEED: usize = 65_536;

/// Writes `bytes` to `dir/name` and seeds the log readers' target with it.
pub fn log_input(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    match log_name(name) {
        Some(as_name) => write(&p, "logs", as_name, bytes),
        None => std::fs::write(&p, bytes).unwrap(),
    }
    p
}

/// The logs target's file name for a test's file name (`None`: not seeded).
fn log_name(test_name: &str) -> Option<&'static str> {
    Some(match test_name {
        "log.tsv" | "lastfm.tsv" | "tail.tsv" | "big.tsv" => "log.tsv",
        n if n.ends_with("profile.tsv") => "profile.tsv",
        "StreamingHistory0.json" | "broken.json" => "StreamingHistory0.json",
        n if n.contains("podcast") => "StreamingHistory_podcast_0.json",
        n if n.starts_with("Streaming_History") => "Streaming_History_Audio_2024.json",
        "listens.json" | "bad.json" | "api.json" | "submit.json" => "listens.json",
        n if n.ends_with(".jsonl") => "listens.jsonl",
        n if n.ends_with(".inter") => "x.inter",
        n if n.ends_with(".item") => "x.item",
        "seq.txt" => "seq.txt",
        "sample.txt" => "sample.txt",
        n if n.ends_with("attributes.json") => "attributes.json",
        n if n.starts_with("durations") => match n.rsplit('.').next() {
            Some("tsv") => "durations.tsv",
            Some("csv") => "durations.csv",
            _ => "durations.json",
        },
        _ => return None,
    })
}

/// Seeds `target` with `NAME\0BODY`.
pub fn named(target: &str, name: &str, body: &[u8]) {
    parts(target, name, &[name.as_bytes(), body]);
}

/// Seeds `target` with `parts` joined by NUL bytes, saved as `LABEL-HASH`.
pub fn parts(target: &str, label: &str, parts: &[&[u8]]) {
    let Some(root) = std::env::var_os("ENCORE_FUZZ_SEEDS") else {
        return;
    };
    let mut seed = parts.join(&0u8);
    seed.truncate(MAX_SEED);
    let hash = Sha256::digest(&seed);
    let dir = Path::new(&root).join(target);
    std::fs::create_dir_all(&dir).unwrap();
    let short: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join(format!("{label}-{short}")), seed).unwrap();
}

/// Writes `bytes` to `path` and seeds `target` with them under its file name `as_name`.
pub fn write(path: &Path, target: &str, as_name: &str, bytes: impl AsRef<[u8]>) {
    std::fs::write(path, bytes.as_ref()).unwrap();
    named(target, as_name, bytes.as_ref());
}

/// Seeds the weights target with a feature store: its manifest and each modality's file.
pub fn store(dir: &Path) {
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n != "manifest.json") {
            let file = std::fs::read(&path).unwrap();
            parts("weights", "store", &[&manifest, &file]);
            if path.extension().is_some_and(|e| e == "safetensors") {
                parts("weights", "safetensors", &[&file]);
            }
        }
    }
}

/// Seeds the bundle target with a bundle folder's manifest, config, catalog and weights.
pub fn bundle(dir: &Path, weights: &str) {
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    let files = ["manifest.json", "config.json", "catalog.json", weights].map(read);
    let [m, c, cat, w] = &files;
    parts("bundle", "bundle", &[m, c, cat, w]);
}
