//! E4SRec (Li et al. 2023): an LLM reads a listener's history as one soft token per track and
//! a trained head ranks the whole catalogue from its last hidden state.
//!
//! The item representation is frozen: a trained backbone's item table (id embeddings, or fused
//! id + content rows, or the content-only encoder's rows). A trained linear projection maps each
//! row into the LLM's width. The input is the instruction's tokens, then the history's soft
//! tokens, then the response marker, run through the decoder from embeddings
//! ([`Llama::forward_embeds_masked`]); the last position's hidden state goes through a trained
//! item head with one output per track. The decoder's weights stay frozen; LoRA adapters
//! (burn's [`Lora`]) on the configured projections, the projection and the head are all that
//! train, and all that [`E4SRec::trained`] returns for saving.
//!
//! A batch is left-padded: padding positions come first and are hidden from every query by a key
//! bias, so each row scores as it would alone (rotary attention depends only on relative
//! positions).

use std::collections::BTreeMap;

use burn::module::{Lora, LoraAdapter, Module, Param, ParamGroup};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::llm::generate::ChatTemplate;
use crate::llm::llama::{KvCache, Llama, MASKED};
use crate::llm::tokenizer::BpeTokenizer;

/// Where the history goes in the instruction.
pub const ITEMS: &str = "{items}";

/// The projections LoRA can adapt, by their short names.
pub const LORA_TARGETS: [&str; 7] = ["q", "k", "v", "o", "gate", "up", "down"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct E4SRecConfig {
    /// Most recent history items read (older ones are dropped).
    pub history: usize,
    pub lora_rank: usize,
    pub lora_alpha: f64,
    /// Adapted projections, among [`LORA_TARGETS`] (E4SRec: the MLP's gate, up and down).
    pub lora_targets: Vec<String>,
    /// The user message; [`ITEMS`] marks where the soft tokens go.
    pub instruction: String,
    /// Text after the assistant marker, before the position whose state is read.
    pub response: String,
}

impl Default for E4SRecConfig {
    fn default() -> Self {
        Self {
            history: 50,
            lora_rank: 16,
            lora_alpha: 16.0,
            lora_targets: vec!["gate".into(), "up".into(), "down".into()],
            instruction: format!(
                "Given the tracks a listener played, in order, predict the next track.\nHistory: {ITEMS}"
            ),
            response: "Next track:".into(),
        }
    }
}

impl E4SRecConfig {
    /// The LoRA targets as a pattern over the decoder's parameter paths.
    fn lora_group(&self) -> Result<ParamGroup, String> {
        let mut alts = Vec::new();
        for t in &self.lora_targets {
            let path = match t.as_str() {
                "q" | "k" | "v" | "o" => format!("attn\\.{t}"),
                "gate" | "up" | "down" => format!("mlp\\.{t}"),
                _ => {
                    return Err(format!(
                        "unknown LoRA target '{t}' (one of {})",
                        LORA_TARGETS.join(", ")
                    ));
                }
            };
            alts.push(path);
        }
        if alts.is_empty() {
            return Err("no LoRA target".into());
        }
        let re = format!("^layers\\.[0-9]+\\.({})\\.weight$", alts.join("|"));
        ParamGroup::from_regex(&re).map_err(|e| format!("{re}: {e:?}"))
    }

    /// The token ids before and after the soft tokens.
    pub fn prompt_ids(
        &self,
        tok: &BpeTokenizer,
        template: ChatTemplate,
    ) -> Result<(Vec<u32>, Vec<u32>), String> {
        let text = template.render(&[("user", &self.instruction)]) + &self.response;
        let (before, after) = text
            .split_once(ITEMS)
            .ok_or_else(|| format!("the instruction has no {ITEMS}"))?;
        Ok((tok.encode(before), tok.encode(after)))
    }

    /// An E4SRec over `llm` (frozen, LoRA attached) and the frozen item table `items`
    /// (`[n_items, item_dim]`, row `t` for track `t`); projection and head are new.
    pub fn init(
        &self,
        llm: Llama,
        items: Tensor<2>,
        prompt: (&[u32], &[u32]),
        device: &Device,
    ) -> Result<E4SRec, String> {
        if self.history == 0 {
            return Err("history must be at least 1".into());
        }
        if self.lora_rank == 0 {
            return Err("lora_rank must be at least 1".into());
        }
        if prompt.1.is_empty() {
            return Err("nothing follows the history: the last position would be an item".into());
        }
        let llm = llm.apply_lora(
            Lora::new(self.lora_rank, self.lora_alpha).set_param_group(self.lora_group()?),
        );
        let [n_items, item_dim] = items.dims();
        let d = llm.embed.dims()[1];
        let embed = |ids: &[u32]| {
            let t = Tensor::<1, Int>::from_data(
                TensorData::new(ids.iter().map(|&i| i64::from(i)).collect(), [ids.len()]),
                device,
            );
            llm.embed.val().select(0, t).detach()
        };
        let (prefix, suffix) = (embed(prompt.0), embed(prompt.1));
        Ok(E4SRec {
            proj: LinearConfig::new(item_dim, d).init(device),
            head: LinearConfig::new(d, n_items).init(device),
            items: items.detach(),
            prefix,
            suffix,
            llm,
            history: self.history,
        })
    }
}

#[derive(Module, Debug)]
pub struct E4SRec {
    /// The decoder: frozen weights, trainable LoRA factors.
    pub llm: Llama,
    /// `[item_dim] -> [d_model]`, trained.
    pub proj: Linear,
    /// `[d_model] -> [n_items]`, trained.
    pub head: Linear,
    /// `[n_items, item_dim]`, frozen.
    pub items: Tensor<2>,
    /// Embeddings of the tokens before and after the history: `[p, d_model]`, `[s, d_model]`.
    pub prefix: Tensor<2>,
    pub suffix: Tensor<2>,
    pub history: usize,
}

impl E4SRec {
    pub fn n_items(&self) -> usize {
        self.items.dims()[0]
    }

    /// Scores of every track as the next one after each history (tracks `0..n_items`).
    ///
    /// # Shapes
    /// - output: `[histories.len(), n_items]`
    pub fn forward(&self, histories: &[&[u32]]) -> Tensor<2> {
        let device = self.items.device();
        let b = histories.len();
        let l = histories
            .iter()
            .map(|h| h.len().min(self.history))
            .max()
            .unwrap_or(0)
            .max(1);
        let (p, s, d) = (
            self.prefix.dims()[0],
            self.suffix.dims()[0],
            self.prefix.dims()[1],
        );
        let t = l + p + s;
        // Rows of one table [prefix; suffix; soft tokens of every slot] in sequence order.
        let mut slots = vec![0i64; b * l];
        let mut order = vec![0i64; b * t];
        let mut bias = vec![0f32; b * t];
        for (r, h) in histories.iter().enumerate() {
            let take = &h[h.len().saturating_sub(l)..];
            let pad = l - take.len();
            for (j, &it) in take.iter().enumerate() {
                slots[r * l + j] = i64::from(it);
            }
            for k in 0..t {
                let i = r * t + k;
                order[i] = if k < pad {
                    bias[i] = MASKED;
                    0
                } else if k < pad + p {
                    (k - pad) as i64
                } else if k < pad + p + take.len() {
                    (p + s + r * l + (k - pad - p)) as i64
                } else {
                    (p + k - pad - p - take.len()) as i64
                };
            }
        }
        let ints = |v: Vec<i64>| {
            let n = v.len();
            Tensor::<1, Int>::from_data(TensorData::new(v, [n]), &device)
        };
        let soft = self.proj.forward(self.items.clone().select(0, ints(slots)));
        let table = Tensor::cat(vec![self.prefix.clone(), self.suffix.clone(), soft], 0);
        let x = table.select(0, ints(order)).reshape([b, t, d]);
        let bias = Tensor::<2>::from_data(TensorData::new(bias, [b, t]), &device);
        let hidden = self
            .llm
            .forward_embeds_masked(x, &mut KvCache::default(), Some(bias));
        self.head
            .forward(hidden.narrow(1, t - 1, 1).reshape([b, d]))
    }

    /// The decoder's adapted projections: path and adapter.
    pub fn adapters(&self) -> Vec<(String, &LoraAdapter)> {
        let mut out = Vec::new();
        for (i, block) in self.llm.layers.iter().enumerate() {
            let lin = [
                ("attn.q", &block.attn.q),
                ("attn.k", &block.attn.k),
                ("attn.v", &block.attn.v),
                ("attn.o", &block.attn.o),
                ("mlp.gate", &block.mlp.gate),
                ("mlp.up", &block.mlp.up),
                ("mlp.down", &block.mlp.down),
            ];
            for (name, l) in lin {
                if let Some(a) = l.weight.adapter() {
                    out.push((format!("layers.{i}.{name}"), a));
                }
            }
        }
        out
    }

    /// Every trained tensor by name (`proj.weight`, `head.bias`, `layers.3.mlp.up.lora_a`...):
    /// what a checkpoint holds. The decoder's own weights are not among them.
    pub fn trained(&self) -> BTreeMap<String, Tensor<2>> {
        let mut m = BTreeMap::new();
        let row = |t: Tensor<1>| t.unsqueeze_dim::<2>(0);
        m.insert("proj.weight".into(), self.proj.weight.val());
        m.insert("head.weight".into(), self.head.weight.val());
        if let Some(b) = &self.proj.bias {
            m.insert("proj.bias".into(), row(b.val()));
        }
        if let Some(b) = &self.head.bias {
            m.insert("head.bias".into(), row(b.val()));
        }
        for (path, a) in self.adapters() {
            m.insert(format!("{path}.lora_a"), a.a.val());
            m.insert(format!("{path}.lora_b"), a.b.val());
        }
        m
    }

    /// Puts saved trained tensors ([`trained`](Self::trained)) back; every one must be present
    /// with its shape.
    pub fn load_trained(self, t: &BTreeMap<String, Tensor<2>>) -> Result<Self, String> {
        let get = |name: &str, like: &[usize]| -> Result<Tensor<2>, String> {
            let v = t
                .get(name)
                .ok_or_else(|| format!("no tensor '{name}' in the checkpoint"))?;
            if v.dims()[..] != like[..] {
                return Err(format!(
                    "'{name}' is {:?}, the model needs {like:?}",
                    v.dims()
                ));
            }
            Ok(v.clone())
        };
        let set_linear = |l: Linear, name: &str| -> Result<Linear, String> {
            let w = get(&format!("{name}.weight"), &l.weight.dims())?;
            let bias = match l.bias {
                Some(b) => {
                    let n = b.dims()[0];
                    let v = get(&format!("{name}.bias"), &[1, n])?.reshape([n]);
                    Some(b.map(|old| like(&old, v)))
                }
                None => None,
            };
            Ok(Linear {
                weight: l.weight.map(|old| like(&old, w)),
                bias,
            })
        };
        // The adapters' factors sit in the decoder's parameter tree under the adapted weight:
        // `layers.0.mlp.up.weight.lora.a`.
        let mut factors = BTreeMap::new();
        for (path, a) in self.adapters() {
            for (f, p) in [("a", &a.a), ("b", &a.b)] {
                let v = get(&format!("{path}.lora_{f}"), &p.dims())?;
                factors.insert(format!("{path}.weight.lora.{f}"), v);
            }
        }
        let expected = factors.len();
        let Self {
            llm,
            proj,
            head,
            items,
            prefix,
            suffix,
            history,
        } = self;
        let mut setter = SetFactors {
            factors,
            path: Vec::new(),
            applied: 0,
        };
        let llm = llm.map(&mut setter);
        if setter.applied != expected {
            return Err(format!(
                "{} of {expected} LoRA factors restored",
                setter.applied
            ));
        }
        Ok(Self {
            llm,
            proj: set_linear(proj, "proj")?,
            head: set_linear(head, "head")?,
            items,
            prefix,
            suffix,
            history,
        })
    }
}

/// `new` in place of a parameter's value `old`, tracked for gradients when `old` was (a
/// restored checkpoint that trains on after a resume).
fn like<const D: usize>(old: &Tensor<D>, new: Tensor<D>) -> Tensor<D> {
    if old.is_require_grad() {
        new.detach().require_grad()
    } else {
        new
    }
}

/// Replaces the values of the parameters at the given paths (the LoRA factors).
struct SetFactors {
    factors: BTreeMap<String, Tensor<2>>,
    path: Vec<String>,
    applied: usize,
}

impl burn::module::ModuleMapper for SetFactors {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self.factors.get(&self.path.join(".")) {
            Some(v) if D == 2 => {
                self.applied += 1;
                let v: Tensor<D> = v.clone().reshape(param.dims());
                param.map(|old| like(&old, v))
            }
            _ => param,
        }
    }
}

/// Values per scale in [`trained_to_bytes`]'s 8-bit blocks.
pub const Q8_BLOCK: usize = 64;

/// 2-D tensors by name (an E4SRec's trained parts, say) as safetensors bytes: float32, or with
/// `q8` 8-bit symmetric values in blocks of [`Q8_BLOCK`] along the flattened tensor, each block
/// with an f32 scale stored as `NAME.q8scale`. Reads the tensors back from their device, so it
/// is for the native side (checkpoints, export).
pub fn trained_to_bytes(t: &BTreeMap<String, Tensor<2>>, q8: bool) -> Result<Vec<u8>, String> {
    let mut data: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, v) in t {
        let dims = v.dims().to_vec();
        let vals = v
            .clone()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| format!("{name}: {e:?}"))?;
        if q8 {
            let mut q = Vec::with_capacity(vals.len());
            let mut scales = Vec::with_capacity(vals.len().div_ceil(Q8_BLOCK) * 4);
            for block in vals.chunks(Q8_BLOCK) {
                let max = block.iter().fold(0f32, |m, x| m.max(x.abs()));
                let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
                scales.extend_from_slice(&scale.to_le_bytes());
                q.extend(
                    block
                        .iter()
                        .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8 as u8),
                );
            }
            let n = scales.len() / 4;
            data.push((name.clone(), safetensors::Dtype::I8, dims, q));
            data.push((
                format!("{name}.q8scale"),
                safetensors::Dtype::F32,
                vec![n],
                scales,
            ));
        } else {
            let bytes = vals.iter().flat_map(|x| x.to_le_bytes()).collect();
            data.push((name.clone(), safetensors::Dtype::F32, dims, bytes));
        }
    }
    let views = data
        .iter()
        .map(|(k, dtype, dims, b)| {
            safetensors::tensor::TensorView::new(*dtype, dims.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| format!("{k}: {e}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    safetensors::serialize(views, None).map_err(|e| e.to_string())
}

/// Reads [`trained_to_bytes`]'s tensors onto `device`, dequantizing 8-bit ones.
pub fn trained_from_bytes(
    bytes: &[u8],
    device: &Device,
) -> Result<BTreeMap<String, Tensor<2>>, String> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if name.ends_with(".q8scale") {
            continue;
        }
        let shape = view.shape().to_vec();
        if shape.len() != 2 {
            return Err(format!("'{name}' is not a 2-D tensor ({shape:?})"));
        }
        let f32s = |b: &[u8]| -> Vec<f32> {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let vals: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => f32s(view.data()),
            safetensors::Dtype::I8 => {
                let scales = st
                    .tensor(&format!("{name}.q8scale"))
                    .map_err(|_| format!("'{name}' is 8-bit but has no '{name}.q8scale'"))?;
                let scales = f32s(scales.data());
                let n = view.data().len();
                if scales.len() != n.div_ceil(Q8_BLOCK) {
                    return Err(format!(
                        "'{name}.q8scale' has {} scales for {n} values in blocks of {Q8_BLOCK}",
                        scales.len()
                    ));
                }
                view.data()
                    .iter()
                    .enumerate()
                    .map(|(i, &q)| f32::from(q as i8) * scales[i / Q8_BLOCK])
                    .collect()
            }
            d => return Err(format!("'{name}' is {d:?}, not F32 or I8")),
        };
        out.insert(
            name,
            Tensor::from_data(TensorData::new(vals, [shape[0], shape[1]]), device),
        );
    }
    Ok(out)
}

/// Zero-shot ranking without any trained part: the log-likelihood the LLM gives each candidate
/// text (say "Title by Artist") as the continuation of `prompt` (a text rendering of the
/// history), summed over the candidate's tokens, with the token count. The prompt is run once;
/// the candidates continue copies of its KV cache, [`CONTINUATION_BATCH`] at a time (right-padded:
/// under the causal mask the padding after a candidate's last token changes none of its scores).
pub fn continuation_log_likelihood(
    llm: &Llama,
    tok: &BpeTokenizer,
    prompt: &str,
    candidates: &[&str],
    device: &Device,
) -> Vec<(f64, usize)> {
    use burn::tensor::activation::log_softmax;
    let p = tok.encode(prompt);
    let mut cache = KvCache::default();
    let hidden = llm.forward_tokens(int_rows(&[&p], p.len(), device), &mut cache);
    let [_, n, d] = hidden.dims();
    let first: Vec<f32> = log_softmax(llm.logits(hidden.narrow(1, n - 1, 1).reshape([1, d])), 1)
        .into_data()
        .try_to_vec::<f32>()
        .expect("float logits");
    let toks: Vec<Vec<u32>> = candidates.iter().map(|c| tok.encode(c)).collect();
    let mut out: Vec<(f64, usize)> = toks
        .iter()
        .map(|c| {
            c.first()
                .map_or((0.0, 0), |&c0| (f64::from(first[c0 as usize]), c.len()))
        })
        .collect();
    // Candidates of two or more tokens: the rest of their tokens, each predicted from the ones
    // before it.
    let longer: Vec<usize> = (0..toks.len()).filter(|&i| toks[i].len() > 1).collect();
    for group in longer.chunks(CONTINUATION_BATCH) {
        let b = group.len();
        let len = group.iter().map(|&i| toks[i].len() - 1).max().unwrap_or(1);
        let inputs: Vec<&[u32]> = group
            .iter()
            .map(|&i| &toks[i][..toks[i].len() - 1])
            .collect();
        let targets: Vec<&[u32]> = group.iter().map(|&i| &toks[i][1..]).collect();
        let mut cc = KvCache {
            layers: cache
                .layers
                .iter()
                .map(|l| {
                    l.as_ref()
                        .map(|(k, v)| (k.clone().repeat_dim(0, b), v.clone().repeat_dim(0, b)))
                })
                .collect(),
        };
        let h = llm.forward_tokens(int_rows(&inputs, len, device), &mut cc);
        let lp = log_softmax(llm.logits(h.reshape([b * len, d])), 1)
            .gather(1, int_rows(&targets, len, device).reshape([b * len, 1]));
        let lp: Vec<f32> = lp.into_data().try_to_vec::<f32>().expect("float log-probs");
        for (j, &i) in group.iter().enumerate() {
            out[i].0 += lp[j * len..j * len + targets[j].len()]
                .iter()
                .map(|&x| f64::from(x))
                .sum::<f64>();
        }
    }
    out
}

/// How many candidates [`continuation_log_likelihood`] continues at once.
pub const CONTINUATION_BATCH: usize = 16;

/// Token rows right-padded with 0 to `len`, as `[rows, len]`.
fn int_rows(rows: &[&[u32]], len: usize, device: &Device) -> Tensor<2, Int> {
    let mut v = vec![0i64; rows.len() * len];
    for (r, row) in rows.iter().enumerate() {
        for (j, &t) in row.iter().enumerate() {
            v[r * len + j] = i64::from(t);
        }
    }
    Tensor::from_data(TensorData::new(v, [rows.len(), len]), device)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::llm::llama::LlamaConfig;
    use burn::optim::{AdamWConfig, GradientsParams};
    use burn::tensor::Distribution;
    use burn::tensor::loss::cross_entropy_with_logits;

    /// A small decoder and item table.
    fn base(dev: &Device) -> (Llama, Tensor<2>) {
        dev.seed(1);
        let llm = LlamaConfig::new(40, 16, 2, 2, 1, 32)
            .with_max_len(64)
            .init(dev);
        let items = Tensor::<2>::random([12, 8], Distribution::Normal(0.0, 1.0), dev);
        (llm, items)
    }

    /// E4SRec over `base`; `seed` draws the trained parts.
    fn on(base: &(Llama, Tensor<2>), dev: &Device, seed: u64, cfg: &E4SRecConfig) -> E4SRec {
        dev.seed(seed);
        cfg.init(base.0.clone(), base.1.clone(), (&[1, 2, 3], &[4, 5]), dev)
            .unwrap()
    }

    fn tiny(dev: &Device, seed: u64, cfg: &E4SRecConfig) -> E4SRec {
        on(&base(dev), dev, seed, cfg)
    }

    fn host(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn onehot(targets: &[usize], n: usize, dev: &Device) -> Tensor<2> {
        let mut v = vec![0f32; targets.len() * n];
        for (r, &t) in targets.iter().enumerate() {
            v[r * n + t] = 1.0;
        }
        Tensor::from_data(TensorData::new(v, [targets.len(), n]), dev)
    }

    #[test]
    fn a_padded_batch_scores_each_history_as_it_would_alone() {
        let dev = Device::flex();
        let m = tiny(&dev, 1, &E4SRecConfig::default());
        let hs: [&[u32]; 3] = [&[3, 4, 5, 6, 7], &[2], &[9, 1, 0]];
        let batch = host(m.forward(&hs));
        assert_eq!(batch.len(), 3 * 12);
        for (r, h) in hs.iter().enumerate() {
            let alone = host(m.forward(&[h]));
            for (a, b) in alone.iter().zip(&batch[r * 12..(r + 1) * 12]) {
                assert!((a - b).abs() < 1e-4, "row {r}: {a} vs {b}");
            }
        }
        // Only the last `history` items are read.
        let cfg = E4SRecConfig {
            history: 2,
            ..E4SRecConfig::default()
        };
        let m = tiny(&dev, 1, &cfg);
        assert_eq!(
            host(m.forward(&[&[3, 4, 5]])),
            host(m.forward(&[&[9, 4, 5]]))
        );
    }

    #[test]
    fn gradients_reach_only_lora_projection_and_head() {
        let dev = Device::flex().autodiff();
        let m = tiny(&dev, 2, &E4SRecConfig::default());
        // Adapters on gate, up and down of both layers only.
        let paths: Vec<String> = m.adapters().into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths.len(), 6, "{paths:?}");
        assert!(paths.iter().all(|p| p.contains(".mlp.")), "{paths:?}");
        let logits = m.forward(&[&[1, 2, 3], &[4]]);
        let loss = cross_entropy_with_logits(logits, onehot(&[4, 5], 12, &dev));
        let grads = loss.backward();
        let norm = |g: Option<Tensor<2>>| g.map(|g| g.abs().sum().into_scalar::<f32>());
        assert!(norm(m.proj.weight.grad(&grads)).is_some_and(|g| g > 0.0));
        assert!(norm(m.head.weight.grad(&grads)).is_some_and(|g| g > 0.0));
        for (p, a) in m.adapters() {
            // B starts at zero, so A's first gradient is zero; B's is not.
            assert!(a.a.grad(&grads).is_some(), "{p}: no gradient for A");
            assert!(norm(a.b.grad(&grads)).is_some_and(|g| g > 0.0), "{p}: B");
        }
        assert!(
            m.llm.embed.grad(&grads).is_none(),
            "token embeddings are frozen"
        );
        for b in &m.llm.layers {
            for l in [
                &b.attn.q,
                &b.attn.k,
                &b.attn.v,
                &b.attn.o,
                &b.mlp.gate,
                &b.mlp.up,
                &b.mlp.down,
            ] {
                assert!(
                    l.weight.grad(&grads).is_none(),
                    "a decoder weight would train"
                );
            }
            assert!(b.attn_norm.gamma.grad(&grads).is_none());
        }
        assert!(m.items.grad(&grads).is_none(), "the item table is frozen");
        let names: Vec<String> = m.trained().into_keys().collect();
        assert_eq!(names.len(), 4 + 12, "{names:?}");
    }

    #[test]
    fn a_tiny_model_learns_and_its_trained_parts_round_trip() {
        let dev = Device::flex().autodiff();
        let cfg = E4SRecConfig {
            lora_targets: vec!["q".into(), "v".into(), "down".into()],
            lora_rank: 4,
            ..E4SRecConfig::default()
        };
        // One base for the trained model and the fresh one it is restored into (burn's
        // generator is shared by tests running at the same time).
        let shared = base(&dev);
        let mut m = on(&shared, &dev, 3, &cfg);
        // Next track = last track + 1 (mod 12).
        let hs: Vec<Vec<u32>> = (0..12u32)
            .map(|i| vec![(i + 10) % 12, (i + 11) % 12, i])
            .collect();
        let hist: Vec<&[u32]> = hs.iter().map(Vec::as_slice).collect();
        let targets: Vec<usize> = (0..12).map(|i| (i + 1) % 12).collect();
        let y = onehot(&targets, 12, &dev);
        let mut opt = AdamWConfig::new().init();
        let mut losses = Vec::new();
        for _ in 0..60 {
            let loss = cross_entropy_with_logits(m.forward(&hist), y.clone());
            losses.push(loss.clone().into_scalar::<f32>());
            let g = GradientsParams::from_grads(loss.backward(), &m);
            m = opt.step(0.01, m, g);
        }
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(last < first * 0.2, "loss {first} -> {last}");
        let hits = host(m.forward(&hist))
            .chunks(12)
            .zip(&targets)
            .filter(|(row, t)| {
                let best = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .unwrap()
                    .0;
                best == **t
            })
            .count();
        assert!(hits >= 11, "{hits}/12 next tracks ranked first");

        // Trained parts into a fresh model (other random projection, head and adapters).
        let saved = m.trained();
        let fresh = on(&shared, &dev, 99, &cfg);
        assert_ne!(host(fresh.forward(&hist)), host(m.forward(&hist)));
        let back = fresh.load_trained(&saved).unwrap();
        for (k, v) in back.trained() {
            assert_eq!(host(v), host(saved[&k].clone()), "{k}");
        }
        let (a, b) = (host(back.forward(&hist)), host(m.forward(&hist)));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        let mut broken = saved.clone();
        broken.remove("layers.1.attn.v.lora_b");
        let err = on(&shared, &dev, 5, &cfg)
            .load_trained(&broken)
            .unwrap_err();
        assert!(err.contains("layers.1.attn.v.lora_b"), "{err}");
    }

    #[test]
    fn a_bad_configuration_is_refused() {
        let dev = Device::flex();
        let llm = LlamaConfig::new(40, 16, 1, 2, 1, 32).init(&dev);
        let items = Tensor::<2>::zeros([5, 4], &dev);
        let cfg = E4SRecConfig {
            lora_targets: vec!["ffn".into()],
            ..E4SRecConfig::default()
        };
        let err = cfg.init(llm, items, (&[1], &[2]), &dev).unwrap_err();
        assert!(err.contains("unknown LoRA target 'ffn'"), "{err}");
    }
}
