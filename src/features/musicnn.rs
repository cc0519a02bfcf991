//! musicnn (Pons & Serra, 2019), the MSD model: a musically motivated CNN music tagger, as burn
//! modules. Input: patches of 187 frames x 96 log-mel bands (about 3 s, see [`super::dsp`]).
//! Output per patch: 50 tag probabilities and the 200-d penultimate embedding.
//!
//! Layout (`musicnn/models.py`, `build_musicnn` with 1.6 front-end filters, 64 mid-end filters,
//! 200 back-end units; batch norms use epsilon 1e-3 and follow each ReLU):
//! - front end: batch norm of the input; two timbral convolutions (7x38 and 7x67 over time x
//!   frequency, 204 filters, time padded by 3 each side) and three temporal ones (128x1, 64x1,
//!   32x1, 51 filters, TF "same" padding), each ReLU, batch norm, then max over frequency;
//!   concatenated to 561 features per frame;
//! - mid end: three 1-D convolutions over time (kernel 7, 64 filters, ReLU, batch norm), the
//!   second and third residual; the front end and the three outputs are concatenated (753);
//! - back end: max and mean over time (interleaved, 1506), batch norm, dense 200 + ReLU, batch
//!   norm (the penultimate embedding), dense 50, sigmoid.
//!
//! Weights are the package's TF1 checkpoint converted to safetensors under their TensorFlow names
//! and layouts ([`convert_checkpoint`]); [`Musicnn::from_safetensors`] permutes them into burn's.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor, TensorData};

use super::error::FeatureError;

/// The 50 MSD tags, in output order (`musicnn/configuration.py`).
pub const MSD_TAGS: [&str; 50] = [
    "rock",
    "pop",
    "alternative",
    "indie",
    "electronic",
    "female vocalists",
    "dance",
    "00s",
    "alternative rock",
    "jazz",
    "beautiful",
    "metal",
    "chillout",
    "male vocalists",
    "classic rock",
    "soul",
    "indie rock",
    "Mellow",
    "electronica",
    "80s",
    "folk",
    "90s",
    "chill",
    "instrumental",
    "punk",
    "oldies",
    "blues",
    "hard rock",
    "ambient",
    "acoustic",
    "experimental",
    "female vocalist",
    "guitar",
    "Hip-Hop",
    "70s",
    "party",
    "country",
    "easy listening",
    "sexy",
    "catchy",
    "funk",
    "electro",
    "heavy metal",
    "Progressive rock",
    "60s",
    "rnb",
    "indie pop",
    "sad",
    "House",
    "happy",
];

/// Frames per patch (3 s at 16 kHz, hop 256) and the embedding sizes.
pub const PATCH_FRAMES: usize = 187;
pub const EMBEDDING_DIM: usize = 200;
pub const N_TAGS: usize = 50;

const BN_EPS: f64 = 1e-3;

#[derive(Module, Debug)]
pub struct Musicnn {
    bn_input: BatchNorm,
    timbral: Vec<Conv2d>,
    bn_timbral: Vec<BatchNorm>,
    temporal: Vec<Conv2d>,
    bn_temporal: Vec<BatchNorm>,
    mid: Vec<Conv1d>,
    bn_mid: Vec<BatchNorm>,
    bn_pool: BatchNorm,
    dense: Linear,
    bn_dense: BatchNorm,
    out: Linear,
}

/// Per-patch outputs.
#[derive(Debug)]
pub struct MusicnnOutput {
    /// `[patches, 50]` sigmoid probabilities.
    pub tags: Tensor<2>,
    /// `[patches, 200]` penultimate embedding (after its batch norm).
    pub embedding: Tensor<2>,
}

/// Temporal kernel heights.
const TEMPORAL: [usize; 3] = [128, 64, 32];

pub use crate::util::weights::NamedTensors;

impl Musicnn {
    /// Builds the network from TF-named tensors (see the module docs for the names' order).
    pub fn from_tensors(t: &NamedTensors, device: &Device) -> Result<Self, FeatureError> {
        const FILE: &str = "musicnn weights";
        let get = |name: &str, shape: &[usize]| -> Result<Tensor<1>, FeatureError> {
            let (s, v) = t.get(name).ok_or_else(|| FeatureError::NoTensor {
                file: FILE.into(),
                name: name.into(),
            })?;
            if s != shape {
                return Err(FeatureError::TensorShape {
                    file: FILE.into(),
                    name: name.into(),
                    got: s.clone(),
                    want: shape.to_vec(),
                });
            }
            Ok(Tensor::from_data(
                TensorData::new(v.clone(), [v.len()]),
                device,
            ))
        };
        let bn = |i: usize, n: usize| -> Result<BatchNorm, FeatureError> {
            let p = if i == 0 {
                "batch_normalization".to_string()
            } else {
                format!("batch_normalization_{i}")
            };
            let mut m = BatchNormConfig::new(n).with_epsilon(BN_EPS).init(device);
            m.gamma = Param::from_tensor(get(&format!("{p}/gamma"), &[n])?);
            m.beta = Param::from_tensor(get(&format!("{p}/beta"), &[n])?);
            m.running_mean =
                burn::module::RunningState::new(get(&format!("{p}/moving_mean"), &[n])?);
            m.running_var =
                burn::module::RunningState::new(get(&format!("{p}/moving_variance"), &[n])?);
            Ok(m)
        };
        let conv_name = |i: usize| {
            if i == 0 {
                "conv2d".to_string()
            } else {
                format!("conv2d_{i}")
            }
        };
        // TF kernel [kh, kw, in, out] -> burn Conv2d [out, in, kh, kw].
        let conv2d = |i: usize, kh: usize, kw: usize, out: usize| -> Result<Conv2d, FeatureError> {
            let p = conv_name(i);
            let w = get(&format!("{p}/kernel"), &[kh, kw, 1, out])?
                .reshape([kh, kw, 1, out])
                .permute([3, 2, 0, 1]);
            let mut m = Conv2dConfig::new([1, out], [kh, kw]).init(device);
            m.weight = Param::from_tensor(w);
            m.bias = Some(Param::from_tensor(get(&format!("{p}/bias"), &[out])?));
            Ok(m)
        };
        // TF kernel [7, in, 1, out] over (time, features) -> burn Conv1d [out, in, 7].
        let conv1d = |i: usize, inp: usize, out: usize| -> Result<Conv1d, FeatureError> {
            let p = conv_name(i);
            let w = get(&format!("{p}/kernel"), &[7, inp, 1, out])?
                .reshape([7, inp, out])
                .permute([2, 1, 0]);
            let mut m = Conv1dConfig::new(inp, out, 7)
                .with_padding(PaddingConfig1d::Explicit(3, 3))
                .init(device);
            m.weight = Param::from_tensor(w);
            m.bias = Some(Param::from_tensor(get(&format!("{p}/bias"), &[out])?));
            Ok(m)
        };
        let linear = |name: &str, inp: usize, out: usize| -> Result<Linear, FeatureError> {
            let mut m = LinearConfig::new(inp, out).init(device);
            m.weight = Param::from_tensor(
                get(&format!("{name}/kernel"), &[inp, out])?.reshape([inp, out]),
            );
            m.bias = Some(Param::from_tensor(get(&format!("{name}/bias"), &[out])?));
            Ok(m)
        };
        Ok(Musicnn {
            bn_input: bn(0, 1)?,
            timbral: vec![conv2d(0, 7, 38, 204)?, conv2d(1, 7, 67, 204)?],
            bn_timbral: vec![bn(1, 204)?, bn(2, 204)?],
            temporal: vec![
                conv2d(2, 128, 1, 51)?,
                conv2d(3, 64, 1, 51)?,
                conv2d(4, 32, 1, 51)?,
            ],
            bn_temporal: vec![bn(3, 51)?, bn(4, 51)?, bn(5, 51)?],
            mid: vec![conv1d(5, 561, 64)?, conv1d(6, 64, 64)?, conv1d(7, 64, 64)?],
            bn_mid: vec![bn(6, 64)?, bn(7, 64)?, bn(8, 64)?],
            bn_pool: bn(9, 1506)?,
            dense: linear("dense", 1506, 200)?,
            bn_dense: bn(10, 200)?,
            out: linear("dense_1", 200, 50)?,
        })
    }

    /// Loads the network from a safetensors file of TF-named tensors.
    pub fn from_safetensors(bytes: &[u8], device: &Device) -> Result<Self, FeatureError> {
        Self::from_tensors(&crate::util::weights::read_f32(bytes)?, device)
    }

    /// # Shapes
    /// - patches: `[batch, frames, 96]` log-mel (any `frames`; trained on 187)
    pub fn forward(&self, patches: Tensor<3>) -> MusicnnOutput {
        let [batch, frames, mels] = patches.dims();
        let x = self
            .bn_input
            .forward(patches.reshape([batch, 1, frames, mels]));
        let mut front: Vec<Tensor<3>> = Vec::with_capacity(5);
        // Timbral: time padded by 3 each side, valid convolution, max over frequency.
        let padded = x.clone().pad((0, 0, 3, 3), PadMode::Constant(0.0));
        for (conv, bn) in self.timbral.iter().zip(&self.bn_timbral) {
            front.push(conv_relu_bn_max(conv.forward(padded.clone()), bn));
        }
        // Temporal: TF "same" padding puts the odd extra row after.
        for ((conv, bn), k) in self.temporal.iter().zip(&self.bn_temporal).zip(TEMPORAL) {
            let (before, after) = ((k - 1) / 2, k - 1 - (k - 1) / 2);
            let y = conv.forward(x.clone().pad((0, 0, before, after), PadMode::Constant(0.0)));
            front.push(conv_relu_bn_max(y, bn));
        }
        let front = Tensor::cat(front, 1); // [batch, 561, frames]
        let c1 = self.bn_mid[0].forward(relu(self.mid[0].forward(front.clone())));
        let c2 = self.bn_mid[1].forward(relu(self.mid[1].forward(c1.clone()))) + c1.clone();
        let c3 = self.bn_mid[2].forward(relu(self.mid[2].forward(c2.clone()))) + c2.clone();
        let mid = Tensor::cat(vec![front, c1, c2, c3], 1); // [batch, 753, frames]
        let max = mid.clone().max_dim(2); // [batch, 753, 1]
        let mean = mid.mean_dim(2);
        let pooled = Tensor::cat(vec![max, mean], 2).reshape([batch, 753 * 2]);
        let pooled = self.bn_pool.forward(pooled);
        let embedding = self.bn_dense.forward(relu(self.dense.forward(pooled)));
        let tags = sigmoid(self.out.forward(embedding.clone()));
        MusicnnOutput { tags, embedding }
    }
}

/// `max over frequency of BN(ReLU(y))` for `y: [batch, channels, time, freq]`, without passing
/// over the full map more than twice. Inference batch norm is `s * v + b` per channel, monotone
/// in `v`, and ReLU is monotone: so the maximum is `s * ReLU(max y) + b` where `s >= 0` and
/// `s * ReLU(min y) + b` where `s < 0`. Returns `[batch, channels, time]`.
fn conv_relu_bn_max(y: Tensor<4>, bn: &BatchNorm) -> Tensor<3> {
    let [_, channels, _, _] = y.dims();
    let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt();
    let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
    let up = scale
        .clone()
        .greater_equal_elem(0.0)
        .float()
        .reshape([1, channels, 1]);
    let hi = relu(y.clone().max_dim(3).squeeze_dim::<3>(3));
    let lo = relu(y.min_dim(3).squeeze_dim::<3>(3));
    let picked = hi * up.clone() + lo * (up.neg() + 1.0);
    picked * scale.reshape([1, channels, 1]) + shift.reshape([1, channels, 1])
}

/// How patch outputs become one vector per track.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    Mean,
    Max,
}

impl std::str::FromStr for Pooling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mean" => Ok(Pooling::Mean),
            "max" => Ok(Pooling::Max),
            _ => Err(format!("pooling '{s}': expected mean or max")),
        }
    }
}

/// One track's musicnn features.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackAudioFeatures {
    /// 50 tag probabilities, pooled over patches.
    pub tags: Vec<f32>,
    /// 200-d embedding, pooled over patches.
    pub embedding: Vec<f32>,
    pub patches: usize,
}

/// Runs musicnn over 16 kHz mono audio: log-mel, non-overlapping 187-frame patches (a clip
/// shorter than one patch is repeat-padded), `batch` patches per forward pass, pooled. Native
/// callers on any backend; the page uses [`embed_audio_async`].
#[cfg(not(target_arch = "wasm32"))]
pub fn embed_audio(
    model: &Musicnn,
    front: &super::dsp::MelFrontEnd,
    audio_16k: &[f32],
    pooling: Pooling,
    batch: usize,
    device: &Device,
) -> Option<TrackAudioFeatures> {
    pollster::block_on(embed_audio_async(
        model,
        front,
        audio_16k,
        pooling,
        batch,
        device,
        |_, _| {},
    ))
    .expect("reading musicnn's outputs back")
}

/// musicnn over a track, reading results back asynchronously (as WebGPU in the browser must):
/// `progress(done, total)` is called after each batch of patches.
pub async fn embed_audio_async(
    model: &Musicnn,
    front: &super::dsp::MelFrontEnd,
    audio_16k: &[f32],
    pooling: Pooling,
    batch: usize,
    device: &Device,
    mut progress: impl FnMut(usize, usize),
) -> Result<Option<TrackAudioFeatures>, FeatureError> {
    let rep = front.log_mel(audio_16k);
    let patches = super::dsp::patches(&rep, PATCH_FRAMES, PATCH_FRAMES);
    let per = PATCH_FRAMES * super::dsp::N_MELS;
    let n = patches.len() / per;
    if n == 0 {
        return Ok(None);
    }
    let mut tags = Vec::with_capacity(n * N_TAGS);
    let mut emb = Vec::with_capacity(n * EMBEDDING_DIM);
    for chunk in patches.chunks(per * batch.max(1)) {
        let b = chunk.len() / per;
        let x = Tensor::<3>::from_data(
            TensorData::new(chunk.to_vec(), [b, PATCH_FRAMES, super::dsp::N_MELS]),
            device,
        );
        let out = model.forward(x);
        let readback = |e: &dyn std::fmt::Debug| {
            FeatureError::Device(crate::device::DeviceError::Readback(format!("{e:?}")))
        };
        let read = |d: TensorData| d.try_to_vec::<f32>().map_err(|e| readback(&e));
        tags.extend(read(
            out.tags.into_data_async().await.map_err(|e| readback(&e))?,
        )?);
        emb.extend(read(
            out.embedding
                .into_data_async()
                .await
                .map_err(|e| readback(&e))?,
        )?);
        progress(emb.len() / EMBEDDING_DIM, n);
    }
    Ok(Some(TrackAudioFeatures {
        tags: pool(&tags, N_TAGS, pooling),
        embedding: pool(&emb, EMBEDDING_DIM, pooling),
        patches: n,
    }))
}

/// The `k` most probable tags: (name, probability).
pub fn top_tags(tags: &[f32], k: usize) -> Vec<(&'static str, f32)> {
    let mut idx: Vec<usize> = (0..tags.len().min(N_TAGS)).collect();
    idx.sort_by(|&a, &b| tags[b].total_cmp(&tags[a]));
    idx.into_iter()
        .take(k)
        .map(|i| (MSD_TAGS[i], tags[i]))
        .collect()
}

/// Pools `[n, dim]` rows to `[dim]`.
pub fn pool(rows: &[f32], dim: usize, pooling: Pooling) -> Vec<f32> {
    let n = rows.len() / dim;
    let mut out = match pooling {
        Pooling::Mean => vec![0f32; dim],
        Pooling::Max => vec![f32::NEG_INFINITY; dim],
    };
    for r in rows.chunks_exact(dim) {
        for (o, v) in out.iter_mut().zip(r) {
            match pooling {
                Pooling::Mean => *o += v,
                Pooling::Max => *o = o.max(*v),
            }
        }
    }
    if pooling == Pooling::Mean && n > 0 {
        out.iter_mut().for_each(|o| *o /= n as f32);
    }
    out
}

/// Converts a TF1 checkpoint to safetensors bytes, keeping float tensors under their TensorFlow
/// names and layouts and dropping optimizer slots (`.../Adam`, `.../Adam_1`, `beta*_power`).
#[cfg(not(target_arch = "wasm32"))]
pub fn convert_checkpoint(prefix: &std::path::Path) -> Result<Vec<u8>, FeatureError> {
    let all = super::tf1::read_checkpoint(prefix)?;
    let kept: Vec<(String, Vec<usize>, Vec<f32>)> = all
        .into_iter()
        .filter(|(k, _)| !k.ends_with("/Adam") && !k.ends_with("/Adam_1") && !k.contains("_power"))
        .map(|(k, t)| (k, t.shape, t.data))
        .collect();
    if kept.is_empty() {
        return Err(FeatureError::NoWeights {
            prefix: prefix.to_path_buf(),
        });
    }
    let meta = [(
        "source".to_string(),
        format!("TF1 checkpoint {}", prefix.display()),
    )];
    Ok(crate::util::weights::write_f32(&kept, Some(&meta))?)
}
