//! Generation with a [`Llama`]: chat templates (ChatML, Llama 3), greedy and temperature/top-p
//! sampling with stop tokens, and constrained rating: a JSON object with exactly the requested
//! keys whose only free choices are the integer values 0-5, so even a small model always
//! answers in schema.

use super::error::LlmError;
use super::llama::{KvCache, Llama};
use super::tokenizer::BpeTokenizer;
use crate::util::rng::Rng;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// How a conversation becomes text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>role\ncontent<|im_end|>\n` (SmolLM2, Qwen2.5).
    ChatMl,
    /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>` after
    /// `<|begin_of_text|>` (Llama 3.x).
    Llama3,
}

impl ChatTemplate {
    /// The template a model's own Jinja template (`tokenizer.chat_template`) implies.
    pub fn detect(jinja: &str) -> Option<Self> {
        if jinja.contains("<|im_start|>") {
            Some(Self::ChatMl)
        } else if jinja.contains("<|start_header_id|>") {
            Some(Self::Llama3)
        } else {
            None
        }
    }

    /// `messages` as (role, content), then the assistant's turn opened.
    pub fn render(self, messages: &[(&str, &str)]) -> String {
        let mut s = String::new();
        match self {
            Self::ChatMl => {
                for (role, content) in messages {
                    s.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"));
                }
                s.push_str("<|im_start|>assistant\n");
            }
            Self::Llama3 => {
                s.push_str("<|begin_of_text|>");
                for (role, content) in messages {
                    s.push_str(&format!(
                        "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>"
                    ));
                }
                s.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
            }
        }
        s
    }

    /// The token that ends the assistant's turn.
    pub fn end_token(self) -> &'static str {
        match self {
            Self::ChatMl => "<|im_end|>",
            Self::Llama3 => "<|eot_id|>",
        }
    }
}

/// Token choice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    Greedy,
    /// Softmax at `temperature`, then the smallest set of tokens whose probability reaches
    /// `top_p`, drawn with a seeded generator.
    TopP {
        temperature: f32,
        top_p: f32,
        seed: u64,
    },
}

/// Counts for throughput reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    /// Tokens run through the model as prompt or forced text.
    pub prompt_tokens: usize,
    /// Tokens the model chose.
    pub generated: usize,
}

/// A decoding session: the model, its tokenizer and a KV cache.
pub struct Session<'a> {
    pub model: &'a Llama,
    pub tok: &'a BpeTokenizer,
    pub device: Device,
    cache: KvCache,
    /// Logits after the last token fed.
    last: Option<Vec<f32>>,
    pub counts: Counts,
}

impl<'a> Session<'a> {
    pub fn new(model: &'a Llama, tok: &'a BpeTokenizer, device: &Device) -> Self {
        Self {
            model,
            tok,
            device: device.clone(),
            cache: KvCache::default(),
            last: None,
            counts: Counts::default(),
        }
    }

    /// Runs `ids` through the model (continuing the cache) and keeps the last logits.
    pub fn feed(&mut self, ids: &[u32]) {
        if ids.is_empty() {
            return;
        }
        let v: Vec<i64> = ids.iter().map(|&t| i64::from(t)).collect();
        let x = Tensor::<2, Int>::from_data(TensorData::new(v, [1, ids.len()]), &self.device);
        let h = self.model.forward_tokens(x, &mut self.cache);
        let [_, l, d] = h.dims();
        let logits = self.model.logits(h.narrow(1, l - 1, 1).reshape([1, d]));
        self.last = Some(logits.into_data().try_to_vec::<f32>().expect("f32 logits"));
    }

    /// The `k` highest logits after the last token fed, as (token id, logit).
    pub fn top_logits(&self, k: usize) -> Vec<(u32, f32)> {
        let Some(l) = &self.last else { return vec![] };
        let mut v: Vec<(u32, f32)> = l.iter().enumerate().map(|(i, &x)| (i as u32, x)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.truncate(k);
        v
    }

    pub fn feed_text(&mut self, text: &str) {
        let ids = self.tok.encode(text);
        self.counts.prompt_tokens += ids.len();
        self.feed(&ids);
    }

    /// Generates up to `max_new` tokens, stopping after a token of `stop`; returns the ids.
    pub fn generate(&mut self, max_new: usize, sampling: Sampling, stop: &[u32]) -> Vec<u32> {
        let mut rng = match sampling {
            Sampling::TopP { seed, .. } => Some(Rng::new(seed)),
            Sampling::Greedy => None,
        };
        let mut out = Vec::new();
        for _ in 0..max_new {
            let Some(logits) = self.last.as_ref() else {
                break;
            };
            let next = match (sampling, rng.as_mut()) {
                (
                    Sampling::TopP {
                        temperature, top_p, ..
                    },
                    Some(r),
                ) if temperature > 0.0 => sample_top_p(logits, temperature, top_p, r),
                _ => argmax(logits),
            };
            out.push(next);
            self.counts.generated += 1;
            if stop.contains(&next) {
                break;
            }
            self.feed(&[next]);
        }
        out
    }

    /// A second session that continues from this one's tokens (the KV cache is shared, not
    /// recomputed), so one prompt prefix can be followed by several different suffixes.
    pub fn fork(&self) -> Session<'a> {
        Session {
            model: self.model,
            tok: self.tok,
            device: self.device.clone(),
            cache: self.cache.clone(),
            last: self.last.clone(),
            counts: Counts::default(),
        }
    }

    /// The token ids of the digits `0`..`5`.
    fn digit_ids(&self) -> Result<Vec<u32>, LlmError> {
        (0..=5)
            .map(|d| {
                let token = d.to_string();
                self.tok.id(&token).ok_or(LlmError::NoToken { token })
            })
            .collect()
    }

    /// The model's probabilities of the next token being `0`..`5`, renormalised over those six.
    pub fn digit_probs(&self) -> Result<[f32; 6], LlmError> {
        let digits = self.digit_ids()?;
        let logits = self.last.as_ref().ok_or(LlmError::NothingFed)?;
        let sub: Vec<f32> = digits.iter().map(|&t| logits[t as usize]).collect();
        Ok(softmax(&sub, 1.0).try_into().expect("six digits"))
    }

    /// Forces `{"k1": v1, "k2": v2, ...}` with exactly `keys`; the model picks each value among
    /// the tokens `0`..`5`. Returns the values and the probability the model gave each choice.
    pub fn rate(&mut self, keys: &[&str]) -> Result<(Vec<u8>, Vec<[f32; 6]>), LlmError> {
        let digits = self.digit_ids()?;
        let mut values = Vec::with_capacity(keys.len());
        let mut probs = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let lead = if i == 0 { "{\"" } else { ", \"" };
            self.feed_text(&format!("{lead}{key}\": "));
            let p = self.digit_probs()?;
            let best = argmax(&p) as usize;
            values.push(best as u8);
            probs.push(p);
            self.counts.generated += 1;
            self.feed(&[digits[best]]);
        }
        self.feed_text("}");
        Ok((values, probs))
    }
}

fn argmax(v: &[f32]) -> u32 {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i as u32)
}

/// Probabilities of `logits / temperature`.
fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let m = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let e: Vec<f32> = logits
        .iter()
        .map(|x| ((x - m) / temperature).exp())
        .collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// Temperature and nucleus (top-p) sampling.
pub fn sample_top_p(logits: &[f32], temperature: f32, top_p: f32, rng: &mut Rng) -> u32 {
    let p = softmax(logits, temperature);
    let mut order: Vec<u32> = (0..p.len() as u32).collect();
    order.sort_by(|&a, &b| p[b as usize].total_cmp(&p[a as usize]));
    let mut kept = Vec::new();
    let mut mass = 0f32;
    for &i in &order {
        kept.push(i);
        mass += p[i as usize];
        if mass >= top_p {
            break;
        }
    }
    let mut x = rng.f64() as f32 * mass;
    for &i in &kept {
        x -= p[i as usize];
        if x <= 0.0 {
            return i;
        }
    }
    *kept.last().expect("at least one token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_as_the_models_expect() {
        let m = [("system", "Be brief."), ("user", "Hi")];
        assert_eq!(
            ChatTemplate::ChatMl.render(&m),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            ChatTemplate::Llama3.render(&m[1..]),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
        assert_eq!(
            ChatTemplate::detect("{{'<|im_start|>' + message['role']}}"),
            Some(ChatTemplate::ChatMl)
        );
        assert_eq!(ChatTemplate::detect("{{ bos_token }}"), None);
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        let logits = [5.0f32, 4.0, 0.0, -3.0];
        let mut rng = Rng::new(1);
        let mut seen = [0usize; 4];
        for _ in 0..2000 {
            seen[sample_top_p(&logits, 1.0, 0.9, &mut rng) as usize] += 1;
        }
        // p = 0.72, 0.27, 0.005, ...: top-p 0.9 keeps the first two only.
        assert!(seen[0] > 1300 && seen[1] > 400, "{seen:?}");
        assert_eq!(seen[2] + seen[3], 0, "{seen:?}");
        // A tiny temperature is greedy.
        assert_eq!(sample_top_p(&logits, 0.01, 1.0, &mut rng), 0);
    }
}
