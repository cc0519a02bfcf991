//! The trained parts (LoRA factors, projection, head, embedded signals): read from a model, restored into one, and written as safetensors (float32 or 8-bit blocks).

use std::collections::BTreeMap;

use burn::module::{LoraAdapter, Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};

use super::module::E4SRec;
use crate::model::ModelError;
use crate::util::weights;

impl E4SRec {
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
        if let Some(e) = &self.completion {
            m.insert("completion.weight".into(), e.weight.val());
        }
        if let Some(w) = &self.tag_proj {
            m.insert("tags.weight".into(), w.weight.val());
        }
        for (path, a) in self.adapters() {
            m.insert(format!("{path}.lora_a"), a.a.val());
            m.insert(format!("{path}.lora_b"), a.b.val());
        }
        m
    }

    /// Puts saved trained tensors ([`trained`](Self::trained)) back; every one must be present
    /// with its shape.
    pub fn load_trained(self, t: &BTreeMap<String, Tensor<2>>) -> Result<Self, ModelError> {
        let get = |name: &str, like: &[usize]| -> Result<Tensor<2>, ModelError> {
            let v = t.get(name).ok_or_else(|| ModelError::NoTensor {
                tensor: name.to_string(),
            })?;
            if v.dims()[..] != like[..] {
                return Err(ModelError::TensorShape {
                    tensor: name.to_string(),
                    got: v.dims().to_vec(),
                    want: like.to_vec(),
                });
            }
            Ok(v.clone())
        };
        let set_linear = |l: Linear, name: &str| -> Result<Linear, ModelError> {
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
            completion,
            tag_proj,
            tags,
            text,
            prefix,
            suffix,
            history,
        } = self;
        let completion = match completion {
            Some(mut e) => {
                let v = get("completion.weight", &e.weight.dims())?;
                e.weight = e.weight.map(|old| like(&old, v));
                Some(e)
            }
            None => None,
        };
        let tag_proj = match tag_proj {
            Some(l) => Some(set_linear(l, "tags")?),
            None => None,
        };
        let mut setter = SetFactors {
            factors,
            path: Vec::new(),
            applied: 0,
        };
        let llm = llm.map(&mut setter);
        if setter.applied != expected {
            return Err(ModelError::Invalid(format!(
                "{} of {expected} LoRA factors restored",
                setter.applied
            )));
        }
        Ok(Self {
            llm,
            proj: set_linear(proj, "proj")?,
            head: set_linear(head, "head")?,
            items,
            completion,
            tag_proj,
            tags,
            text,
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

pub use crate::util::weights::Q8_BLOCK;

/// 2-D tensors by name (an E4SRec's trained parts, say) as safetensors bytes: float32, or with
/// `q8` 8-bit symmetric values in blocks of [`Q8_BLOCK`] along the flattened tensor, each block
/// with an f32 scale stored as `NAME.q8scale`. Reads the tensors back from their device, so it
/// is for the native side (checkpoints, export).
pub fn trained_to_bytes(t: &BTreeMap<String, Tensor<2>>, q8: bool) -> Result<Vec<u8>, ModelError> {
    use weights::Dtype;
    let mut data: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, v) in t {
        let dims = v.dims().to_vec();
        let vals = v
            .clone()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| ModelError::ReadBack {
                tensor: name.clone(),
                reason: format!("{e:?}"),
            })?;
        if q8 {
            let (q, scales) = weights::q8_encode(&vals);
            let n = scales.len() / 4;
            data.push((name.clone(), Dtype::I8, dims, q));
            data.push((format!("{name}.q8scale"), Dtype::F32, vec![n], scales));
        } else {
            data.push((name.clone(), Dtype::F32, dims, weights::f32_bytes(&vals)));
        }
    }
    let raw: Vec<weights::RawTensor<'_>> = data
        .iter()
        .map(|(k, d, s, b)| (k.as_str(), *d, s.clone(), b.clone()))
        .collect();
    Ok(weights::write_tensors(&raw, None)?)
}

/// Reads [`trained_to_bytes`]'s tensors onto `device`, dequantizing 8-bit ones.
pub fn trained_from_bytes(
    bytes: &[u8],
    device: &Device,
) -> Result<BTreeMap<String, Tensor<2>>, ModelError> {
    let st = weights::WeightsFile::parse(bytes)?;
    let mut out = BTreeMap::new();
    for name in st.names() {
        if name.ends_with(".q8scale") {
            continue;
        }
        let (shape, vals) = st.f32_or_q8(&name)?;
        if shape.len() != 2 {
            return Err(ModelError::tensor(
                &name,
                format!("is not a 2-D tensor ({shape:?})"),
            ));
        }
        out.insert(
            name,
            Tensor::from_data(TensorData::new(vals, [shape[0], shape[1]]), device),
        );
    }
    Ok(out)
}
