//! Byte-level BPE (GPT-2 style) rebuilt from a GGUF file's tokenizer metadata: the vocabulary
//! (`tokenizer.ggml.tokens`), its merges in rank order (`tokenizer.ggml.merges`), control tokens
//! (`tokenizer.ggml.token_type` 3, matched whole in the text), and the pre-tokenizer named by
//! `tokenizer.ggml.pre`. Pure Rust, so it runs in the browser as well.
//!
//! Encoding: control tokens are cut out first; the rest is split into words by the
//! pre-tokenizer (for `smollm`, every digit on its own, then GPT-2's pattern
//! `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, written out by
//! hand here); each word's UTF-8 bytes are mapped to GPT-2's printable characters and merged
//! pair by pair, lowest rank first.

use super::error::LlmError;
use super::gguf::{Gguf, Value};
use std::collections::HashMap;
use unicode_categories::UnicodeCategories;

/// How text is split into words before BPE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// GPT-2's pattern.
    Gpt2,
    /// Each digit alone, then GPT-2's pattern (SmolLM, StarCoder).
    DigitsThenGpt2,
}

impl PreTokenizer {
    /// From `tokenizer.ggml.pre`.
    pub fn from_name(name: &str) -> Result<Self, LlmError> {
        match name {
            "gpt2" | "default" | "mpt" | "olmo" => Ok(Self::Gpt2),
            "smollm" | "starcoder" | "refact" | "codeshell" => Ok(Self::DigitsThenGpt2),
            other => Err(LlmError::PreTokenizer {
                name: other.to_string(),
            }),
        }
    }
}

#[derive(Clone, Debug)]
pub struct BpeTokenizer {
    tokens: Vec<String>,
    ids: HashMap<String, u32>,
    /// Merge rank of a pair of token ids, and the id of the merged token.
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Control tokens, longest first (matched greedily in the text).
    control: Vec<(String, u32)>,
    pre: PreTokenizer,
    byte_char: [char; 256],
    char_byte: HashMap<char, u8>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
}

/// GPT-2's map from bytes to printable characters: printable Latin-1 bytes stand for
/// themselves, the others are shifted to 256 and up.
fn byte_chars() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        let keep = (b'!'..=b'~').contains(&b) || (0xa1..=0xac).contains(&b) || b >= 0xae;
        out[b as usize] = if keep {
            char::from(b)
        } else {
            let c = char::from_u32(next).expect("valid");
            next += 1;
            c
        };
    }
    out
}

impl BpeTokenizer {
    /// From a vocabulary, merges (`"left right"`, rank order) and control tokens.
    pub fn new(
        tokens: Vec<String>,
        merges: &[String],
        control: &[u32],
        pre: PreTokenizer,
    ) -> Result<Self, LlmError> {
        let ids: HashMap<String, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let mut m = HashMap::with_capacity(merges.len());
        for (rank, line) in merges.iter().enumerate() {
            let (a, b) = line.split_once(' ').ok_or_else(|| LlmError::MergePair {
                rank,
                merge: line.clone(),
            })?;
            let id = |t: &str| {
                ids.get(t).copied().ok_or_else(|| LlmError::MergeToken {
                    rank,
                    merge: line.clone(),
                    token: t.to_string(),
                })
            };
            let joined = format!("{a}{b}");
            m.entry((id(a)?, id(b)?))
                .or_insert((rank as u32, id(&joined)?));
        }
        let mut control: Vec<(String, u32)> = control
            .iter()
            .map(|&i| {
                tokens
                    .get(i as usize)
                    .map(|t| (t.clone(), i))
                    .ok_or(LlmError::ControlToken { id: i })
            })
            .collect::<Result<_, _>>()?;
        control.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        let byte_char = byte_chars();
        let char_byte = byte_char
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        Ok(Self {
            tokens,
            ids,
            merges: m,
            control,
            pre,
            byte_char,
            char_byte,
            bos: None,
            eos: None,
            add_bos: false,
        })
    }

    /// From a Hugging Face `tokenizer.json` (a byte-level `BPE` model; special added tokens are
    /// control tokens). The pre-tokenizer is recognised from its description: GPT-2's byte-level
    /// split, or single digits first (SmolLM, StarCoder); others (a custom `Split` pattern, as
    /// Llama 3's and Qwen2's) are refused.
    pub fn from_hf_json(text: &str) -> Result<Self, LlmError> {
        const FILE: &str = "tokenizer.json";
        let field = |field: String, reason: String| LlmError::field(FILE, field, reason);
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| LlmError::json(FILE, e))?;
        let m = &v["model"];
        if m["type"].as_str() != Some("BPE") {
            return Err(field(
                "model.type".into(),
                format!("model type {} is not BPE", m["type"]),
            ));
        }
        let vocab = m["vocab"]
            .as_object()
            .ok_or_else(|| field("model.vocab".into(), "no model.vocab".into()))?;
        let added = v["added_tokens"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        // Ids index a table: one past the tokens listed is a gap, not a size to allocate.
        let listed = (vocab.len() + added.len()) as u64;
        let mut tokens: Vec<Option<String>> = Vec::new();
        let mut put = |id: u64, t: &str| {
            if id >= listed {
                return Err(field(
                    format!("id of {t:?}"),
                    format!("{id} is beyond the {listed} tokens listed"),
                ));
            }
            let id = id as usize;
            if tokens.len() <= id {
                tokens.resize(id + 1, None);
            }
            tokens[id] = Some(t.to_string());
            Ok(())
        };
        for (t, id) in vocab {
            let id = id.as_u64().ok_or_else(|| {
                field(
                    format!("model.vocab[{t:?}]"),
                    "a vocabulary id is not an integer".into(),
                )
            })?;
            put(id, t)?;
        }
        let mut control = Vec::new();
        for (i, a) in added.iter().enumerate() {
            let (Some(id), Some(t)) = (a["id"].as_u64(), a["content"].as_str()) else {
                return Err(field(
                    format!("added_tokens[{i}]"),
                    "an added token without id or content".into(),
                ));
            };
            put(id, t)?;
            if a["special"].as_bool() == Some(true) {
                control.push(id as u32);
            }
        }
        let tokens = tokens
            .into_iter()
            .enumerate()
            .map(|(id, t)| {
                t.ok_or(LlmError::NoId {
                    file: FILE.into(),
                    id,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let merges: Vec<String> = m["merges"]
            .as_array()
            .ok_or_else(|| field("model.merges".into(), "no model.merges".into()))?
            .iter()
            .enumerate()
            .map(|(rank, x)| match x {
                serde_json::Value::String(s) => Ok(s.clone()),
                serde_json::Value::Array(p) => match (p.first(), p.get(1)) {
                    (Some(a), Some(b)) => Ok(format!(
                        "{} {}",
                        a.as_str().unwrap_or_default(),
                        b.as_str().unwrap_or_default()
                    )),
                    _ => Err(field(
                        format!("model.merges[{rank}]"),
                        "a merge is not a pair".into(),
                    )),
                },
                _ => Err(field(
                    format!("model.merges[{rank}]"),
                    "a merge is not a string or a pair".into(),
                )),
            })
            .collect::<Result<_, _>>()?;
        let pre_text = v["pre_tokenizer"].to_string();
        let pre = if pre_text.contains("\"Split\"") {
            return Err(field(
                "pre_tokenizer".into(),
                "a custom Split pre-tokenizer (Llama 3, Qwen2) is not implemented".into(),
            ));
        } else if pre_text.contains("\"Digits\"") {
            PreTokenizer::DigitsThenGpt2
        } else if pre_text.contains("\"ByteLevel\"") {
            PreTokenizer::Gpt2
        } else {
            return Err(field(
                "pre_tokenizer".into(),
                format!("pre-tokenizer {pre_text} is not byte-level"),
            ));
        };
        Self::new(tokens, &merges, &control, pre)
    }

    /// From a GGUF file's metadata (`tokenizer.ggml.model` must be `gpt2`).
    pub fn from_gguf(g: &Gguf) -> Result<Self, LlmError> {
        const MODEL: &str = "tokenizer.ggml.model";
        let model = g.require(MODEL, |v| v.as_str().map(str::to_string))?;
        if model != "gpt2" {
            return Err(LlmError::metadata(
                MODEL,
                format!(
                    "tokenizer model '{model}' is not byte-level BPE ('gpt2'); not implemented"
                ),
            ));
        }
        let strings = |key: &str| -> Result<Vec<String>, LlmError> {
            g.require(key, |v| {
                v.as_array()?
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?;
        let control: Vec<u32> = match g.get("tokenizer.ggml.token_type") {
            Some(Value::Array(types)) => types
                .iter()
                .enumerate()
                .filter(|(_, t)| t.as_u64() == Some(3))
                .map(|(i, _)| i as u32)
                .collect(),
            _ => vec![],
        };
        let pre = match g.get("tokenizer.ggml.pre").and_then(Value::as_str) {
            Some(p) => PreTokenizer::from_name(p)?,
            None => PreTokenizer::Gpt2,
        };
        let mut t = Self::new(tokens, &merges, &control, pre)?;
        let id = |k: &str| {
            g.get(k)
                .and_then(Value::as_u64)
                .map(|v| v as u32)
                .filter(|&v| (v as usize) < t.tokens.len())
        };
        t.bos = id("tokenizer.ggml.bos_token_id");
        t.eos = id("tokenizer.ggml.eos_token_id");
        t.add_bos = g
            .get("tokenizer.ggml.add_bos_token")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(t)
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    pub fn id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// Token ids of `text`; control tokens written in the text become their ids. With
    /// `add_bos` set by the model, the BOS token comes first.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        if self.add_bos
            && let Some(b) = self.bos
        {
            out.push(b);
        }
        let mut rest = text;
        while !rest.is_empty() {
            // The earliest control token (longest at that position).
            let hit = self
                .control
                .iter()
                .filter_map(|(t, id)| rest.find(t.as_str()).map(|at| (at, t.len(), *id)))
                .min_by_key(|&(at, len, _)| (at, std::cmp::Reverse(len)));
            match hit {
                Some((at, len, id)) => {
                    self.encode_plain(&rest[..at], &mut out);
                    out.push(id);
                    rest = &rest[at + len..];
                }
                None => {
                    self.encode_plain(rest, &mut out);
                    break;
                }
            }
        }
        out
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) {
        for word in pre_tokenize(text, self.pre) {
            self.encode_word(word, out);
        }
    }

    fn encode_word(&self, word: &str, out: &mut Vec<u32>) {
        let mut parts: Vec<u32> = Vec::with_capacity(word.len());
        let mut buf = [0u8; 4];
        for b in word.bytes() {
            let c = self.byte_char[b as usize];
            match self.ids.get(c.encode_utf8(&mut buf) as &str) {
                Some(&id) => parts.push(id),
                // A byte the vocabulary lacks cannot be encoded; byte-level vocabularies have all 256.
                None => continue,
            }
        }
        loop {
            let best = parts
                .windows(2)
                .enumerate()
                .filter_map(|(i, w)| self.merges.get(&(w[0], w[1])).map(|&(r, id)| (r, i, id)))
                .min();
            let Some((_, i, id)) = best else { break };
            parts[i] = id;
            parts.remove(i + 1);
        }
        out.extend(parts);
    }

    /// Text of token ids (control tokens written out when `specials` is set).
    pub fn decode(&self, ids: &[u32], specials: bool) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            let Some(t) = self.tokens.get(id as usize) else {
                continue;
            };
            if self.control.iter().any(|(_, c)| *c == id) {
                if specials {
                    bytes.extend(t.as_bytes());
                }
                continue;
            }
            for c in t.chars() {
                match self.char_byte.get(&c) {
                    Some(&b) => bytes.push(b),
                    None => bytes.extend(c.to_string().as_bytes()),
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Splits `text` into words as the pre-tokenizer does.
pub fn pre_tokenize(text: &str, pre: PreTokenizer) -> Vec<&str> {
    let mut out = Vec::new();
    match pre {
        PreTokenizer::Gpt2 => gpt2_split(text, &mut out),
        PreTokenizer::DigitsThenGpt2 => {
            let mut start = 0;
            for (i, c) in text.char_indices() {
                if c.is_numeric() {
                    gpt2_split(&text[start..i], &mut out);
                    out.push(&text[i..i + c.len_utf8()]);
                    start = i + c.len_utf8();
                }
            }
            gpt2_split(&text[start..], &mut out);
        }
    }
    out
}

fn is_letter(c: char) -> bool {
    c.is_letter()
}

fn is_number(c: char) -> bool {
    c.is_numeric()
}

/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
fn gpt2_split<'a>(text: &'a str, out: &mut Vec<&'a str>) {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    let at = |k: usize| if k < n { chars[k].0 } else { text.len() };
    let mut i = 0;
    while i < n {
        let c = chars[i].1;
        let next = |k: usize| chars.get(k).map(|&(_, c)| c);
        // Contractions.
        if c == '\'' {
            let rest = &text[chars[i].0 + 1..];
            if let Some(s) = ["re", "ve", "ll", "s", "t", "m", "d"]
                .iter()
                .find(|s| rest.starts_with(**s))
            {
                let end = i + 1 + s.len();
                out.push(&text[at(i)..at(end)]);
                i = end;
                continue;
            }
        }
        // An optional space, then a run of one class.
        let (lead, first) = if c == ' ' {
            match next(i + 1) {
                Some(f) => (1, Some(f)),
                None => (0, None),
            }
        } else {
            (0, Some(c))
        };
        if let Some(f) = first {
            let class: Option<fn(char) -> bool> = if is_letter(f) {
                Some(is_letter)
            } else if is_number(f) {
                Some(is_number)
            } else if !f.is_whitespace() {
                Some(|c: char| !c.is_whitespace() && !is_letter(c) && !is_number(c))
            } else {
                None
            };
            if let Some(class) = class {
                let mut end = i + lead;
                while end < n && class(chars[end].1) {
                    end += 1;
                }
                out.push(&text[at(i)..at(end)]);
                i = end;
                continue;
            }
        }
        // Whitespace: the run, less its last character when a non-space follows it.
        let mut end = i;
        while end < n && chars[end].1.is_whitespace() {
            end += 1;
        }
        if end < n && end - i > 1 {
            end -= 1;
        }
        out.push(&text[at(i)..at(end)]);
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_pre_tokenization() {
        let split = |s| pre_tokenize(s, PreTokenizer::Gpt2);
        assert_eq!(split("Hello world"), vec!["Hello", " world"]);
        assert_eq!(split("I'm  here"), vec!["I", "'m", " ", " here"]);
        assert_eq!(split("a   b"), vec!["a", "  ", " b"]);
        assert_eq!(split("x  "), vec!["x", "  "]);
        assert_eq!(split("tab\there"), vec!["tab", "\t", "here"]);
        assert_eq!(split(" 42!!"), vec![" 42", "!!"]);
        assert_eq!(split("café ünïcode"), vec!["café", " ünïcode"]);
        assert_eq!(split("\n\nNew"), vec!["\n", "\n", "New"]);
        let d = |s| pre_tokenize(s, PreTokenizer::DigitsThenGpt2);
        assert_eq!(d("in 2024,"), vec!["in", " ", "2", "0", "2", "4", ","]);
    }

    #[test]
    fn bpe_merges_lowest_rank_first_and_round_trips() {
        let toks: Vec<String> = ["a", "b", "c", "ab", "bc", "abc", "Ġ", "Ġa", "<|end|>"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let merges: Vec<String> = ["b c", "a b", "a bc", "Ġ a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let t = BpeTokenizer::new(toks, &merges, &[8], PreTokenizer::Gpt2).unwrap();
        // "b c" outranks "a b": a + bc, then "a bc" -> abc.
        assert_eq!(t.encode("abc"), vec![5]);
        assert_eq!(t.encode("ab a<|end|>c"), vec![3, 7, 8, 2]);
        assert_eq!(t.decode(&[3, 7, 8, 2], false), "ab ac");
        assert_eq!(t.decode(&[3, 7, 8, 2], true), "ab a<|end|>c");
        assert!(
            BpeTokenizer::new(vec!["a".into()], &["a z".into()], &[], PreTokenizer::Gpt2).is_err()
        );
    }

    /// A vocabulary id far past the tokens listed is refused, not allocated for (an id of 4e12
    /// asked for a table of 4e12 entries).
    #[test]
    fn a_tokenizer_json_id_beyond_its_tokens_is_refused() {
        let json = |id: &str| {
            format!(
                r#"{{"model": {{"type": "BPE", "vocab": {{"a": 0, "b": {id}}}, "merges": []}},
                    "pre_tokenizer": {{"type": "ByteLevel"}}}}"#
            )
        };
        assert!(BpeTokenizer::from_hf_json(&json("1")).is_ok());
        let e = BpeTokenizer::from_hf_json(&json("4000000000000")).unwrap_err();
        assert!(e.to_string().contains("beyond the 2 tokens listed"), "{e}");
    }
}
