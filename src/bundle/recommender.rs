//! A loaded bundle ranks the catalog after a listening history, on the listener's device.

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use super::BundleError;
use super::format::{BundleConfig, Manifest, verify};
use crate::catalog::Catalog;
use crate::eval::baselines::MostPopular;
use crate::eval::e4srec::E4SRecScorer;
use crate::eval::model::ModelScorer;
use crate::eval::{Scorer, score_async};
use crate::model::{ModelConfig, SeqModel};

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Checks a bundle's files against its manifest, reads its config and catalog and builds the
/// recommender on `device`: what the app does with the bytes it downloaded. Errors name the file.
pub fn open(
    manifest: &Manifest,
    config: &[u8],
    catalog: &[u8],
    weights: Vec<u8>,
    device: &Device,
) -> Result<Recommender, BundleError> {
    for (name, bytes) in [
        ("config.json", config),
        ("catalog.json", catalog),
        ("model.bpk", &weights[..]),
    ] {
        verify(manifest.file(name)?, bytes)?;
    }
    let config: BundleConfig =
        serde_json::from_slice(config).map_err(|e| BundleError::json("config.json", e))?;
    let catalog: Catalog =
        serde_json::from_slice(catalog).map_err(|e| BundleError::json("catalog.json", e))?;
    catalog.validate().map_err(|e| BundleError::Catalog {
        file: "catalog.json".into(),
        source: Box::new(e),
    })?;
    Recommender::new(config, catalog, weights, device)
}

/// Turns quantized parameters back into float ones (a module mapper).
struct Dequantizer;

impl ModuleMapper for Dequantizer {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| {
            if matches!(t.dtype(), burn::tensor::DType::QFloat(_)) {
                t.dequantize()
            } else {
                t
            }
        })
    }
}

/// Builds a model from burnpack bytes on `device`. Quantized weights (q8/q4 bundles) travel and
/// are stored small, and are dequantized once at load: on the CPU backend, which reads every
/// quantized layout, before the float weights move to the target device (browsers' WebGPU
/// adapters may lack the 8-bit storage that burn's packed formats need).
pub fn load_weights(
    cfg: &ModelConfig,
    weights: Vec<u8>,
    device: &Device,
) -> Result<SeqModel, BundleError> {
    Ok(onto(load_weights_cpu(cfg, weights)?, device))
}

/// Moves a model loaded on the CPU backend onto `device` (nothing to do for the CPU itself).
fn onto(model: SeqModel, device: &Device) -> SeqModel {
    if *device == Device::flex() {
        model
    } else {
        model.to_device(device)
    }
}

/// [`load_weights`] on the CPU backend (float weights). The configuration is checked first
/// (sizes, and room in the weights for its parameters at 4 bits each): an untrusted config
/// never builds a model larger than its file.
fn load_weights_cpu(cfg: &ModelConfig, weights: Vec<u8>) -> Result<SeqModel, BundleError> {
    cfg.check()
        .map_err(|e| BundleError::part("config.json", e))?;
    let params = cfg.approx_params();
    if params / 2 > weights.len() as u64 {
        return Err(BundleError::field(
            "config.json",
            "model",
            format!(
                "describes about {params} parameters; model.bpk's {} bytes cannot hold them",
                weights.len()
            ),
        ));
    }
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(weights))
        .map_err(|e| BundleError::invalid("model.bpk", e))?;
    Ok(cfg
        .init(&Device::flex())
        .try_load_record(record)
        .map_err(|e| BundleError::invalid("model.bpk", e))?
        .map(&mut Dequantizer))
}

/// The mean of the rows present (empty when none is).
fn mean_row(rows: &[Option<Vec<f32>>]) -> Vec<f32> {
    let mut sum: Vec<f64> = Vec::new();
    let mut n = 0usize;
    for r in rows.iter().flatten() {
        if sum.is_empty() {
            sum = vec![0.0; r.len()];
        }
        if r.len() == sum.len() {
            for (s, x) in sum.iter_mut().zip(r) {
                *s += f64::from(*x);
            }
            n += 1;
        }
    }
    sum.into_iter().map(|s| (s / n as f64) as f32).collect()
}

/// A track the bundle was not trained on (a listener's own file), described by its content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewTrack {
    /// Modality name -> vector (e.g. `audio`: musicnn's 200-d embedding); modalities the
    /// model reads but the track lacks get the model's absent vector.
    pub content: std::collections::BTreeMap<String, Vec<f32>>,
}

/// Why a track is recommended after the last one: what a listener can check.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Affinity {
    /// Cosine similarity of the two tracks' musicnn embeddings, when both have one.
    pub sound: Option<f32>,
    /// Per labelled modality (musicnn's tags, MGPHot genes), in the bundle's order: labels on
    /// which both tracks stand out, each above the catalog's mean and among its five furthest
    /// above it; most shared first, at most three. Modalities with none are left out.
    pub shared: Vec<(String, Vec<String>)>,
}

/// A loaded bundle: the model on a device and the mapping between model items and the catalog.
pub struct Recommender {
    pub model: SeqModel,
    pub config: BundleConfig,
    pub catalog: Catalog,
    /// Catalog index of each model item.
    item_track: Vec<usize>,
    /// Model item of each catalog track (`None`: the model never saw it).
    track_item: Vec<Option<u32>>,
    /// Each content modality of the model (configuration order): name and, per model item,
    /// its vector where the item has it.
    content: Vec<(String, Vec<Option<Vec<f32>>>)>,
    /// Each content modality's mean vector over the catalog items that have it.
    content_mean: Vec<(String, Vec<f32>)>,
    /// An E4SRec bundle's model, once [`attach_e4srec`](Self::attach_e4srec) has built it: it
    /// then ranks instead of `model`.
    e4srec: Option<crate::model::e4srec::E4SRec>,
    device: Device,
}

/// One recommended track.
#[derive(Clone, Debug, PartialEq)]
pub struct Recommendation {
    /// Catalog index.
    pub track: usize,
    pub score: f32,
}

impl Recommender {
    /// Builds the model from `config` and loads `weights` (burnpack bytes).
    pub fn new(
        config: BundleConfig,
        catalog: Catalog,
        weights: Vec<u8>,
        device: &Device,
    ) -> Result<Self, BundleError> {
        if config.items.len() != config.model.n_items() {
            return Err(BundleError::field(
                "config.json",
                "items",
                format!(
                    "{} items listed for a model of {}",
                    config.items.len(),
                    config.model.n_items()
                ),
            ));
        }
        if config.popularity.len() != config.items.len() {
            return Err(BundleError::field(
                "config.json",
                "popularity",
                "popularity and items differ in length",
            ));
        }
        let mut item_track = Vec::with_capacity(config.items.len());
        let mut track_item = vec![None; catalog.tracks.len()];
        for (i, id) in config.items.iter().enumerate() {
            let t = catalog
                .position(id)
                .ok_or_else(|| BundleError::UnknownItem { track: id.clone() })?;
            item_track.push(t);
            track_item[t] = Some(i as u32);
        }
        let model = load_weights_cpu(&config.model, weights)?;
        let content = match (model.fusion(), config.model.fusion()) {
            (Some(f), Some(c)) => c
                .modalities
                .iter()
                .map(|m| m.name.clone())
                .zip(
                    f.content_of()
                        .map_err(|e| BundleError::part("model.bpk", e))?,
                )
                .collect(),
            _ => Vec::new(),
        };
        let content_mean = content
            .iter()
            .map(|(name, rows)| (name.clone(), mean_row(rows)))
            .collect();
        Ok(Recommender {
            content_mean,
            model: onto(model, device),
            config,
            catalog,
            item_track,
            track_item,
            content,
            e4srec: None,
            device: device.clone(),
        })
    }

    /// An E4SRec bundle's files beyond the base model, checked against the manifest: the trained
    /// parts (with the frozen item table) and the LLM's GGUF bytes. The decoder's weights are
    /// dequantized on the way to the device. After this the LLM ranks.
    pub fn attach_e4srec(
        &mut self,
        manifest: &Manifest,
        trained: &[u8],
        gguf: Vec<u8>,
    ) -> Result<(), BundleError> {
        let part = self.config.e4srec.clone().ok_or(BundleError::NoE4SRec)?;
        verify(manifest.file(&part.trained)?, trained)?;
        verify(manifest.file(&part.llm)?, &gguf)?;
        let g = crate::llm::gguf::Gguf::parse(gguf).map_err(|e| BundleError::llm(&part.llm, e))?;
        let (llm, _) = crate::llm::llama::Llama::from_gguf(&g, &self.device)
            .map_err(|e| BundleError::llm(&part.llm, e))?;
        drop(g);
        let in_trained = |e| BundleError::part(&part.trained, e);
        let mut t =
            crate::model::e4srec::trained_from_bytes(trained, &self.device).map_err(in_trained)?;
        let items = t
            .remove("items")
            .ok_or_else(|| BundleError::field(&part.trained, "items", "no 'items' table"))?;
        if items.dims()[0] != self.item_track.len() {
            return Err(BundleError::field(
                &part.trained,
                "items",
                format!(
                    "{} item rows for {} model items",
                    items.dims()[0],
                    self.item_track.len()
                ),
            ));
        }
        let signals = crate::model::e4srec::Signals {
            text: part.text.clone(),
            tags: t.remove("tags"),
        };
        let m = part
            .config
            .init(
                llm,
                items,
                (&part.prompt.0, &part.prompt.1),
                signals,
                &self.device,
            )
            .map_err(in_trained)?
            .load_trained(&t)
            .map_err(in_trained)?;
        self.e4srec = Some(m);
        Ok(())
    }

    /// Whether an E4SRec bundle's LLM ranks (see [`attach_e4srec`](Self::attach_e4srec)).
    pub fn ranks_with_llm(&self) -> bool {
        self.e4srec.is_some()
    }

    /// Whether the model can score tracks it was not trained on from their content (a
    /// content-only model), and so recommend a listener's own files.
    pub fn accepts_new_tracks(&self) -> bool {
        self.config.e4srec.is_none() && self.model.fusion().is_some_and(|f| !f.uses_ids())
    }

    /// The content modalities the model reads, in order.
    pub fn modalities(&self) -> Vec<&str> {
        self.content.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// A catalog track's content vector of one modality, when the model has it.
    pub fn content_of(&self, track: usize, modality: &str) -> Option<&[f32]> {
        let item = self.track_item.get(track).copied().flatten()? as usize;
        let (_, rows) = self.content.iter().find(|(n, _)| n == modality)?;
        rows.get(item)?.as_deref()
    }

    /// What links track `b` to track `a` (catalog indices, or new tracks after the catalog's
    /// end with their content in `new`): how alike their sound is (musicnn embeddings, the
    /// `audio` modality) and which labels of `labelled` content they share.
    pub fn affinity(&self, a: usize, b: usize, new: &[NewTrack]) -> Affinity {
        let get = |t: usize, m: &str| -> Option<Vec<f32>> {
            if t < self.catalog.tracks.len() {
                self.content_of(t, m).map(<[f32]>::to_vec)
            } else {
                new.get(t - self.catalog.tracks.len())?
                    .content
                    .get(m)
                    .cloned()
            }
        };
        let sound = match (get(a, "audio"), get(b, "audio")) {
            (Some(x), Some(y)) if x.len() == y.len() => Some(cosine(&x, &y)),
            _ => None,
        };
        let mut shared = Vec::new();
        for (name, labels) in &self.config.labels {
            let Some((_, mean)) = self.content_mean.iter().find(|(m, _)| m == name) else {
                continue;
            };
            if let (Some(x), Some(y)) = (get(a, name), get(b, name))
                && x.len() == mean.len()
                && y.len() == mean.len()
            {
                // Labels among the five furthest above the catalog's mean in both tracks.
                let top = |v: &[f32]| -> Vec<usize> {
                    let mut i: Vec<usize> = (0..v.len().min(labels.len()))
                        .filter(|&i| v[i] > mean[i])
                        .collect();
                    i.sort_by(|&p, &q| {
                        (v[q] - mean[q])
                            .total_cmp(&(v[p] - mean[p]))
                            .then(p.cmp(&q))
                    });
                    i.truncate(5);
                    i
                };
                let (tx, ty) = (top(&x), top(&y));
                let mut both: Vec<(f32, &String)> = tx
                    .iter()
                    .filter(|i| ty.contains(i))
                    .map(|&i| ((x[i] - mean[i]).min(y[i] - mean[i]), &labels[i]))
                    .collect();
                both.sort_by(|p, q| q.0.total_cmp(&p.0).then(p.1.cmp(q.1)));
                if !both.is_empty() {
                    let l = both.into_iter().take(3).map(|(_, l)| l.clone()).collect();
                    shared.push((name.clone(), l));
                }
            }
        }
        Affinity { sound, shared }
    }

    /// Whether the model knows a catalog track.
    pub fn knows(&self, track: usize) -> bool {
        self.track_item.get(track).is_some_and(|i| i.is_some())
    }

    /// The `k` best next tracks after `history` (catalog indices, oldest first), leaving out
    /// `exclude`. Tracks the model never saw are skipped in the history; an empty history gets
    /// the most played tracks.
    pub async fn recommend(
        &self,
        history: &[usize],
        exclude: &[usize],
        k: usize,
    ) -> Result<Vec<Recommendation>, BundleError> {
        self.recommend_with(history, None, exclude, k).await
    }

    /// Whether the model reads the completion ratio of each history play (trained with
    /// `--completion`).
    pub fn reads_completion(&self) -> bool {
        self.model.reads_completion()
            || self
                .config
                .e4srec
                .as_ref()
                .is_some_and(|e| e.config.completion != crate::model::e4srec::Signal::Off)
    }

    /// [`recommend`](Self::recommend) with the completion ratio of each history play (parallel
    /// to `history`; NaN where unknown, as for the track playing now): a model trained with
    /// `--completion` reads them, others ignore them.
    pub async fn recommend_with(
        &self,
        history: &[usize],
        completions: Option<&[f32]>,
        exclude: &[usize],
        k: usize,
    ) -> Result<Vec<Recommendation>, BundleError> {
        self.recommend_new(history, completions, exclude, k, &[])
            .await
    }

    /// [`recommend_with`](Self::recommend_with) over the catalog and `new` tracks the model
    /// was not trained on (a listener's own files, scored from their content through a
    /// content-only model; see [`accepts_new_tracks`](Self::accepts_new_tracks)). New track `j`
    /// is index `catalog.tracks.len() + j` in `history`, `exclude` and the result.
    pub async fn recommend_new(
        &self,
        history: &[usize],
        completions: Option<&[f32]>,
        exclude: &[usize],
        k: usize,
        new: &[NewTrack],
    ) -> Result<Vec<Recommendation>, BundleError> {
        self.check_request(history, completions, exclude, new.len())?;
        let model = self.model_scorer(new)?;
        let (items, ratios) = self.history_items(history, completions, &model);
        let ratios = [ratios.as_slice()];
        let completions = completions.is_some().then_some(&ratios[..]);
        let popular;
        let llm;
        // The LLM reads the history (new tracks are not in its head: its bundles accept
        // none); an empty history gets popularity (new tracks were never played in training).
        let scorer: &dyn Scorer = match (&self.e4srec, items.is_empty()) {
            (Some(m), false) => {
                llm = E4SRecScorer { model: m, batch: 1 };
                &llm
            }
            (_, true) => {
                let mut p: Vec<f32> = self.config.popularity.iter().map(|&p| p as f32).collect();
                p.resize(model.n_items(), -1.0);
                popular = MostPopular::from_counts(p);
                &popular
            }
            (None, false) => &model,
        };
        let scores = score_async(scorer, &[&items], completions).await?;
        Ok(self.ranked(&scores, exclude, k))
    }

    /// Rejects track indices beyond the catalog and the new tracks, completion ratios that do
    /// not pair with the history, and an E4SRec bundle whose LLM is not attached.
    fn check_request(
        &self,
        history: &[usize],
        completions: Option<&[f32]>,
        exclude: &[usize],
        n_new: usize,
    ) -> Result<(), BundleError> {
        let n_catalog = self.catalog.tracks.len();
        if history
            .iter()
            .chain(exclude)
            .any(|&t| t >= n_catalog + n_new)
        {
            return Err(BundleError::Request(
                "a track index beyond the catalog and the new tracks".into(),
            ));
        }
        if let Some(c) = completions
            && c.len() != history.len()
        {
            return Err(BundleError::Request(format!(
                "{} completion ratios for {} history plays",
                c.len(),
                history.len()
            )));
        }
        if self.config.e4srec.is_some() && self.e4srec.is_none() {
            return Err(BundleError::Request(
                "an E4SRec bundle ranks once its LLM is attached (attach_e4srec)".into(),
            ));
        }
        Ok(())
    }

    /// The sequence model as a scorer (windows padded to full length), with the `new` tracks'
    /// fused content appended when the model can encode them.
    fn model_scorer(&self, new: &[NewTrack]) -> Result<ModelScorer<'_>, BundleError> {
        let scorer = ModelScorer::new(
            &self.model,
            self.config.model.max_len(),
            self.device.clone(),
        )
        .padded();
        let encoder = self.model.fusion().filter(|f| !f.uses_ids());
        match encoder {
            Some(f) if !new.is_empty() && self.config.e4srec.is_none() => {
                let content: Vec<Vec<Option<Vec<f32>>>> = self
                    .content
                    .iter()
                    .map(|(name, _)| new.iter().map(|t| t.content.get(name).cloned()).collect())
                    .collect();
                Ok(scorer.with_new_rows(f.encode_new(&content, &self.device)?))
            }
            _ => Ok(scorer),
        }
    }

    /// The history as model items with their completion ratios (NaN: unknown): tracks the
    /// model never saw are skipped, new tracks get their appended rows' ids.
    fn history_items(
        &self,
        history: &[usize],
        completions: Option<&[f32]>,
        model: &ModelScorer<'_>,
    ) -> (Vec<u32>, Vec<f32>) {
        let n_catalog = self.catalog.tracks.len();
        history
            .iter()
            .enumerate()
            .filter_map(|(i, &t)| {
                let item = if t < n_catalog {
                    self.track_item.get(t).copied().flatten()?
                } else {
                    model.new_track_id(t - n_catalog)?
                };
                Some((item, completions.map_or(f32::NAN, |c| c[i])))
            })
            .unzip()
    }

    /// The `k` best tracks by score (model items first, then new tracks), leaving out
    /// `exclude`: higher score first, ties by catalog position.
    fn ranked(&self, scores: &[f32], exclude: &[usize], k: usize) -> Vec<Recommendation> {
        let n_items = self.item_track.len();
        let n_catalog = self.catalog.tracks.len();
        let mut ranked: Vec<Recommendation> = scores
            .iter()
            .enumerate()
            .map(|(i, &score)| Recommendation {
                track: if i < n_items {
                    self.item_track[i]
                } else {
                    n_catalog + i - n_items
                },
                score,
            })
            .filter(|r| !exclude.contains(&r.track))
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.track.cmp(&b.track)));
        ranked.truncate(k);
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SasRecConfig;

    /// Real weights of a small SASRec, and its configuration as JSON.
    fn small() -> (Vec<u8>, serde_json::Value) {
        let cfg = ModelConfig::Sasrec(SasRecConfig::new(30).with_max_len(8));
        let bytes = cfg
            .init(&Device::flex())
            .into_record()
            .into_bytes()
            .unwrap();
        (bytes.to_vec(), serde_json::to_value(&cfg).unwrap())
    }

    #[test]
    fn a_configuration_that_does_not_fit_its_weights_is_refused_without_building_it() {
        let (weights, json) = small();
        let load = |edit: &dyn Fn(&mut serde_json::Value)| -> Result<SeqModel, BundleError> {
            let mut j = json.clone();
            edit(&mut j);
            load_weights_cpu(&serde_json::from_value(j).unwrap(), weights.clone())
        };
        assert!(load(&|_| ()).is_ok());
        for (field, value, want) in [
            ("n_heads", serde_json::json!(0), "n_heads 0 is not between"),
            (
                "n_heads",
                serde_json::json!(3),
                "3 heads do not divide d_model 64",
            ),
            (
                "n_layers",
                serde_json::json!(1_000_000_000),
                "n_layers 1000000000 is not",
            ),
            ("d_model", serde_json::json!(2048), "cannot hold them"),
            ("dropout", serde_json::json!(1.5), "dropout 1.5"),
        ] {
            let err = load(&|j| j[field] = value.clone())
                .err()
                .unwrap_or_else(|| panic!("{field} {value} loaded"))
                .to_string();
            assert!(err.contains("config.json") && err.contains(want), "{err}");
        }
    }
}
