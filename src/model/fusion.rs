//! Item representations from an id embedding and content (audio, lyrics, tags, ...).
//!
//! Every modality gets its own LayerNorm and projection to the model width first, so a 768-d
//! lyric vector cannot drown a 64-d id vector. A track without a modality (presence 0) uses that
//! modality's learned "absent" vector, never zeros; during training, modality dropout swaps a
//! present vector for the absent one at random, so the model learns to do without it. The
//! projected modalities are then combined with the id embedding by one strategy:
//!
//! * `concat`: `[id, c_1, .., c_M]` through a linear layer to the model width;
//! * `sum`: `w_0 id + sum_m w_m c_m` with learned weights (a softmax over M + 1 logits);
//! * `gate`: `g * id + (1 - g) * mean(c)` with a per-dimension gate `g = sigmoid(W [c])`;
//! * `xattn`: the id embedding attends over the tokens `[id, c_1, .., c_M]` (residual);
//! * `film`: content modulates the id embedding, `(1 + gamma(c)) * id + beta(c)`, starting as
//!   the identity;
//! * `content-only`: `W [c_1, .., c_M]`, no id embedding at all, so a track never seen in
//!   training is scored like any other (the cold-start path).
//!
//! The content values live in the module as parameters that take no gradient: a saved model
//! carries the vectors it was trained with, and the content-only encoder scores whatever rows
//! it is given.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::ModelError;

/// How the id embedding and the projected modalities are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    Concat,
    Sum,
    Gate,
    Xattn,
    Film,
    ContentOnly,
}

/// The names `--fusion` accepts.
pub const STRATEGY_NAMES: [&str; 6] = ["concat", "sum", "gate", "xattn", "film", "content-only"];

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Self::Concat => "concat",
            Self::Sum => "sum",
            Self::Gate => "gate",
            Self::Xattn => "xattn",
            Self::Film => "film",
            Self::ContentOnly => "content-only",
        }
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "concat" => Self::Concat,
            "sum" => Self::Sum,
            "gate" => Self::Gate,
            "xattn" => Self::Xattn,
            "film" => Self::Film,
            "content-only" => Self::ContentOnly,
            _ => {
                return Err(format!(
                    "unknown fusion '{s}' ({})",
                    STRATEGY_NAMES.join(", ")
                ));
            }
        })
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One content modality as the model sees it: a name and a width.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModalityDim {
    pub name: String,
    pub dim: usize,
}

#[derive(Config, Debug, PartialEq)]
pub struct FusionConfig {
    pub strategy: Strategy,
    /// The modalities, in the order their values are given.
    pub modalities: Vec<ModalityDim>,
    /// Chance, per track and modality and training step, that a present vector is replaced by
    /// the modality's absent vector.
    #[config(default = 0.1)]
    pub modality_dropout: f64,
}

impl FusionConfig {
    /// Checks what `init` would otherwise panic on.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.modalities.is_empty() {
            return Err(ModelError::setting(
                "modalities",
                format!(
                    "fusion '{}' needs at least one content modality",
                    self.strategy
                ),
            ));
        }
        if let Some(m) = self.modalities.iter().find(|m| m.dim == 0) {
            return Err(ModelError::EmptyModality {
                modality: m.name.clone(),
            });
        }
        if !(0.0..1.0).contains(&self.modality_dropout) {
            return Err(ModelError::setting(
                "modality_dropout",
                format!(
                    "modality dropout {} is not in [0, 1)",
                    self.modality_dropout
                ),
            ));
        }
        Ok(())
    }

    /// A fusion module for `n_items` tracks and model width `d`; the content values start
    /// absent (set them with [`ItemFusion::set_content`]).
    pub fn init(&self, n_items: usize, d: usize, device: &Device) -> ItemFusion {
        let m = self.modalities.len();
        let modalities = self
            .modalities
            .iter()
            .map(|md| ModalityInput {
                values: Param::from_tensor(Tensor::zeros([n_items, md.dim], device))
                    .set_require_grad(false),
                present: Param::from_tensor(Tensor::zeros([n_items, 1], device))
                    .set_require_grad(false),
                norm: LayerNormConfig::new(md.dim).init(device),
                proj: LinearConfig::new(md.dim, d).init(device),
                absent: Param::from_tensor(Tensor::random(
                    [d],
                    Distribution::Normal(0.0, 0.02),
                    device,
                )),
            })
            .collect();
        let zeros = |i, o| {
            LinearConfig::new(i, o)
                .with_initializer(Initializer::Zeros)
                .init(device)
        };
        let combine = match self.strategy {
            Strategy::Concat => Combine::Concat(LinearConfig::new((m + 1) * d, d).init(device)),
            Strategy::Sum => Combine::Sum(Param::from_tensor(Tensor::zeros([m + 1], device))),
            Strategy::Gate => Combine::Gate(LinearConfig::new(m * d, d).init(device)),
            Strategy::Xattn => Combine::Xattn(CrossAttention {
                query: LinearConfig::new(d, d).init(device),
                key: LinearConfig::new(d, d).init(device),
                value: LinearConfig::new(d, d).init(device),
                out: zeros(d, d),
            }),
            Strategy::Film => Combine::Film(Film {
                gamma: zeros(m * d, d),
                beta: zeros(m * d, d),
            }),
            Strategy::ContentOnly => Combine::ContentOnly(LinearConfig::new(m * d, d).init(device)),
        };
        ItemFusion {
            modalities,
            combine,
            modality_dropout: self.modality_dropout,
        }
    }
}

/// One modality's values, presence mask, normalisation, projection and absent vector.
#[derive(Module, Debug)]
pub struct ModalityInput {
    /// `[n_items, dim]`, no gradient.
    pub values: Param<Tensor<2>>,
    /// `[n_items, 1]`: 1 where the track has this modality, 0 where not; no gradient.
    pub present: Param<Tensor<2>>,
    pub norm: LayerNorm,
    pub proj: Linear,
    /// `[d]`: what a track without this modality gets.
    pub absent: Param<Tensor<1>>,
}

#[derive(Module, Debug)]
pub struct CrossAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    /// Starts at zero, so the module starts as the id embedding.
    pub out: Linear,
}

#[derive(Module, Debug)]
pub struct Film {
    pub gamma: Linear,
    pub beta: Linear,
}

// Built once per model; boxing the attention variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Combine {
    Concat(Linear),
    /// Logits of the weights of `[id, c_1, .., c_M]`.
    Sum(Param<Tensor<1>>),
    Gate(Linear),
    Xattn(CrossAttention),
    Film(Film),
    ContentOnly(Linear),
}

#[derive(Module, Debug)]
pub struct ItemFusion {
    pub modalities: Vec<ModalityInput>,
    pub combine: Combine,
    pub modality_dropout: f64,
}

/// A modality's content for every track, in dataset track order.
#[derive(Clone, Debug, PartialEq)]
pub struct ContentTable {
    pub name: String,
    pub dim: usize,
    /// `[n_items * dim]`.
    pub values: Vec<f32>,
    pub present: Vec<bool>,
    /// What each dimension means, where the source names them (a feature store's labelled
    /// modality, such as MGPHot's genes): `[dim]`.
    pub labels: Option<Vec<String>>,
}

impl ContentTable {
    pub fn n_items(&self) -> usize {
        self.present.len()
    }

    pub fn n_present(&self) -> usize {
        self.present.iter().filter(|&&p| p).count()
    }

    /// The modality as the model configuration records it.
    pub fn modality_dim(&self) -> ModalityDim {
        ModalityDim {
            name: self.name.clone(),
            dim: self.dim,
        }
    }
}

impl ItemFusion {
    /// Whether the module uses an id embedding at all.
    pub fn uses_ids(&self) -> bool {
        !matches!(self.combine, Combine::ContentOnly(_))
    }

    /// Number of tracks the content covers.
    pub fn n_items(&self) -> usize {
        self.modalities[0].values.dims()[0]
    }

    /// Replaces the content values (one table per modality, in configuration order); values
    /// of absent tracks are stored as zeros.
    pub fn set_content(mut self, tables: &[ContentTable]) -> Result<Self, ModelError> {
        if tables.len() != self.modalities.len() {
            return Err(ModelError::Invalid(format!(
                "the model has {} content modalities, {} were given",
                self.modalities.len(),
                tables.len()
            )));
        }
        let n = self.n_items();
        for (m, t) in self.modalities.iter_mut().zip(tables) {
            let [rows, dim] = m.values.dims();
            if t.n_items() != rows || t.dim != dim || t.values.len() != n * dim {
                return Err(ModelError::ContentShape {
                    modality: t.name.clone(),
                    tracks: t.n_items(),
                    dim: t.dim,
                    want_tracks: rows,
                    want_dim: dim,
                });
            }
            let device = m.values.device();
            let mut v = t.values.clone();
            for (row, &p) in t.present.iter().enumerate() {
                if !p {
                    v[row * dim..(row + 1) * dim].fill(0.0);
                }
            }
            m.values =
                Param::from_tensor(Tensor::from_data(TensorData::new(v, [rows, dim]), &device))
                    .set_require_grad(false);
            let p: Vec<f32> = t.present.iter().map(|&p| f32::from(u8::from(p))).collect();
            m.present =
                Param::from_tensor(Tensor::from_data(TensorData::new(p, [rows, 1]), &device))
                    .set_require_grad(false);
        }
        Ok(self)
    }

    /// Each modality projected to the model width, absent vectors where a track lacks it (and,
    /// in training, where modality dropout strikes).
    ///
    /// # Shapes
    /// - output: `M` tensors `[n_items, d]`
    pub fn modality_vectors(&self) -> Vec<Tensor<2>> {
        self.modalities
            .iter()
            .map(|m| self.project(m, m.values.val(), m.present.val()))
            .collect()
    }

    /// One modality's rows projected, with its absent vector where `present` is 0.
    ///
    /// # Shapes
    /// - values: `[n, dim]`, present: `[n, 1]`
    /// - output: `[n, d]`
    fn project(&self, m: &ModalityInput, values: Tensor<2>, present: Tensor<2>) -> Tensor<2> {
        let x = m.proj.forward(m.norm.forward(values));
        let [n, d] = x.dims();
        let mut keep = present;
        let device = keep.device();
        if self.modality_dropout > 0.0 && device.is_autodiff() {
            keep = keep
                * Tensor::random(
                    [n, 1],
                    Distribution::Bernoulli(1.0 - self.modality_dropout),
                    &device,
                );
        }
        let keep = keep.expand([n, d]);
        let absent = m.absent.val().unsqueeze_dim::<2>(0).expand([n, d]);
        x * keep.clone() + absent * (keep.neg() + 1.0)
    }

    /// Names and widths of the modalities, in configuration order.
    pub fn modality_dims(&self) -> Vec<usize> {
        self.modalities.iter().map(|m| m.values.dims()[1]).collect()
    }

    /// The representation of tracks that are not in the table (a listener's own files), from
    /// their content alone: only a `content-only` module can do this, the others need an id
    /// embedding the new tracks do not have.
    ///
    /// # Shapes
    /// - content: one entry per modality (configuration order), each `n` rows of its width,
    ///   `None` where a track lacks the modality (it gets the absent vector)
    /// - output: `[n, d]`
    pub fn encode_new(
        &self,
        content: &[Vec<Option<Vec<f32>>>],
        device: &Device,
    ) -> Result<Tensor<2>, ModelError> {
        let invalid = |s: String| Err(ModelError::Invalid(s));
        let Combine::ContentOnly(lin) = &self.combine else {
            return invalid(
                "only a content-only model can score tracks it was not trained on".into(),
            );
        };
        if content.len() != self.modalities.len() {
            return invalid(format!(
                "{} content modalities given, the model has {}",
                content.len(),
                self.modalities.len()
            ));
        }
        let n = content.first().map_or(0, |c| c.len());
        if n == 0 || content.iter().any(|c| c.len() != n) {
            return invalid("every modality needs one entry per new track".into());
        }
        let mut parts = Vec::with_capacity(content.len());
        for (m, rows) in self.modalities.iter().zip(content) {
            let dim = m.values.dims()[1];
            let mut v = vec![0f32; n * dim];
            let mut p = vec![0f32; n];
            for (i, r) in rows.iter().enumerate() {
                if let Some(r) = r {
                    if r.len() != dim {
                        return invalid(format!(
                            "a content vector of {} values where the model reads {dim}",
                            r.len()
                        ));
                    }
                    if r.iter().any(|x| !x.is_finite()) {
                        return invalid("a content vector holds a value that is not finite".into());
                    }
                    v[i * dim..(i + 1) * dim].copy_from_slice(r);
                    p[i] = 1.0;
                }
            }
            let values = Tensor::from_data(TensorData::new(v, [n, dim]), device);
            let present = Tensor::from_data(TensorData::new(p, [n, 1]), device);
            parts.push(self.project(m, values, present));
        }
        Ok(lin.forward(Tensor::cat(parts, 1)))
    }

    /// The stored content of one track per modality (`None` where it lacks the modality).
    pub fn content_of(&self) -> Result<Vec<Vec<Option<Vec<f32>>>>, ModelError> {
        let read_back = |e: burn::tensor::DataError| ModelError::Invalid(format!("{e:?}"));
        self.modalities
            .iter()
            .map(|m| {
                let [n, dim] = m.values.dims();
                let v: Vec<f32> = m
                    .values
                    .val()
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(read_back)?;
                let p: Vec<f32> = m
                    .present
                    .val()
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(read_back)?;
                Ok((0..n)
                    .map(|i| (p[i] > 0.5).then(|| v[i * dim..(i + 1) * dim].to_vec()))
                    .collect())
            })
            .collect()
    }

    /// The fused representation of every track.
    ///
    /// # Shapes
    /// - id: `[n_items, d]`, the id embeddings of the tracks (ignored by `content-only`)
    /// - output: `[n_items, d]`
    pub fn forward(&self, id: Tensor<2>) -> Tensor<2> {
        let c = self.modality_vectors();
        let [n, d] = id.dims();
        match &self.combine {
            Combine::Concat(lin) => {
                let mut parts = vec![id];
                parts.extend(c);
                lin.forward(Tensor::cat(parts, 1))
            }
            Combine::Sum(logits) => {
                let w = softmax(logits.val(), 0);
                let mut out = id * w.clone().narrow(0, 0, 1).unsqueeze_dim::<2>(0);
                for (i, ci) in c.into_iter().enumerate() {
                    out = out + ci * w.clone().narrow(0, i + 1, 1).unsqueeze_dim::<2>(0);
                }
                out
            }
            Combine::Gate(lin) => {
                let g = sigmoid(lin.forward(Tensor::cat(c.clone(), 1)));
                let mean = Tensor::stack::<3>(c, 0).mean_dim(0).reshape([n, d]);
                g.clone() * id + (g.neg() + 1.0) * mean
            }
            Combine::Xattn(a) => {
                let mut toks = vec![id.clone().unsqueeze_dim::<3>(1)];
                toks.extend(c.into_iter().map(|t| t.unsqueeze_dim::<3>(1)));
                let toks = Tensor::cat(toks, 1); // [n, m + 1, d]
                let q = a.query.forward(id.clone()).unsqueeze_dim::<3>(1); // [n, 1, d]
                let k = a.key.forward(toks.clone());
                let v = a.value.forward(toks);
                let att = softmax(q.matmul(k.swap_dims(1, 2)) / (d as f64).sqrt(), 2); // [n, 1, m+1]
                let mixed = att.matmul(v).reshape([n, d]);
                id + a.out.forward(mixed)
            }
            Combine::Film(f) => {
                let cat = Tensor::cat(c, 1);
                let gamma = f.gamma.forward(cat.clone());
                let beta = f.beta.forward(cat);
                (gamma + 1.0) * id + beta
            }
            Combine::ContentOnly(lin) => lin.forward(Tensor::cat(c, 1)),
        }
    }

    /// The learned weights of `[id, c_1, .., c_M]` under `sum` (what the model leans on).
    pub fn sum_weights(&self) -> Option<Vec<f32>> {
        match &self.combine {
            Combine::Sum(l) => softmax(l.val(), 0).into_data().try_to_vec().ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(not(target_arch = "wasm32"))]
    use burn::optim::{AdamWConfig, GradientsParams};

    fn tables(n: usize) -> Vec<ContentTable> {
        let mk = |name: &str, dim: usize, seed: f32| ContentTable {
            name: name.into(),
            dim,
            values: (0..n * dim)
                .map(|i| (i as f32 * 0.37 + seed).sin())
                .collect(),
            present: (0..n).map(|i| i % 3 != 0).collect(),
            labels: None,
        };
        vec![mk("audio", 12, 0.1), mk("tags", 5, 2.0)]
    }

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec().unwrap()
    }

    fn config(s: Strategy, t: &[ContentTable]) -> FusionConfig {
        FusionConfig::new(s, t.iter().map(ContentTable::modality_dim).collect())
    }

    // Training needs autodiff, which only native builds have.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn every_strategy_keeps_the_shape_and_trains_every_part() {
        let dev = Device::flex().autodiff();
        let t = tables(7);
        for s in STRATEGY_NAMES {
            let s: Strategy = s.parse().unwrap();
            dev.seed(3);
            let mut f = config(s, &t).init(7, 8, &dev).set_content(&t).unwrap();
            let id = Tensor::<2>::random([7, 8], Distribution::Normal(0.0, 1.0), &dev);
            // One step first: film and xattn start as the identity (zero output layers), so
            // only their output layers get a gradient before it.
            let mut opt = AdamWConfig::new().init();
            let first = f.forward(id.clone()).powi_scalar(2).sum().backward();
            f = opt.step(0.01, f.clone(), GradientsParams::from_grads(first, &f));
            let id = id.require_grad();
            let out = f.forward(id.clone());
            assert_eq!(out.dims(), [7, 8], "{s}");
            let grads = out.powi_scalar(2).sum().backward();
            let norm = |g: Option<Tensor<2>>| g.map(|g| g.abs().sum().into_scalar::<f32>());
            // The id embedding gets a gradient unless the strategy ignores it.
            let gid = norm(id.grad(&grads));
            match s {
                Strategy::ContentOnly => assert!(gid.is_none_or(|g| g == 0.0), "{s}"),
                _ => assert!(gid.is_some_and(|g| g > 0.0), "{s}: id gradient {gid:?}"),
            }
            for m in &f.modalities {
                let gp = norm(m.proj.weight.grad(&grads));
                assert!(
                    gp.is_some_and(|g| g > 0.0),
                    "{s}: projection gradient {gp:?}"
                );
                let ga = m
                    .absent
                    .grad(&grads)
                    .map(|g| g.abs().sum().into_scalar::<f32>());
                assert!(ga.is_some_and(|g| g > 0.0), "{s}: absent gradient {ga:?}");
                assert!(
                    m.values.grad(&grads).is_none(),
                    "{s}: content values take no gradient"
                );
            }
        }
    }

    #[test]
    fn a_missing_modality_is_the_absent_vector_not_zeros() {
        let dev = Device::flex();
        let t = tables(6);
        let f = config(Strategy::Concat, &t)
            .init(6, 4, &dev)
            .set_content(&t)
            .unwrap();
        let c = f.modality_vectors();
        let absent = host(f.modalities[0].absent.val());
        let rows = host(c[0].clone());
        for (i, row) in rows.chunks(4).enumerate() {
            if t[0].present[i] {
                assert_ne!(row, &absent[..], "track {i} has audio");
            } else {
                assert_eq!(row, &absent[..], "track {i} lacks audio");
            }
        }
        assert!(absent.iter().any(|&x| x != 0.0));
        // Whatever was stored for an absent track does not matter.
        let mut t2 = t.clone();
        t2[0].values[0] = 1e6;
        let f2 = config(Strategy::Concat, &t).init(6, 4, &dev);
        let f2 = f2
            .load_record(f.clone().into_record())
            .set_content(&t2)
            .unwrap();
        let a = host(f.forward(Tensor::zeros([6, 4], &dev)));
        let b = host(f2.forward(Tensor::zeros([6, 4], &dev)));
        assert_eq!(a, b);
    }

    // Training needs autodiff, which only native builds have.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn modality_dropout_only_in_training() {
        let t = tables(40);
        let mut cfg = config(Strategy::Sum, &t);
        cfg.modality_dropout = 0.5;
        let inference = Device::flex();
        let f = cfg.init(40, 4, &inference).set_content(&t).unwrap();
        let a = host(f.modality_vectors()[1].clone());
        let b = host(f.modality_vectors()[1].clone());
        assert_eq!(a, b, "inference is deterministic");
        let ad = Device::flex().autodiff();
        let g = cfg.init(40, 4, &ad).set_content(&t).unwrap();
        let absent = host(g.modalities[1].absent.val());
        let c = host(g.modality_vectors()[1].clone());
        let dropped = c
            .chunks(4)
            .zip(&t[1].present)
            .filter(|(row, p)| **p && *row == &absent[..])
            .count();
        let present = t[1].n_present();
        assert!(
            dropped > present / 5 && dropped < present * 4 / 5,
            "{dropped} of {present} present vectors dropped at p = 0.5"
        );
    }

    // Training needs autodiff, which only native builds have.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn an_optimiser_step_leaves_the_content_values_alone() {
        let dev = Device::flex().autodiff();
        let t = tables(5);
        let mut f = config(Strategy::Gate, &t)
            .init(5, 4, &dev)
            .set_content(&t)
            .unwrap();
        let before = host(f.modalities[0].values.val());
        let proj_before = host(f.modalities[0].proj.weight.val());
        let mut opt = AdamWConfig::new().init();
        let loss = f.forward(Tensor::ones([5, 4], &dev)).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &f);
        f = opt.step(0.1, f, grads);
        let after = host(f.modalities[0].values.val());
        let proj_after = host(f.modalities[0].proj.weight.val());
        assert_eq!(before, after);
        assert_ne!(proj_before, proj_after);
    }

    #[test]
    fn film_and_xattn_start_as_the_id_embedding() {
        let dev = Device::flex();
        let t = tables(5);
        let id = Tensor::<2>::random([5, 4], Distribution::Normal(0.0, 1.0), &dev);
        let want = host(id.clone());
        for s in [Strategy::Film, Strategy::Xattn] {
            let f = config(s, &t).init(5, 4, &dev).set_content(&t).unwrap();
            let got = host(f.forward(id.clone()));
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-6, "{s}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn bad_configurations_are_refused() {
        let t = tables(3);
        assert!(FusionConfig::new(Strategy::Sum, vec![]).validate().is_err());
        let mut c = config(Strategy::Sum, &t);
        c.modality_dropout = 1.0;
        assert!(c.validate().is_err());
        let f = config(Strategy::Sum, &t).init(3, 4, &Device::flex());
        assert!(f.set_content(&t[..1]).is_err());
        assert!("mean".parse::<Strategy>().is_err());
    }
}
