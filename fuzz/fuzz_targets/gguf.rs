//! GGUF files: the header, metadata and tensor table, every tensor's dequantization, and the
//! decoder configuration and tokenizer read from them.
#![no_main]
use encore::llm::gguf::Gguf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(g) = Gguf::parse(data.to_vec()) else {
        return;
    };
    for t in g.tensors.clone() {
        let _ = g.dequantize(&t.name);
    }
    let _ = encore::llm::llama::LlamaConfig::from_gguf(&g);
    let _ = encore::llm::tokenizer::BpeTokenizer::from_gguf(&g);
});
