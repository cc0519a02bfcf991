//! A Llama-architecture decoder in burn: token embeddings, `n_layers` pre-norm blocks (RMSNorm,
//! grouped-query attention with rotary position embeddings and a KV cache, RMSNorm, SwiGLU
//! MLP), a final RMSNorm and an output projection (tied to the embeddings where the model has
//! none of its own). Configurations for SmolLM2, Llama 3.x and Qwen2.5 (q/k/v biases) differ only
//! in sizes, rotary base, biases and tying.
//!
//! Two entry points: [`Llama::forward_tokens`] from token ids and [`Llama::forward_embeds`] from
//! input embeddings (E4SRec places item vectors between instruction tokens this way).
//!
//! Rotary layout: GGUF files of the `llama` architecture store Q and K permuted so that rotary
//! pairs are adjacent dimensions `(2i, 2i + 1)` (llama.cpp's "normal" mode); Hugging Face
//! checkpoints and Qwen2 pair `i` with `i + head_dim / 2` ("NeoX" mode). The config says which.

use super::error::LlmError;
use super::gguf::{Gguf, Value};
use crate::util::weights::WeightsFile;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, RmsNorm};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

#[derive(Config, Debug, PartialEq)]
pub struct LlamaConfig {
    pub vocab: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_ff: usize,
    #[config(default = 10000.0)]
    pub rope_theta: f64,
    #[config(default = 1e-5)]
    pub rms_eps: f64,
    /// Longest sequence (prompt and generated tokens) the rotary tables cover.
    #[config(default = 2048)]
    pub max_len: usize,
    /// Rotary pairs `(2i, 2i + 1)` (GGUF `llama`) rather than `(i, i + head_dim / 2)`.
    #[config(default = true)]
    pub rope_interleaved: bool,
    /// Biases on the q, k and v projections (Qwen2).
    #[config(default = false)]
    pub qkv_bias: bool,
    /// The output projection is the token embedding table.
    #[config(default = true)]
    pub tie_embeddings: bool,
}

impl LlamaConfig {
    /// A decoder with random weights (normal, standard deviation 0.02; norms at 1), for tests
    /// and small experiments. Seeded by the device's generator.
    pub fn init(&self, device: &Device) -> Llama {
        let (d, hd) = (self.d_model, self.head_dim());
        let normal = |rows: usize, cols: usize| {
            Tensor::<2>::random([rows, cols], Distribution::Normal(0.0, 0.02), device)
        };
        let lin = |inp: usize, out: usize, bias: bool| Linear {
            weight: Param::from_tensor(normal(inp, out)),
            bias: bias.then(|| Param::from_tensor(Tensor::zeros([out], device))),
        };
        let norm = || rms(vec![1.0; d], self.rms_eps, device);
        let kv = self.n_kv_heads * hd;
        let layers = (0..self.n_layers)
            .map(|_| Block {
                attn_norm: norm(),
                attn: Attention {
                    q: lin(d, self.n_heads * hd, self.qkv_bias),
                    k: lin(d, kv, self.qkv_bias),
                    v: lin(d, kv, self.qkv_bias),
                    o: lin(self.n_heads * hd, d, false),
                },
                ffn_norm: norm(),
                mlp: Mlp {
                    gate: lin(d, self.d_ff, false),
                    up: lin(d, self.d_ff, false),
                    down: lin(self.d_ff, d, false),
                },
            })
            .collect();
        let (cos, sin) = rope_tables(self, device);
        Llama {
            embed: Param::from_tensor(normal(self.vocab, d)),
            layers,
            norm: norm(),
            output: (!self.tie_embeddings).then(|| Param::from_tensor(normal(self.vocab, d))),
            cos,
            sin,
            rope_theta: self.rope_theta,
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            head_dim: hd,
            rope_interleaved: self.rope_interleaved,
        }
    }

    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// SmolLM2-135M(-Instruct).
    pub fn smollm2_135m() -> Self {
        Self::new(49152, 576, 30, 9, 3, 1536).with_rope_theta(100000.0)
    }

    /// Llama 3.2 1B.
    pub fn llama3_2_1b() -> Self {
        Self::new(128256, 2048, 16, 32, 8, 8192)
            .with_rope_theta(500000.0)
            .with_max_len(8192)
    }

    /// Qwen2.5 0.5B (biases on q, k, v; NeoX rotary layout in its Hugging Face checkpoint).
    pub fn qwen2_5_0_5b() -> Self {
        Self::new(151936, 896, 24, 14, 2, 4864)
            .with_rope_theta(1000000.0)
            .with_rms_eps(1e-6)
            .with_qkv_bias(true)
            .with_rope_interleaved(false)
    }

    /// From a GGUF file's metadata (`llama` or `qwen2` architecture).
    pub fn from_gguf(g: &Gguf) -> Result<Self, LlmError> {
        const ARCH: &str = "general.architecture";
        let arch = g.require(ARCH, |v| v.as_str().map(str::to_string))?;
        if arch != "llama" && arch != "qwen2" {
            return Err(LlmError::metadata(
                ARCH,
                format!("architecture '{arch}' is not a Llama-style decoder (llama, qwen2)"),
            ));
        }
        let u = |k: &str| -> Result<usize, LlmError> {
            g.require(&format!("{arch}.{k}"), Value::as_u64)
                .map(|v| v as usize)
        };
        let vocab = match g.get(&format!("{arch}.vocab_size")).and_then(Value::as_u64) {
            Some(v) => v as usize,
            None => g
                .get("tokenizer.ggml.tokens")
                .and_then(Value::as_array)
                .map(<[Value]>::len)
                .ok_or_else(|| {
                    LlmError::metadata(format!("{arch}.vocab_size"), "no vocabulary size")
                })?,
        };
        let mut c = Self::new(
            vocab,
            u("embedding_length")?,
            u("block_count")?,
            u("attention.head_count")?,
            u("attention.head_count_kv").or_else(|_| u("attention.head_count"))?,
            u("feed_forward_length")?,
        );
        if let Some(t) = g
            .get(&format!("{arch}.rope.freq_base"))
            .and_then(Value::as_f64)
        {
            c.rope_theta = t;
        }
        if let Some(e) = g
            .get(&format!("{arch}.attention.layer_norm_rms_epsilon"))
            .and_then(Value::as_f64)
        {
            c.rms_eps = e;
        }
        if let Some(n) = g
            .get(&format!("{arch}.context_length"))
            .and_then(Value::as_u64)
        {
            c.max_len = (n as usize).min(8192);
        }
        c.qkv_bias = g.tensor("blk.0.attn_q.bias").is_some();
        c.rope_interleaved = arch == "llama";
        c.tie_embeddings = g.tensor("output.weight").is_none();
        c.check()
            .map_err(|(key, why)| LlmError::metadata(format!("{arch}.{key}"), why))?;
        let last = format!("blk.{}.attn_norm.weight", c.n_layers - 1);
        if g.tensor(&last).is_none() {
            return Err(LlmError::metadata(
                format!("{arch}.block_count"),
                format!("{} blocks, but the file has no tensor '{last}'", c.n_layers),
            ));
        }
        Ok(c)
    }

    /// Refuses sizes no Llama-style decoder has (zero, beyond [`LIMITS`], heads that do not
    /// divide the width), before anything is allocated from them. The error names the
    /// metadata key (without the architecture) and the problem.
    fn check(&self) -> Result<(), (&'static str, String)> {
        let sizes = [
            ("vocab_size", self.vocab),
            ("embedding_length", self.d_model),
            ("block_count", self.n_layers),
            ("attention.head_count", self.n_heads),
            ("attention.head_count_kv", self.n_kv_heads),
            ("feed_forward_length", self.d_ff),
            ("context_length", self.max_len),
        ];
        for ((key, v), (_, max)) in sizes.iter().zip(LIMITS) {
            if *v == 0 || *v > max {
                return Err((key, format!("{v} is not between 1 and {max}")));
            }
        }
        if !self.d_model.is_multiple_of(self.n_heads)
            || !self.n_heads.is_multiple_of(self.n_kv_heads)
            || !self.head_dim().is_multiple_of(2)
        {
            return Err((
                "attention.head_count",
                format!(
                    "{} heads, {} key/value heads and width {} do not divide into even heads",
                    self.n_heads, self.n_kv_heads, self.d_model
                ),
            ));
        }
        Ok(())
    }
}

/// The largest sizes accepted from a model file, in [`LlamaConfig::check`]'s order: well
/// above every released Llama-style decoder (Llama 3.1 405B: width 16384, 126 blocks, 128
/// heads, feed-forward 53248, vocabulary 128256), far below what would exhaust memory.
const LIMITS: [(&str, usize); 7] = [
    ("vocab_size", 1 << 20),
    ("embedding_length", 1 << 15),
    ("block_count", 512),
    ("attention.head_count", 1024),
    ("attention.head_count_kv", 1024),
    ("feed_forward_length", 1 << 18),
    ("context_length", 1 << 20),
];

/// Reads a named weight as float32 after checking its `[out, in]` (or `[n]`) shape.
type WeightReader<'a> = dyn Fn(&str, &[usize]) -> Result<Vec<f32>, LlmError> + 'a;

/// An error unless tensor `name`'s shape `got` is `want`.
fn check_shape(name: &str, got: Vec<usize>, want: &[usize]) -> Result<(), LlmError> {
    if got == want {
        return Ok(());
    }
    Err(LlmError::Shape {
        name: name.to_string(),
        got,
        want: want.to_vec(),
    })
}

/// The attention bias that hides a key position ([`Llama::forward_embeds_masked`]).
pub const MASKED: f32 = -1e9;

#[derive(Module, Debug)]
pub struct Attention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

#[derive(Module, Debug)]
pub struct Block {
    pub attn_norm: RmsNorm,
    pub attn: Attention,
    pub ffn_norm: RmsNorm,
    pub mlp: Mlp,
}

#[derive(Module, Debug)]
pub struct Llama {
    /// `[vocab, d_model]`.
    pub embed: Param<Tensor<2>>,
    pub layers: Vec<Block>,
    pub norm: RmsNorm,
    /// `[vocab, d_model]`; `None` when tied to `embed`.
    pub output: Option<Param<Tensor<2>>>,
    /// `[max_len, head_dim / 2]`, not trained; positions past them are computed when met.
    pub cos: Tensor<2>,
    pub sin: Tensor<2>,
    pub rope_theta: f64,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rope_interleaved: bool,
}

/// Keys and values of the positions seen so far, per layer.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    /// Per layer: `[batch, n_kv_heads, seen, head_dim]`.
    pub layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
}

impl KvCache {
    /// Number of positions cached.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |(k, _)| k.dims()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn linear(w: Vec<f32>, out: usize, inp: usize, bias: Option<Vec<f32>>, device: &Device) -> Linear {
    // Stored `[out, in]` (PyTorch's layout); burn's Linear multiplies by `[in, out]`. Transposed
    // here on the host so the weight is contiguous: a transposed view would be copied by every
    // matrix product.
    let mut t = vec![0f32; w.len()];
    for o in 0..out {
        for i in 0..inp {
            t[i * out + o] = w[o * inp + i];
        }
    }
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(t, [inp, out]), device)),
        bias: bias
            .map(|b| Param::from_tensor(Tensor::from_data(TensorData::new(b, [out]), device))),
    }
}

fn rms(w: Vec<f32>, eps: f64, device: &Device) -> RmsNorm {
    let n = w.len();
    RmsNorm {
        gamma: Param::from_tensor(Tensor::from_data(TensorData::new(w, [n]), device)),
        epsilon: eps,
    }
}

/// Rotary tables of the configured context.
fn rope_tables(c: &LlamaConfig, device: &Device) -> (Tensor<2>, Tensor<2>) {
    rope_rows(c.rope_theta, c.head_dim(), 0..c.max_len, device)
}

/// Rotary tables for `positions`: angle `pos * theta^(-2i / head_dim)` for `i < head_dim / 2`.
///
/// # Shapes
/// - output: cos and sin, each `[positions.len(), head_dim / 2]`
fn rope_rows(
    theta: f64,
    head_dim: usize,
    positions: std::ops::Range<usize>,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    let half = head_dim / 2;
    let freqs: Vec<f64> = (0..half)
        .map(|i| theta.powf(-2.0 * i as f64 / head_dim as f64))
        .collect();
    let n = positions.len();
    let mut cos = Vec::with_capacity(n * half);
    let mut sin = Vec::with_capacity(n * half);
    for p in positions {
        for &freq in &freqs {
            let a = p as f64 * freq;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    (
        Tensor::from_data(TensorData::new(cos, [n, half]), device),
        Tensor::from_data(TensorData::new(sin, [n, half]), device),
    )
}

impl Llama {
    /// Loads every weight of a GGUF file (dequantized to float32).
    pub fn from_gguf(g: &Gguf, device: &Device) -> Result<(Self, LlamaConfig), LlmError> {
        let c = LlamaConfig::from_gguf(g)?;
        let names = |part: &str, layer: usize| -> String {
            let l = format!("blk.{layer}");
            match part {
                "embed" => "token_embd.weight".into(),
                "norm" => "output_norm.weight".into(),
                "output" => "output.weight".into(),
                "attn_norm" => format!("{l}.attn_norm.weight"),
                "ffn_norm" => format!("{l}.ffn_norm.weight"),
                "q" | "k" | "v" => format!("{l}.attn_{part}"),
                "o" => format!("{l}.attn_output"),
                other => format!("{l}.ffn_{other}"),
            }
        };
        let get = |name: &str, want: &[usize]| -> Result<Vec<f32>, LlmError> {
            let got = g
                .tensor(name)
                .ok_or_else(|| LlmError::NoTensor {
                    name: name.to_string(),
                })?
                .shape();
            check_shape(name, got, want)?;
            Ok(g.dequantize(name)?)
        };
        Ok((Self::assemble(&c, &names, &get, device)?, c))
    }

    /// Builds the decoder from named `[out, in]` weights: `names(part, layer)` gives a tensor's
    /// name (linear layers without their `.weight`/`.bias` suffix), `get(name, shape)` its
    /// float32 values after checking its shape.
    fn assemble(
        c: &LlamaConfig,
        names: &dyn Fn(&str, usize) -> String,
        get: &WeightReader,
        device: &Device,
    ) -> Result<Self, LlmError> {
        let (d, hd, kv) = (c.d_model, c.head_dim(), c.n_kv_heads * c.head_dim());
        let lin = |name: String, out: usize, inp: usize, bias: bool| -> Result<Linear, LlmError> {
            let w = get(&format!("{name}.weight"), &[out, inp])?;
            let b = if bias {
                Some(get(&format!("{name}.bias"), &[out])?)
            } else {
                None
            };
            Ok(linear(w, out, inp, b, device))
        };
        let norm = |name: String| -> Result<RmsNorm, LlmError> {
            Ok(rms(get(&name, &[d])?, c.rms_eps, device))
        };
        let mut layers = Vec::new();
        for l in 0..c.n_layers {
            layers.push(Block {
                attn_norm: norm(names("attn_norm", l))?,
                attn: Attention {
                    q: lin(names("q", l), c.n_heads * hd, d, c.qkv_bias)?,
                    k: lin(names("k", l), kv, d, c.qkv_bias)?,
                    v: lin(names("v", l), kv, d, c.qkv_bias)?,
                    o: lin(names("o", l), d, c.n_heads * hd, false)?,
                },
                ffn_norm: norm(names("ffn_norm", l))?,
                mlp: Mlp {
                    gate: lin(names("gate", l), c.d_ff, d, false)?,
                    up: lin(names("up", l), c.d_ff, d, false)?,
                    down: lin(names("down", l), d, c.d_ff, false)?,
                },
            });
        }
        let table = |name: String| -> Result<Param<Tensor<2>>, LlmError> {
            Ok(Param::from_tensor(Tensor::from_data(
                TensorData::new(get(&name, &[c.vocab, d])?, [c.vocab, d]),
                device,
            )))
        };
        let output = if c.tie_embeddings {
            None
        } else {
            Some(table(names("output", 0))?)
        };
        let (cos, sin) = rope_tables(c, device);
        Ok(Llama {
            embed: table(names("embed", 0))?,
            layers,
            norm: norm(names("norm", 0))?,
            output,
            cos,
            sin,
            rope_theta: c.rope_theta,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: hd,
            rope_interleaved: c.rope_interleaved,
        })
    }

    /// Embeddings of token ids.
    ///
    /// # Shapes
    /// - ids: `[batch, len]`
    /// - output: `[batch, len, d_model]`
    pub fn embed_tokens(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [b, l] = ids.dims();
        let d = self.embed.dims()[1];
        self.embed
            .val()
            .select(0, ids.reshape([b * l]))
            .reshape([b, l, d])
    }

    /// Hidden states (after the final norm) of token ids, continuing `cache`.
    ///
    /// # Shapes
    /// - ids: `[batch, len]`
    /// - output: `[batch, len, d_model]`
    pub fn forward_tokens(&self, ids: Tensor<2, Int>, cache: &mut KvCache) -> Tensor<3> {
        self.forward_embeds(self.embed_tokens(ids), cache)
    }

    /// Hidden states (after the final norm) from input embeddings, continuing `cache`.
    ///
    /// # Shapes
    /// - x: `[batch, len, d_model]`
    /// - output: `[batch, len, d_model]`
    pub fn forward_embeds(&self, x: Tensor<3>, cache: &mut KvCache) -> Tensor<3> {
        self.forward_embeds_masked(x, cache, None)
    }

    /// [`forward_embeds`](Self::forward_embeds) with some key positions hidden from every query:
    /// `key_bias` is added to the attention scores (0 to keep, [`MASKED`] to hide), so a batch of
    /// left-padded sequences gives each row what it would give alone. A large finite value rather
    /// than minus infinity keeps the padding rows themselves finite.
    ///
    /// # Shapes
    /// - x: `[batch, len, d_model]`
    /// - key_bias: `[batch, cache.len() + len]`
    /// - output: `[batch, len, d_model]`
    pub fn forward_embeds_masked(
        &self,
        mut x: Tensor<3>,
        cache: &mut KvCache,
        key_bias: Option<Tensor<2>>,
    ) -> Tensor<3> {
        let start = cache.len();
        let key_bias = key_bias.map(|k| {
            let [b, t] = k.dims();
            k.reshape([b, 1, 1, t])
        });
        if cache.layers.len() != self.layers.len() {
            cache.layers = vec![None; self.layers.len()];
        }
        for (block, slot) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let h = self.attention(
                &block.attn,
                block.attn_norm.forward(x.clone()),
                start,
                slot,
                key_bias.clone(),
            );
            x = x + h;
            let n = block.ffn_norm.forward(x.clone());
            let m = &block.mlp;
            x = x + m
                .down
                .forward(silu(m.gate.forward(n.clone())) * m.up.forward(n));
        }
        self.norm.forward(x)
    }

    /// Next-token logits from hidden states.
    ///
    /// # Shapes
    /// - hidden: `[n, d_model]`
    /// - output: `[n, vocab]`
    pub fn logits(&self, hidden: Tensor<2>) -> Tensor<2> {
        let w = match &self.output {
            Some(o) => o.val(),
            None => self.embed.val(),
        };
        // `[vocab, d] x [d, n]`, then transposed: the large table is read in its own layout.
        w.matmul(hidden.transpose()).transpose()
    }

    /// Rotates `x` (`[batch, heads, len, head_dim]`) for positions `start..start + len`.
    fn rope(&self, x: Tensor<4>, start: usize) -> Tensor<4> {
        let [b, h, l, hd] = x.dims();
        let half = hd / 2;
        let (cos, sin) = if start + l <= self.cos.dims()[0] {
            (
                self.cos.clone().narrow(0, start, l),
                self.sin.clone().narrow(0, start, l),
            )
        } else {
            // Beyond the tables (a file's short context_length, a long prompt).
            rope_rows(self.rope_theta, hd, start..start + l, &x.device())
        };
        let cos = cos.reshape([1, 1, l, half]);
        let sin = sin.reshape([1, 1, l, half]);
        if self.rope_interleaved {
            // Pairs (2i, 2i + 1).
            let p = x.reshape([b, h, l, half, 2]);
            let x0 = p.clone().narrow(4, 0, 1).reshape([b, h, l, half]);
            let x1 = p.narrow(4, 1, 1).reshape([b, h, l, half]);
            let r0 = x0.clone() * cos.clone() - x1.clone() * sin.clone();
            let r1 = x0 * sin + x1 * cos;
            Tensor::stack::<5>(vec![r0, r1], 4).reshape([b, h, l, hd])
        } else {
            // Pairs (i, i + half).
            let x0 = x.clone().narrow(3, 0, half);
            let x1 = x.narrow(3, half, half);
            let r0 = x0.clone() * cos.clone() - x1.clone() * sin.clone();
            let r1 = x0 * sin + x1 * cos;
            Tensor::cat(vec![r0, r1], 3)
        }
    }

    fn attention(
        &self,
        a: &Attention,
        x: Tensor<3>,
        start: usize,
        slot: &mut Option<(Tensor<4>, Tensor<4>)>,
        key_bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let [b, l, _] = x.dims();
        let (h, kvh, hd) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let heads = |t: Tensor<3>, n: usize| t.reshape([b, l, n, hd]).swap_dims(1, 2);
        let q = self.rope(heads(a.q.forward(x.clone()), h), start);
        let k = self.rope(heads(a.k.forward(x.clone()), kvh), start);
        let v = heads(a.v.forward(x), kvh);
        let (k, v) = match slot.take() {
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            None => (k, v),
        };
        *slot = Some((k.clone(), v.clone()));
        let total = k.dims()[2];
        // Grouped-query attention: each key/value head serves h / kvh query heads.
        let rep = h / kvh;
        let expand = |t: Tensor<4>| {
            t.unsqueeze_dim::<5>(2)
                .expand([b, kvh, rep, total, hd])
                .reshape([b, h, total, hd])
        };
        let (k, v) = (expand(k), expand(v));
        let mut scores = q.matmul(k.swap_dims(2, 3)) / (hd as f64).sqrt();
        if l > 1 {
            // Query i (position start + i) sees keys up to start + i.
            let mut mask = vec![0f32; l * total];
            for i in 0..l {
                for j in start + i + 1..total {
                    mask[i * total + j] = f32::NEG_INFINITY;
                }
            }
            let mask = Tensor::<2>::from_data(TensorData::new(mask, [l, total]), &scores.device())
                .reshape([1, 1, l, total]);
            scores = scores + mask;
        }
        if let Some(k) = key_bias {
            scores = scores + k;
        }
        let out = softmax(scores, 3).matmul(v); // [b, h, l, hd]
        a.o.forward(out.swap_dims(1, 2).reshape([b, l, h * hd]))
    }
}

impl Llama {
    /// Greedy decoding: up to `n` tokens after `prompt`, stopping after any of `stop`.
    pub fn greedy(&self, prompt: &[u32], n: usize, stop: &[u32], device: &Device) -> Vec<u32> {
        let mut cache = KvCache::default();
        let ids: Vec<i64> = prompt.iter().map(|&t| i64::from(t)).collect();
        let mut input =
            Tensor::<2, Int>::from_data(TensorData::new(ids, [1, prompt.len()]), device);
        let mut out = Vec::new();
        for _ in 0..n {
            let h = self.forward_tokens(input, &mut cache);
            let l = h.dims()[1];
            let d = h.dims()[2];
            let logits = self.logits(h.narrow(1, l - 1, 1).reshape([1, d]));
            let next = logits
                .argmax(1)
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .expect("ids")[0];
            out.push(next as u32);
            if stop.contains(&(next as u32)) {
                break;
            }
            input = Tensor::from_data(TensorData::new(vec![next], [1, 1]), device);
        }
        out
    }
}

impl LlamaConfig {
    /// From a Hugging Face `config.json` (`model_type` `llama` or `qwen2`). Checkpoints in that
    /// format pair rotary dimensions `i` and `i + head_dim / 2`.
    pub fn from_hf_json(text: &str) -> Result<Self, LlmError> {
        const FILE: &str = "config.json";
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| LlmError::json(FILE, e))?;
        let kind = v["model_type"].as_str().unwrap_or_default();
        if kind != "llama" && kind != "qwen2" {
            return Err(LlmError::field(
                FILE,
                "model_type",
                format!("model_type '{kind}' is not a Llama-style decoder (llama, qwen2)"),
            ));
        }
        let u = |k: &str| -> Result<usize, LlmError> {
            v[k].as_u64()
                .map(|x| x as usize)
                .ok_or_else(|| LlmError::field(FILE, k, format!("no integer '{k}'")))
        };
        let heads = u("num_attention_heads")?;
        let c = Self::new(
            u("vocab_size")?,
            u("hidden_size")?,
            u("num_hidden_layers")?,
            heads,
            u("num_key_value_heads").unwrap_or(heads),
            u("intermediate_size")?,
        )
        .with_rope_theta(v["rope_theta"].as_f64().unwrap_or(10000.0))
        .with_rms_eps(v["rms_norm_eps"].as_f64().unwrap_or(1e-5))
        .with_max_len(u("max_position_embeddings").unwrap_or(2048).min(8192))
        .with_rope_interleaved(false)
        .with_qkv_bias(kind == "qwen2")
        .with_tie_embeddings(v["tie_word_embeddings"].as_bool().unwrap_or(false));
        c.check()
            .map_err(|(key, why)| LlmError::field(FILE, key, why))?;
        Ok(c)
    }
}

impl Llama {
    /// Loads a Hugging Face checkpoint: `config` from its `config.json` and the bytes of its
    /// safetensors file(s) (one, or the shards of `model.safetensors.index.json`); F32, F16
    /// and BF16 tensors.
    pub fn from_safetensors(
        config: &LlamaConfig,
        shards: &[&[u8]],
        device: &Device,
    ) -> Result<Self, LlmError> {
        let files = shards
            .iter()
            .enumerate()
            .map(|(i, b)| {
                WeightsFile::parse(b).map_err(|source| LlmError::Shard {
                    shard: i + 1,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let names = |part: &str, layer: usize| -> String {
            let l = format!("model.layers.{layer}");
            match part {
                "embed" => "model.embed_tokens.weight".into(),
                "norm" => "model.norm.weight".into(),
                "output" => "lm_head.weight".into(),
                "attn_norm" => format!("{l}.input_layernorm.weight"),
                "ffn_norm" => format!("{l}.post_attention_layernorm.weight"),
                "q" | "k" | "v" | "o" => format!("{l}.self_attn.{part}_proj"),
                other => format!("{l}.mlp.{other}_proj"),
            }
        };
        let get = |name: &str, want: &[usize]| -> Result<Vec<f32>, LlmError> {
            let f = files
                .iter()
                .find(|f| f.has(name))
                .ok_or_else(|| LlmError::NoTensor {
                    name: name.to_string(),
                })?;
            let (dtype, shape, _) = f.raw(name)?;
            check_shape(name, shape, want)?;
            f.f32(name).map(|(_, v)| v).map_err(|_| LlmError::Dtype {
                name: name.to_string(),
                dtype: format!("{dtype:?}"),
            })
        };
        Self::assemble(config, &names, &get, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::gguf::{self, GgmlType};

    /// A one-block decoder (vocabulary 8, width 4, 2 heads over 1 key/value head) as GGUF
    /// bytes, with `block_count` and `context_length` as given.
    fn tiny(block_count: u32, context_length: u32) -> Vec<u8> {
        let f32s = |n: usize| -> Vec<u8> {
            (0..n)
                .flat_map(|i| ((i as f32 * 0.37).sin() * 0.5).to_le_bytes())
                .collect()
        };
        // GGUF lists dimensions innermost first: `[in, out]` for an `[out, in]` weight.
        let t = |name: &'static str, dims: Vec<u64>| {
            let n = dims.iter().product::<u64>() as usize;
            (name, dims, GgmlType::F32, f32s(n))
        };
        let u = |v: u32| Value::U32(v);
        gguf::write(
            &[
                ("general.architecture", Value::String("llama".into())),
                ("llama.vocab_size", u(8)),
                ("llama.embedding_length", u(4)),
                ("llama.block_count", u(block_count)),
                ("llama.attention.head_count", u(2)),
                ("llama.attention.head_count_kv", u(1)),
                ("llama.feed_forward_length", u(8)),
                ("llama.context_length", u(context_length)),
            ],
            &[
                t("token_embd.weight", vec![4, 8]),
                t("blk.0.attn_norm.weight", vec![4]),
                t("blk.0.attn_q.weight", vec![4, 4]),
                t("blk.0.attn_k.weight", vec![4, 2]),
                t("blk.0.attn_v.weight", vec![4, 2]),
                t("blk.0.attn_output.weight", vec![4, 4]),
                t("blk.0.ffn_norm.weight", vec![4]),
                t("blk.0.ffn_gate.weight", vec![4, 8]),
                t("blk.0.ffn_up.weight", vec![4, 8]),
                t("blk.0.ffn_down.weight", vec![8, 4]),
                t("output_norm.weight", vec![4]),
            ],
        )
    }

    fn config_error(block_count: u32, context_length: u32) -> String {
        let g = Gguf::parse(tiny(block_count, context_length)).unwrap();
        LlamaConfig::from_gguf(&g).unwrap_err().to_string()
    }

    #[test]
    fn sizes_in_a_model_file_are_checked_before_anything_is_allocated() {
        let e = config_error(1, 0);
        assert!(
            e.contains("llama.context_length") && e.contains("0 is not"),
            "{e}"
        );
        let e = config_error(0xFFFF_FFFF, 64);
        assert!(
            e.contains("llama.block_count") && e.contains("4294967295"),
            "{e}"
        );
        let e = config_error(2, 64);
        assert!(e.contains("blk.1.attn_norm.weight"), "{e}");
    }

    #[test]
    fn a_prompt_longer_than_the_files_context_runs_as_with_a_longer_context() {
        let d = Device::flex();
        let run = |context: u32| -> Vec<f32> {
            let g = Gguf::parse(tiny(1, context)).unwrap();
            let (m, _) = Llama::from_gguf(&g, &d).unwrap();
            let ids =
                Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 5, 2, 7, 3], [1, 5]), &d);
            m.forward_tokens(ids, &mut KvCache::default())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let short = run(2);
        let long = run(64);
        for (a, b) in short.iter().zip(&long) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
