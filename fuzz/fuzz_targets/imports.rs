//! Imports: vectors (`.npy`, safetensors, JSON lines, CSV, TSV), texts (TSV, JSON lines), the
//! page's history file, tokenizers (`tokenizer.json` as WordPiece and as byte-level BPE) and TF1
//! checkpoints (an index, its length first, and its data shard).
#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    "v.npy",
    "v.safetensors",
    "v.jsonl",
    "v.csv",
    "v.tsv",
    "texts.tsv",
    "texts.jsonl",
    "history.json",
    "tokenizer.json",
    "model.ckpt",
];

fuzz_target!(|data: &[u8]| {
    let Some((name, body)) = common::named(data, NAMES) else {
        return;
    };
    match name {
        "history.json" | "tokenizer.json" => text(name, body),
        "model.ckpt" => {
            // The index holds NUL bytes: its length comes first (u16, little-endian).
            let Some((len, rest)) = body.split_first_chunk::<2>() else {
                return;
            };
            let (index, shard) = rest.split_at(rest.len().min(u16::from_le_bytes(*len).into()));
            let files = [
                ("model.ckpt.index", index),
                ("model.ckpt.data-00000-of-00001", shard),
            ];
            let (dir, _) = common::files(&files);
            let _ = encore::features::tf1::read_checkpoint(&dir.path().join(name));
        }
        n if n.starts_with("texts") => {
            let (_dir, path) = common::files(&[(name, body)]);
            let _ = encore::features::import::read_texts(&path);
        }
        _ => {
            let (_dir, path) = common::files(&[(name, body)]);
            let _ = encore::features::import::read_vectors(&path, None);
            let ids: Vec<String> = (0..4).map(|i| i.to_string()).collect();
            let _ = encore::features::import::read_vectors(&path, Some(&ids));
        }
    }
});

fn text(name: &str, body: &[u8]) {
    if name == "tokenizer.json" {
        let _ = encore::features::text::WordPiece::from_tokenizer_json(body);
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    match name {
        "history.json" => drop(encore::data::history::import(name, text)),
        _ => drop(encore::llm::tokenizer::BpeTokenizer::from_hf_json(text)),
    }
}
