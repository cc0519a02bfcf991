//! Imports: `.npy` arrays, CSV/TSV vectors and texts (by the first byte), the page's history
//! import, and the tokenizer files (`tokenizer.json` for WordPiece and byte-level BPE).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    match pick % 5 {
        0 => drop(encore::features::import::parse_npy(body)),
        1 => drop(encore::util::delimited::read_rows(body, b',')),
        2 => {
            if let Ok(text) = std::str::from_utf8(body) {
                drop(encore::data::history::import("history.json", text));
                drop(encore::llm::tokenizer::BpeTokenizer::from_hf_json(text));
            }
        }
        3 => drop(encore::features::text::WordPiece::from_tokenizer_json(body)),
        _ => drop(encore::features::tf1::read_index(body)),
    }
});
