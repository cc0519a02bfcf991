//! Text embeddings: all-MiniLM-L6-v2 (a 6-layer, 384-d BERT) as burn modules, mean pooling over
//! the tokens and L2 normalisation, as sentence-transformers computes it.
//!
//! Tokenization: [`WordPiece`] is this crate's BERT tokenizer (normaliser, pre-tokenizer and
//! WordPiece from `tokenizer.json`); it runs natively and in the browser. Natively the Hugging
//! Face `tokenizers` crate reads the same file ([`HfTokenizer`]); tests check that both give the
//! same ids.

use burn::module::{Module, Param};
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use std::collections::HashMap;

use super::error::FeatureError;

/// Longest input in tokens, [CLS] and [SEP] included (sentence-transformers' max_seq_length).
pub const MAX_TOKENS: usize = 256;
pub const DIM: usize = 384;

/// BERT's uncased tokenizer: clean text, split CJK characters, strip accents, lower-case, split
/// on whitespace and punctuation, then greedy longest-match WordPiece with `##` continuations.
#[derive(Clone, Debug)]
pub struct WordPiece {
    vocab: HashMap<String, u32>,
    unk: u32,
    cls: u32,
    sep: u32,
    max_chars: usize,
    lowercase: bool,
}

impl WordPiece {
    /// Reads the vocabulary and settings from a Hugging Face `tokenizer.json` (WordPiece model).
    pub fn from_tokenizer_json(json: &[u8]) -> Result<Self, FeatureError> {
        const FILE: &str = "tokenizer.json";
        let v: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| FeatureError::json(FILE, e))?;
        let model = &v["model"];
        if model["type"] != "WordPiece" {
            return Err(FeatureError::field(
                FILE,
                "model.type",
                format!("model type {}, expected WordPiece", model["type"]),
            ));
        }
        let vocab: HashMap<String, u32> = model["vocab"]
            .as_object()
            .ok_or_else(|| FeatureError::field(FILE, "model.vocab", "no model.vocab"))?
            .iter()
            .map(|(k, id)| {
                let id = id.as_u64().ok_or_else(|| {
                    FeatureError::field(FILE, "model.vocab", "a vocab id is not a number")
                })?;
                Ok((k.clone(), id as u32))
            })
            .collect::<Result<_, FeatureError>>()?;
        let id = |t: &str| {
            vocab
                .get(t)
                .copied()
                .ok_or_else(|| FeatureError::field(FILE, t, format!("no {t} token")))
        };
        Ok(WordPiece {
            unk: id(model["unk_token"].as_str().unwrap_or("[UNK]"))?,
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            max_chars: model["max_input_chars_per_word"].as_u64().unwrap_or(100) as usize,
            lowercase: v["normalizer"]["lowercase"].as_bool().unwrap_or(true),
            vocab,
        })
    }

    /// Token ids with [CLS] and [SEP], truncated to `max_tokens`.
    pub fn encode(&self, text: &str, max_tokens: usize) -> Vec<u32> {
        let mut ids = vec![self.cls];
        let normal = self.normalize(text);
        'words: for word in pre_tokenize(&normal) {
            let pieces = self.word_pieces(word);
            for p in pieces {
                if ids.len() + 1 >= max_tokens {
                    break 'words;
                }
                ids.push(p);
            }
        }
        ids.push(self.sep);
        ids
    }

    fn normalize(&self, text: &str) -> String {
        use unicode_normalization::UnicodeNormalization;
        let mut s = String::with_capacity(text.len());
        for c in text.chars() {
            if c == '\0' || c == '\u{fffd}' || is_control(c) {
                continue;
            }
            if is_whitespace(c) {
                s.push(' ');
            } else if is_chinese(c) {
                s.push(' ');
                s.push(c);
                s.push(' ');
            } else {
                s.push(c);
            }
        }
        if self.lowercase {
            // strip_accents follows lowercase when unset: NFD, drop nonspacing marks.
            s = s
                .nfd()
                .filter(|c| !unicode_categories::UnicodeCategories::is_mark_nonspacing(*c))
                .collect::<String>()
                .to_lowercase();
        }
        s
    }

    fn word_pieces(&self, word: &str) -> Vec<u32> {
        let chars: Vec<(usize, char)> = word.char_indices().collect();
        if chars.len() > self.max_chars {
            return vec![self.unk];
        }
        let mut out = Vec::new();
        let mut start = 0;
        let mut buf = String::new();
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while start < end {
                let (a, b) = (chars[start].0, chars.get(end).map_or(word.len(), |c| c.0));
                buf.clear();
                if start > 0 {
                    buf.push_str("##");
                }
                buf.push_str(&word[a..b]);
                if let Some(&id) = self.vocab.get(&buf) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => out.push(id),
                None => return vec![self.unk],
            }
            start = end;
        }
        out
    }
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r') || c.is_whitespace()
}

fn is_control(c: char) -> bool {
    use unicode_categories::UnicodeCategories;
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || unicode_categories::UnicodeCategories::is_punctuation(c)
}

fn is_chinese(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

/// BERT's pre-tokenizer: split on whitespace, each punctuation character its own word.
fn pre_tokenize(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for chunk in s.split(is_whitespace).filter(|w| !w.is_empty()) {
        let mut start = 0;
        for (i, c) in chunk.char_indices() {
            if is_punctuation(c) {
                if start < i {
                    out.push(&chunk[start..i]);
                }
                out.push(&chunk[i..i + c.len_utf8()]);
                start = i + c.len_utf8();
            }
        }
        if start < chunk.len() {
            out.push(&chunk[start..]);
        }
    }
    out
}

/// The Hugging Face `tokenizers` crate over the same `tokenizer.json` (native only), with
/// padding off and truncation at [`MAX_TOKENS`].
#[cfg(not(target_arch = "wasm32"))]
pub struct HfTokenizer(tokenizers::Tokenizer);

#[cfg(not(target_arch = "wasm32"))]
impl HfTokenizer {
    pub fn from_tokenizer_json(json: &[u8]) -> Result<Self, FeatureError> {
        let refused = |source| FeatureError::Tokenizer {
            file: "tokenizer.json".into(),
            source,
        };
        let mut t = tokenizers::Tokenizer::from_bytes(json).map_err(refused)?;
        t.with_padding(None);
        t.with_truncation(Some(tokenizers::TruncationParams {
            max_length: MAX_TOKENS,
            ..Default::default()
        }))
        .map_err(refused)?;
        Ok(HfTokenizer(t))
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, FeatureError> {
        Ok(self
            .0
            .encode(text, true)
            .map_err(FeatureError::Encode)?
            .get_ids()
            .to_vec())
    }
}

/// The BERT encoder of a sentence-transformers model (post-norm, exact GELU, LayerNorm 1e-12).
#[derive(Module, Debug)]
pub struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    emb_norm: LayerNorm,
    encoder: TransformerEncoder,
}

/// The architecture read from `config.json`.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub hidden_act: String,
}

impl Bert {
    /// Builds the encoder from `config.json` and `model.safetensors` bytes (Hugging Face names,
    /// with or without a `bert.` prefix).
    pub fn from_files(
        config: &[u8],
        weights: &[u8],
        device: &Device,
    ) -> Result<Self, FeatureError> {
        const WEIGHTS: &str = "model.safetensors";
        let cfg: BertConfig =
            serde_json::from_slice(config).map_err(|e| FeatureError::json("config.json", e))?;
        if !cfg.hidden_act.is_empty() && cfg.hidden_act != "gelu" {
            return Err(FeatureError::field(
                "config.json",
                "hidden_act",
                format!("activation {}, only gelu is supported", cfg.hidden_act),
            ));
        }
        let t = crate::util::weights::read_f32(weights)?;
        let h = cfg.hidden_size;
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, FeatureError> {
            let (s, v) = t
                .get(name)
                .or_else(|| t.get(&format!("bert.{name}")))
                .ok_or_else(|| FeatureError::NoTensor {
                    file: WEIGHTS.into(),
                    name: name.into(),
                })?;
            if s != shape {
                return Err(FeatureError::TensorShape {
                    file: WEIGHTS.into(),
                    name: name.into(),
                    got: s.clone(),
                    want: shape.to_vec(),
                });
            }
            Ok(v.clone())
        };
        let t1 =
            |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), device);
        let embedding = |name: &str, n: usize| -> Result<Embedding, FeatureError> {
            let mut e = EmbeddingConfig::new(n, h).init(device);
            e.weight = Param::from_tensor(Tensor::from_data(
                TensorData::new(get(name, &[n, h])?, [n, h]),
                device,
            ));
            Ok(e)
        };
        let norm = |name: &str| -> Result<LayerNorm, FeatureError> {
            let mut n = LayerNormConfig::new(h)
                .with_epsilon(cfg.layer_norm_eps)
                .init(device);
            n.gamma = Param::from_tensor(t1(get(&format!("{name}.weight"), &[h])?));
            n.beta = Some(Param::from_tensor(t1(get(&format!("{name}.bias"), &[h])?)));
            Ok(n)
        };
        // PyTorch stores Linear weights [out, in]; burn's are [in, out].
        let linear = |name: &str, inp: usize, out: usize| -> Result<Linear, FeatureError> {
            let mut l = LinearConfig::new(inp, out).init(device);
            let w = Tensor::<2>::from_data(
                TensorData::new(get(&format!("{name}.weight"), &[out, inp])?, [out, inp]),
                device,
            );
            l.weight = Param::from_tensor(w.transpose());
            l.bias = Some(Param::from_tensor(t1(get(
                &format!("{name}.bias"),
                &[out],
            )?)));
            Ok(l)
        };
        let mut encoder = TransformerEncoderConfig::new(
            h,
            cfg.intermediate_size,
            cfg.num_attention_heads,
            cfg.num_hidden_layers,
        )
        .with_dropout(0.0)
        .with_norm_first(false)
        .with_layer_norm_eps(cfg.layer_norm_eps)
        .init(device);
        for (i, layer) in encoder.layers.iter_mut().enumerate() {
            let p = format!("encoder.layer.{i}");
            layer.mha.query = linear(&format!("{p}.attention.self.query"), h, h)?;
            layer.mha.key = linear(&format!("{p}.attention.self.key"), h, h)?;
            layer.mha.value = linear(&format!("{p}.attention.self.value"), h, h)?;
            layer.mha.output = linear(&format!("{p}.attention.output.dense"), h, h)?;
            layer.norm_1 = norm(&format!("{p}.attention.output.LayerNorm"))?;
            layer.pwff.linear_inner =
                linear(&format!("{p}.intermediate.dense"), h, cfg.intermediate_size)?;
            layer.pwff.linear_outer =
                linear(&format!("{p}.output.dense"), cfg.intermediate_size, h)?;
            layer.norm_2 = norm(&format!("{p}.output.LayerNorm"))?;
        }
        Ok(Bert {
            word: embedding("embeddings.word_embeddings.weight", cfg.vocab_size)?,
            position: embedding(
                "embeddings.position_embeddings.weight",
                cfg.max_position_embeddings,
            )?,
            token_type: embedding(
                "embeddings.token_type_embeddings.weight",
                cfg.type_vocab_size,
            )?,
            emb_norm: norm("embeddings.LayerNorm")?,
            encoder,
        })
    }

    /// Sentence embeddings: mean of the token states over real tokens, L2-normalised.
    ///
    /// # Shapes
    /// - ids: `[batch, len]`, right-padded with 0; `lens[b]` real tokens in row `b`
    /// - output: `[batch, hidden]`
    pub fn embed(&self, ids: Tensor<2, Int>, lens: &[usize]) -> Tensor<2> {
        let [batch, len] = ids.dims();
        let device = ids.device();
        let positions = Tensor::<1, Int>::arange(0..len as i64, &device)
            .reshape([1, len])
            .repeat_dim(0, batch);
        let types = Tensor::<2, Int>::zeros([batch, len], &device);
        let x = self.word.forward(ids)
            + self.position.forward(positions)
            + self.token_type.forward(types);
        let x = self.emb_norm.forward(x);
        let keep: Vec<f32> = lens
            .iter()
            .flat_map(|&n| (0..len).map(move |i| if i < n { 1.0 } else { 0.0 }))
            .collect();
        let keep = Tensor::<2>::from_data(TensorData::new(keep, [batch, len]), &device);
        let pad: Tensor<2, Bool> = keep.clone().equal_elem(0.0);
        let x = self
            .encoder
            .forward(TransformerEncoderInput::new(x).mask_pad(pad));
        let keep3 = keep.clone().unsqueeze_dim::<3>(2);
        let summed = (x * keep3).sum_dim(1).squeeze_dim::<2>(1);
        let counts = keep.sum_dim(1).clamp_min(1e-9);
        let mean = summed / counts;
        let norm = mean
            .clone()
            .powf_scalar(2.0)
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12);
        mean / norm
    }
}

/// A sentence encoder: tokenizer and network.
pub struct SentenceEncoder {
    pub tokenizer: WordPiece,
    pub bert: Bert,
    device: Device,
}

impl SentenceEncoder {
    pub fn new(tokenizer: WordPiece, bert: Bert, device: &Device) -> Self {
        SentenceEncoder {
            tokenizer,
            bert,
            device: device.clone(),
        }
    }

    /// Embeds texts from their token ids, `batch` at a time (each batch padded to its longest).
    pub fn embed_ids(&self, all: &[Vec<u32>], batch: usize) -> Vec<Vec<f32>> {
        let mut out = Vec::with_capacity(all.len());
        for chunk in all.chunks(batch.max(1)) {
            let len = chunk.iter().map(Vec::len).max().unwrap_or(1).max(1);
            let mut flat = vec![0i64; chunk.len() * len];
            for (r, ids) in chunk.iter().enumerate() {
                for (c, &id) in ids.iter().enumerate() {
                    flat[r * len + c] = i64::from(id);
                }
            }
            let lens: Vec<usize> = chunk.iter().map(Vec::len).collect();
            let ids = Tensor::<2, Int>::from_data(
                TensorData::new(flat, [chunk.len(), len]),
                &self.device,
            );
            let e = self
                .bert
                .embed(ids, &lens)
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32 output");
            let dim = e.len() / chunk.len();
            out.extend(e.chunks_exact(dim).map(<[f32]>::to_vec));
        }
        out
    }

    /// Embeds texts with this crate's tokenizer.
    pub fn embed(&self, texts: &[&str], batch: usize) -> Vec<Vec<f32>> {
        let ids: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.tokenizer.encode(t, MAX_TOKENS))
            .collect();
        self.embed_ids(&ids, batch)
    }
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}
