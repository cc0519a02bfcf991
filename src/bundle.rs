//! Model bundles: what the web app downloads to recommend on the device.
//!
//! A bundle folder holds `manifest.json` (every other file with its size and sha256, checked
//! before use), `config.json` (the model configuration, the catalog position of each model item,
//! item popularity and where the model came from), `model.bpk` (burnpack weights, float or
//! quantized) and `catalog.json`. `encore export` writes bundles natively; the app reads them.

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::data::sha256_hex;

use crate::catalog::Catalog;
use crate::model::{ModelConfig, SeqModel};

pub const FORMAT: &str = "encore-bundle/1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub name: String,
    pub description: String,
    /// `none`, `q8` or `q4`.
    pub quantization: String,
    pub files: Vec<FileEntry>,
    /// For a quantized bundle: test metrics of the float and the quantized weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_effect: Option<QuantizationEffect>,
}

/// What quantization did to the exported seed's test metrics (its run's protocol).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizationEffect {
    pub protocol: String,
    /// Metric name -> [float32, quantized].
    pub metrics: std::collections::BTreeMap<String, [f64; 2]>,
    /// Weight file bytes, float32 and quantized.
    pub bytes: [u64; 2],
}

impl Manifest {
    /// Reads `manifest.json`, refusing another bundle format.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("manifest.json: {e}"))?;
        if m.format != FORMAT {
            return Err(format!(
                "manifest.json: format '{}' is not {FORMAT}",
                m.format
            ));
        }
        Ok(m)
    }

    pub fn file(&self, path: &str) -> Result<&FileEntry, String> {
        self.files
            .iter()
            .find(|f| f.path == path)
            .ok_or_else(|| format!("manifest.json lists no {path}"))
    }
}

/// Where a bundle's model came from, shown to listeners.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub run: String,
    pub seed: u64,
    pub dataset: String,
    /// True when the training log was simulated (no real listening log exists for the catalog).
    pub simulated: bool,
    pub protocol: String,
    /// Test metrics of the exported seed (name -> value).
    pub metrics: std::collections::BTreeMap<String, f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BundleConfig {
    pub model: ModelConfig,
    /// Catalog track id of each model item, in model order.
    pub items: Vec<String>,
    /// Plays of each model item in the training log (recommendations for an empty history).
    pub popularity: Vec<u32>,
    pub provenance: Provenance,
    /// Labels of content modalities whose dimensions are named (e.g. MGPHot genes scaled to
    /// 0..1), for the app's "why".
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, Vec<String>>,
    /// An E4SRec bundle: the LLM that ranks, over the item table its run was trained on (the
    /// model above still maps tracks, gives popularity and the content for "why").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e4srec: Option<E4SRecPart>,
}

/// What an E4SRec bundle adds: its files and how to rebuild the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct E4SRecPart {
    pub config: crate::model::e4srec::E4SRecConfig,
    /// Token ids before and after the history (the chat template rendered at export).
    pub prompt: (Vec<u32>, Vec<u32>),
    /// The LLM's GGUF file in the bundle (listed in the manifest; large, so placed by
    /// `scripts/demo-model.sh` rather than committed) and its name.
    pub llm: String,
    pub llm_name: String,
    /// The trained parts and the frozen item table (`items`; and `tags`, the tag table, when
    /// tags are embedded), safetensors, float32 or q8.
    pub trained: String,
    /// The text signals' token pieces (tokenized at export), when a signal is text.
    #[serde(default)]
    pub text: crate::model::e4srec::PromptText,
}

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

/// Checks downloaded bytes against their manifest entry.
pub fn verify(entry: &FileEntry, bytes: &[u8]) -> Result<(), String> {
    if bytes.len() as u64 != entry.bytes {
        return Err(format!(
            "{}: {} bytes, the manifest says {}",
            entry.path,
            bytes.len(),
            entry.bytes
        ));
    }
    let sha = sha256_hex(bytes);
    if sha != entry.sha256 {
        return Err(format!(
            "{}: sha256 {sha} does not match the manifest ({})",
            entry.path, entry.sha256
        ));
    }
    Ok(())
}

/// Checks a bundle's files against its manifest, reads its config and catalog and builds the
/// recommender on `device`: what the app does with the bytes it downloaded. Errors name the file.
pub fn open(
    manifest: &Manifest,
    config: &[u8],
    catalog: &[u8],
    weights: Vec<u8>,
    device: &Device,
) -> Result<Recommender, String> {
    for (name, bytes) in [
        ("config.json", config),
        ("catalog.json", catalog),
        ("model.bpk", &weights[..]),
    ] {
        verify(manifest.file(name)?, bytes)?;
    }
    let config: BundleConfig =
        serde_json::from_slice(config).map_err(|e| format!("config.json: {e}"))?;
    let catalog: Catalog =
        serde_json::from_slice(catalog).map_err(|e| format!("catalog.json: {e}"))?;
    catalog
        .validate()
        .map_err(|e| format!("catalog.json: {e}"))?;
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
) -> Result<SeqModel, String> {
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

/// [`load_weights`] on the CPU backend (float weights).
fn load_weights_cpu(cfg: &ModelConfig, weights: Vec<u8>) -> Result<SeqModel, String> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(weights))
        .map_err(|e| format!("model.bpk: {e}"))?;
    Ok(cfg
        .init(&Device::flex())
        .try_load_record(record)
        .map_err(|e| format!("model.bpk: {e}"))?
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
    ) -> Result<Self, String> {
        if config.items.len() != config.model.n_items() {
            return Err(format!(
                "config.json: {} items listed for a model of {}",
                config.items.len(),
                config.model.n_items()
            ));
        }
        if config.popularity.len() != config.items.len() {
            return Err("config.json: popularity and items differ in length".into());
        }
        let mut item_track = Vec::with_capacity(config.items.len());
        let mut track_item = vec![None; catalog.tracks.len()];
        for (i, id) in config.items.iter().enumerate() {
            let t = catalog
                .position(id)
                .ok_or_else(|| format!("config.json: item '{id}' is not in catalog.json"))?;
            item_track.push(t);
            track_item[t] = Some(i as u32);
        }
        let model = load_weights_cpu(&config.model, weights)?;
        let content = match (model.fusion(), config.model.fusion()) {
            (Some(f), Some(c)) => c
                .modalities
                .iter()
                .map(|m| m.name.clone())
                .zip(f.content_of()?)
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
    ) -> Result<(), String> {
        let part = self
            .config
            .e4srec
            .clone()
            .ok_or("config.json has no e4srec part")?;
        verify(manifest.file(&part.trained)?, trained)?;
        verify(manifest.file(&part.llm)?, &gguf)?;
        let g = crate::llm::gguf::Gguf::parse(gguf).map_err(|e| format!("{}: {e}", part.llm))?;
        let (llm, _) = crate::llm::llama::Llama::from_gguf(&g, &self.device)
            .map_err(|e| format!("{}: {e}", part.llm))?;
        drop(g);
        let mut t = crate::model::e4srec::trained_from_bytes(trained, &self.device)
            .map_err(|e| format!("{}: {e}", part.trained))?;
        let items = t
            .remove("items")
            .ok_or_else(|| format!("{}: no 'items' table", part.trained))?;
        if items.dims()[0] != self.item_track.len() {
            return Err(format!(
                "{}: {} item rows for {} model items",
                part.trained,
                items.dims()[0],
                self.item_track.len()
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
            .map_err(|e| format!("{}: {e}", part.trained))?
            .load_trained(&t)
            .map_err(|e| format!("{}: {e}", part.trained))?;
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
    ) -> Result<Vec<Recommendation>, String> {
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
    ) -> Result<Vec<Recommendation>, String> {
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
    ) -> Result<Vec<Recommendation>, String> {
        let n_catalog = self.catalog.tracks.len();
        if history
            .iter()
            .chain(exclude)
            .any(|&t| t >= n_catalog + new.len())
        {
            return Err("a track index beyond the catalog and the new tracks".into());
        }
        // The new tracks' rows, appended after the model's table (so their ids follow its
        // last row); none when the model cannot encode them.
        let rows = self.model.rows();
        let extra = match (new.is_empty(), self.model.fusion(), rows.as_ref()) {
            (false, Some(f), Some(r)) if !f.uses_ids() && self.config.e4srec.is_none() => {
                let content: Vec<Vec<Option<Vec<f32>>>> = self
                    .content
                    .iter()
                    .map(|(name, _)| new.iter().map(|t| t.content.get(name).cloned()).collect())
                    .collect();
                Some((r.dims()[0], f.encode_new(&content, &self.device)?))
            }
            _ => None,
        };
        let rows = match (&rows, &extra) {
            (Some(r), Some((_, e))) => Some(Tensor::cat(vec![r.clone(), e.clone()], 0)),
            _ => rows,
        };
        if let Some(c) = completions
            && c.len() != history.len()
        {
            return Err(format!(
                "{} completion ratios for {} history plays",
                c.len(),
                history.len()
            ));
        }
        let (items, ratios): (Vec<u32>, Vec<f32>) = history
            .iter()
            .enumerate()
            .filter_map(|(i, &t)| {
                let item = if t < n_catalog {
                    self.track_item.get(t).copied().flatten()?
                } else {
                    // Row `first + j` of the extended table is track id `first + j - 1`.
                    let (first, _) = extra.as_ref()?;
                    (first + t - n_catalog - 1) as u32
                };
                Some((item, completions.map_or(f32::NAN, |c| c[i])))
            })
            .unzip();
        let n_items = self.item_track.len();
        if self.config.e4srec.is_some() && self.e4srec.is_none() {
            return Err("an E4SRec bundle ranks once its LLM is attached (attach_e4srec)".into());
        }
        let scores: Vec<f32> = if let (Some(m), false) = (&self.e4srec, items.is_empty()) {
            // The LLM reads the history; new tracks are not in its head (none get here: the
            // bundle does not accept them).
            let ratios = [ratios.as_slice()];
            m.forward_with(&[&items], completions.is_some().then_some(&ratios[..]))
                .into_data_async()
                .await
                .map_err(|e| format!("reading scores back: {e:?}"))?
                .try_into_vec::<f32>()
                .map_err(|e| format!("reading scores back: {e:?}"))?
        } else if items.is_empty() {
            // Popularity; new tracks were never played in training.
            let mut p: Vec<f32> = self.config.popularity.iter().map(|&p| p as f32).collect();
            p.extend(extra.iter().flat_map(|(_, e)| vec![-1.0; e.dims()[0]]));
            p
        } else {
            let ratios = [ratios.as_slice()];
            let state = self.model.history_state_with(
                &[&items],
                completions.is_some().then_some(&ratios[..]),
                self.config.model.max_len(),
                true,
                rows.as_ref(),
                &self.device,
            );
            let mut s = self.model.score_all(state.clone());
            if let Some((_, e)) = &extra {
                // New tracks have no learned output bias: they get the mean one.
                let mut se = state.matmul(e.clone().transpose());
                if let Some(b) = self.model.item_bias() {
                    se = se + b.mean().unsqueeze_dim(0);
                }
                s = Tensor::cat(vec![s, se], 1);
            }
            s.into_data_async()
                .await
                .map_err(|e| format!("reading scores back: {e:?}"))?
                .try_into_vec::<f32>()
                .map_err(|e| format!("reading scores back: {e:?}"))?
        };
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
        // Conservative order: higher score first, ties by catalog position.
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.track.cmp(&b.track)));
        ranked.truncate(k);
        Ok(ranked)
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::*;
    use burn::tensor::quantization::{
        Calibration, QuantScheme, QuantStore, QuantValue, ScaleDtype,
    };
    use std::path::{Path, PathBuf};

    use crate::data::store::write_atomic;
    use crate::train::run::{RunSpec, load, test_ranks};

    #[derive(Clone)]
    pub struct ExportOptions {
        pub run: PathBuf,
        pub seed: Option<u64>,
        pub catalog: PathBuf,
        pub quantize: String,
        pub out: PathBuf,
        pub name: Option<String>,
        pub description: Option<String>,
        pub simulated: bool,
        /// Where to write the float weights as safetensors by module path.
        pub tensors: Option<PathBuf>,
    }

    /// Collects every float parameter with its module path.
    #[derive(Default)]
    struct Named {
        path: Vec<String>,
        tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    }

    impl burn::module::ModuleVisitor for Named {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }

        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }

        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let dims = t.dims().to_vec();
            let values = t
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("float32 weights");
            self.tensors.push((self.path.join("."), dims, values));
        }
    }

    /// Writes a model's float parameters as safetensors, each named by its module path.
    pub fn write_tensors(model: &SeqModel, path: &Path) -> Result<(), String> {
        let mut named = Named::default();
        model.visit(&mut named);
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = named
            .tensors
            .into_iter()
            .map(|(n, d, v)| (n, d, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
            .iter()
            .map(|(n, d, b)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, d.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| format!("{n}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        let data = safetensors::serialize(views, None).map_err(|e| e.to_string())?;
        write_atomic(path, |w| std::io::Write::write_all(w, &data))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    fn write_file(out: &Path, name: &str, bytes: &[u8]) -> Result<FileEntry, String> {
        let path = out.join(name);
        write_atomic(&path, |w| std::io::Write::write_all(w, bytes)).map_err(|e| e.to_string())?;
        Ok(FileEntry {
            path: name.to_string(),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        })
    }

    /// Quantization block: values per f32 scale.
    pub const BLOCK: u8 = 64;

    /// The quantizer for `q8` (8-bit symmetric, blocks of 64 with an f32 scale each) or `q4`.
    pub fn quantizer(kind: &str) -> Result<Option<BlockQuantizer>, String> {
        let value = match kind {
            "none" => return Ok(None),
            "q8" => QuantValue::Q8S,
            "q4" => QuantValue::Q4S,
            other => return Err(format!("--quantize {other}: expected none, q8 or q4")),
        };
        let scheme = QuantScheme::default()
            .with_value(value)
            .with_store(QuantStore::PackedU32(0))
            .per_block([BLOCK], ScaleDtype::F32);
        Ok(Some(BlockQuantizer { scheme, kept: 0 }))
    }

    /// Quantizes every float parameter whose rows split into whole blocks (of 64 values, else 56,
    /// 48, .., 16); the others (e.g. musicnn's 50 tag probabilities) stay float32.
    pub struct BlockQuantizer {
        scheme: QuantScheme,
        /// Parameters left in float32.
        pub kept: usize,
    }

    impl burn::module::ModuleMapper for BlockQuantizer {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let last = param.dims()[D - 1];
            // Blocks of 64, or the largest smaller multiple of 8 that splits the rows (a 200-wide
            // musicnn table: 40), the scale overhead staying small.
            let Some(block) = (8..=BLOCK)
                .rev()
                .step_by(8)
                .find(|&b| last.is_multiple_of(b as usize))
                .filter(|&b| b >= 16)
            else {
                self.kept += 1;
                return param;
            };
            let scheme = self.scheme.per_block([block], ScaleDtype::F32);
            param.map(|t| {
                let range =
                    burn::tensor::quantization::compute_range(&scheme, &t, &Calibration::MinMax);
                let q = burn::tensor::quantization::compute_q_params(&scheme, range);
                t.quantize(&scheme, q)
            })
        }
    }

    /// Makes the catalog's audio URLs relative to the bundle: `../MUSIC/...` when the catalog's
    /// folder sits beside the bundle (bundles share one copy of the audio), else the files are
    /// linked into the bundle.
    fn place_audio(catalog: &mut Catalog, catalog_path: &Path, out: &Path) -> Result<(), String> {
        let abs = |p: &Path| std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()));
        let cat_dir = abs(catalog_path)?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let out_abs = abs(out)?;
        if cat_dir == out_abs {
            return Ok(());
        }
        let siblings = cat_dir.parent().is_some() && cat_dir.parent() == out_abs.parent();
        for t in &mut catalog.tracks {
            if t.audio.contains("://") || t.audio.starts_with('/') {
                continue;
            }
            if siblings {
                let name = cat_dir.file_name().unwrap_or_default().to_string_lossy();
                t.audio = format!("../{name}/{}", t.audio);
            } else {
                let from = cat_dir.join(&t.audio);
                let to = out.join(&t.audio);
                crate::catalog::build::link_or_copy(&from, &to)
                    .map_err(|e| format!("{} -> {}: {e}", from.display(), to.display()))?;
            }
        }
        Ok(())
    }

    /// Writes a bundle from a training run's seed and a catalog; returns its manifest. An
    /// E4SRec run (`e4srec.json`) gives an E4SRec bundle over its item encoder's.
    pub fn export(opts: &ExportOptions) -> Result<Manifest, String> {
        if opts.run.join(crate::train::e4srec::SPEC_FILE).is_file() {
            return export_e4srec(opts);
        }
        let spec_path = opts.run.join("run.json");
        let spec: RunSpec = serde_json::from_str(
            &std::fs::read_to_string(&spec_path)
                .map_err(|e| format!("{}: {e}", spec_path.display()))?,
        )
        .map_err(|e| format!("{}: {e}", spec_path.display()))?;
        let seed = opts.seed.unwrap_or(spec.seeds[0]);
        let weights_path = opts.run.join(format!("seed-{seed}")).join("best.bpk");
        if !weights_path.exists() {
            return Err(format!(
                "{}: no trained model (has seed {seed} finished?)",
                weights_path.display()
            ));
        }
        let catalog_text = std::fs::read_to_string(&opts.catalog)
            .map_err(|e| format!("{}: {e}", opts.catalog.display()))?;
        let mut catalog: Catalog = serde_json::from_str(&catalog_text)
            .map_err(|e| format!("{}: {e}", opts.catalog.display()))?;
        catalog
            .validate()
            .map_err(|e| format!("{}: {e}", opts.catalog.display()))?;
        place_audio(&mut catalog, &opts.catalog, &opts.out)?;
        // The run's data and split: item order and popularity, and the test cases below.
        let loaded = load(&spec)?;
        let data = &loaded.data;
        let items: Vec<String> = data.tracks.iter().map(str::to_string).collect();
        if let Some(missing) = items.iter().find(|id| catalog.position(id).is_none()) {
            return Err(format!(
                "track '{missing}' of the training data is not in {}",
                opts.catalog.display()
            ));
        }
        let mut popularity = vec![0u32; items.len()];
        for &t in &data.track {
            popularity[t as usize] += 1;
        }
        let device = Device::flex();
        let model = crate::train::load_model(&spec.model, &weights_path, &device)
            .map_err(|e| e.to_string())?;
        if let Some(p) = &opts.tensors {
            write_tensors(&model, p)?;
        }
        let serialise = |m: SeqModel| {
            m.into_record()
                .into_bytes()
                .map_err(|e| format!("serialising the model: {e}"))
        };
        let (weights, quantization_effect) = match quantizer(&opts.quantize)? {
            None => (serialise(model)?, None),
            Some(mut q) => {
                let float_bytes = serialise(model.clone())?.len() as u64;
                let weights = serialise(model.clone().map(&mut q))?;
                // Score the test cases with both, the quantized model loaded as the app loads it.
                let restored = load_weights(&spec.model, weights.to_vec(), &device)?;
                let (a, _) = test_ranks(&loaded, &model, &spec.model, &device);
                let (b, _) = test_ranks(&loaded, &restored, &spec.model, &device);
                let metrics = ["HR@10", "NDCG@10", "MRR"]
                    .iter()
                    .map(|m| {
                        let v = |r: &crate::eval::Ranks| r.mean(m).unwrap_or(f64::NAN);
                        (m.to_string(), [v(&a.protocol), v(&b.protocol)])
                    })
                    .collect();
                let effect = QuantizationEffect {
                    protocol: spec.protocol.clone(),
                    metrics,
                    bytes: [float_bytes, weights.len() as u64],
                };
                (weights, Some(effect))
            }
        };
        let metrics = seed_metrics(&opts.run, seed);
        // Named dimensions of feature-store content (musicnn's tags, MGPHot genes), for "why".
        let mut labels = std::collections::BTreeMap::new();
        for src in &spec.content {
            if src.path.join("manifest.json").is_file() {
                let store = crate::features::store::FeatureStore::load(&src.path)?;
                if let Some(l) = store.modality(&src.name).and_then(|m| m.labels.clone()) {
                    labels.insert(src.name.clone(), l);
                }
            }
        }
        let config = BundleConfig {
            model: spec.model.clone(),
            items,
            popularity,
            labels,
            e4srec: None,
            provenance: Provenance {
                run: opts.run.display().to_string(),
                seed,
                dataset: loaded.info.name.clone(),
                simulated: opts.simulated,
                protocol: spec.protocol.clone(),
                metrics,
            },
        };
        std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
        let files = vec![
            write_file(&opts.out, "model.bpk", &weights)?,
            write_file(
                &opts.out,
                "config.json",
                serde_json::to_string_pretty(&config).unwrap().as_bytes(),
            )?,
            write_file(
                &opts.out,
                "catalog.json",
                serde_json::to_string_pretty(&catalog).unwrap().as_bytes(),
            )?,
        ];
        let name = opts.name.clone().unwrap_or_else(|| {
            opts.out
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        });
        let manifest = Manifest {
            format: FORMAT.to_string(),
            description: opts.description.clone().unwrap_or_else(|| {
                format!(
                    "{} over {} tracks ({}{})",
                    spec.model.label(),
                    catalog.tracks.len(),
                    if opts.quantize == "none" {
                        "float32".to_string()
                    } else {
                        opts.quantize.clone()
                    },
                    if opts.simulated {
                        ", trained on simulated sessions"
                    } else {
                        ""
                    }
                )
            }),
            name,
            quantization: opts.quantize.clone(),
            files,
            quantization_effect,
        };
        let text = serde_json::to_string_pretty(&manifest).unwrap();
        write_atomic(&opts.out.join("manifest.json"), |w| {
            std::io::Write::write_all(w, text.as_bytes())
        })
        .map_err(|e| e.to_string())?;
        Ok(manifest)
    }

    /// A run's test metrics for one seed (empty when its results are not written yet).
    fn seed_metrics(run: &Path, seed: u64) -> std::collections::BTreeMap<String, f64> {
        let mut metrics = std::collections::BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(run.join("results.json"))
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        {
            let pos = v["seeds"]
                .as_array()
                .and_then(|s| s.iter().position(|x| x.as_u64() == Some(seed)));
            if let (Some(pos), Some(m)) = (pos, v["metrics"].as_object()) {
                for (k, val) in m {
                    if let Some(x) = val["per_seed"].get(pos).and_then(|x| x.as_f64()) {
                        metrics.insert(k.clone(), x);
                    }
                }
            }
        }
        metrics
    }

    /// An E4SRec bundle: the item encoder's bundle (its run's seed that gave the item table),
    /// plus `e4srec.safetensors` (projection, head and LoRA factors, and the frozen item table,
    /// q8 unless `--quantize none`) and the LLM's GGUF (linked or copied as `llm.gguf`). With
    /// q8 the test cases are scored with the float and the restored parts.
    fn export_e4srec(opts: &ExportOptions) -> Result<Manifest, String> {
        use crate::train::e4srec::{E4SRecScorer, E4SRecSpec, load_trained, prepare};
        let spec_path = opts.run.join(crate::train::e4srec::SPEC_FILE);
        let mut spec: E4SRecSpec = crate::train::run::read_json(&spec_path)?;
        let seed = opts.seed.unwrap_or(spec.seeds[0]);
        let best = opts
            .run
            .join(format!("seed-{seed}"))
            .join("best.safetensors");
        if !best.exists() {
            return Err(format!(
                "{}: no trained E4SRec (has seed {seed} finished?)",
                best.display()
            ));
        }
        let q8 = match opts.quantize.as_str() {
            "none" => false,
            "q8" => true,
            o => return Err(format!("--quantize {o}: an E4SRec bundle is none or q8")),
        };
        let base = ExportOptions {
            run: spec.encoder.clone(),
            seed: Some(spec.encoder_seed),
            tensors: None,
            ..opts.clone()
        };
        let mut manifest = export(&base)?;
        let device = Device::flex();
        let p = prepare(&mut spec, &device)?;
        let mut trained = load_trained(&best, &device)?;
        let float_parts = trained.clone();
        trained.insert("items".into(), p.items.clone());
        if let Some(t) = &p.signals.tags {
            trained.insert("tags".into(), t.clone());
        }
        let bytes = crate::model::e4srec::trained_to_bytes(&trained, q8)?;
        // The test cases, scored with the float parts and with the parts as the app reads them.
        let l = &p.loaded;
        let score = |m: &crate::model::e4srec::E4SRec| {
            let scorer = E4SRecScorer {
                model: m,
                batch: spec.train.batch_size,
            };
            crate::eval::evaluate(
                &scorer,
                &l.data,
                &l.prepared.split.test,
                l.prepared.test_candidates.as_deref(),
                false,
            )
        };
        let quantization_effect = if q8 {
            let mut restored = crate::model::e4srec::trained_from_bytes(&bytes, &device)?;
            let items = restored.remove("items").ok_or("no items table written")?;
            let tags = restored.remove("tags");
            let float_model = p.model(&spec, &float_parts, &device)?;
            let a = score(&float_model);
            // The same decoder with the parts as the app reads them (one GGUF load, not two).
            let mut restored_model = float_model.load_trained(&restored)?;
            restored_model.items = items;
            restored_model.tags = tags;
            let b = score(&restored_model);
            let metrics = ["HR@10", "NDCG@10", "MRR"]
                .iter()
                .map(|m| {
                    let v = |r: &crate::eval::Ranks| r.mean(m).unwrap_or(f64::NAN);
                    (m.to_string(), [v(&a), v(&b)])
                })
                .collect();
            let float_bytes = crate::model::e4srec::trained_to_bytes(&trained, false)?.len();
            Some(QuantizationEffect {
                protocol: p.encoder.protocol.clone(),
                metrics,
                bytes: [float_bytes as u64, bytes.len() as u64],
            })
        } else {
            None
        };
        let llm_file = "llm.gguf";
        let llm_to = opts.out.join(llm_file);
        let _ = std::fs::remove_file(&llm_to);
        crate::catalog::build::link_or_copy(&spec.llm, &llm_to)
            .map_err(|e| format!("{} -> {}: {e}", spec.llm.display(), llm_to.display()))?;
        let cfg_path = opts.out.join("config.json");
        let mut config: BundleConfig = crate::train::run::read_json(&cfg_path)?;
        config.e4srec = Some(E4SRecPart {
            config: spec.config.clone(),
            prompt: p.prompt.clone(),
            llm: llm_file.into(),
            llm_name: p.llm_name.clone(),
            trained: "e4srec.safetensors".into(),
            text: p.signals.text.clone(),
        });
        config.provenance.run = opts.run.display().to_string();
        config.provenance.seed = seed;
        config.provenance.metrics = seed_metrics(&opts.run, seed);
        let mut files: Vec<FileEntry> = manifest
            .files
            .into_iter()
            .filter(|f| f.path != "config.json")
            .collect();
        files.push(write_file(&opts.out, "e4srec.safetensors", &bytes)?);
        files.push(write_file(
            &opts.out,
            "config.json",
            serde_json::to_string_pretty(&config).unwrap().as_bytes(),
        )?);
        files.push(FileEntry {
            path: llm_file.into(),
            bytes: std::fs::metadata(&spec.llm)
                .map_err(|e| format!("{}: {e}", spec.llm.display()))?
                .len(),
            sha256: spec.llm_sha256.clone(),
        });
        manifest.files = files;
        manifest.quantization = opts.quantize.clone();
        manifest.quantization_effect = quantization_effect;
        if opts.description.is_none() {
            manifest.description = format!(
                "E4SRec: {} (LoRA rank {}, last {} plays{}) over the item table of {}, {}{}",
                p.llm_name,
                spec.config.lora_rank,
                spec.config.history,
                match spec.config.signals_label() {
                    l if l.is_empty() => String::new(),
                    l => format!(", {l}"),
                },
                p.encoder.model.label(),
                if q8 { "q8" } else { "float32" },
                if opts.simulated {
                    ", trained on simulated sessions"
                } else {
                    ""
                }
            );
        }
        let text = serde_json::to_string_pretty(&manifest).unwrap();
        write_atomic(&opts.out.join("manifest.json"), |w| {
            std::io::Write::write_all(w, text.as_bytes())
        })
        .map_err(|e| e.to_string())?;
        Ok(manifest)
    }

    /// Adds (or replaces) a bundle in the `index.json` of the folder that holds it.
    pub fn register(bundle_dir: &Path, manifest: &Manifest) -> Result<PathBuf, String> {
        let parent = bundle_dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let index_path = parent.join("index.json");
        let mut index: serde_json::Value = match std::fs::read_to_string(&index_path) {
            Ok(t) => {
                serde_json::from_str(&t).map_err(|e| format!("{}: {e}", index_path.display()))?
            }
            Err(_) => serde_json::json!({ "bundles": [] }),
        };
        let dir = bundle_dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let list = index["bundles"]
            .as_array_mut()
            .ok_or_else(|| format!("{}: no \"bundles\" list", index_path.display()))?;
        list.retain(|b| b["path"].as_str() != Some(dir.as_str()));
        list.push(serde_json::json!({
            "name": manifest.name,
            "path": dir,
            "description": manifest.description,
        }));
        let text = serde_json::to_string_pretty(&index).unwrap();
        write_atomic(&index_path, |w| {
            std::io::Write::write_all(w, text.as_bytes())
        })
        .map_err(|e| e.to_string())?;
        Ok(index_path)
    }
}
