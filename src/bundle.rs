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
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(weights))
        .map_err(|e| format!("model.bpk: {e}"))?;
    let cpu = Device::flex();
    let model = cfg
        .init(&cpu)
        .try_load_record(record)
        .map_err(|e| format!("model.bpk: {e}"))?
        .map(&mut Dequantizer);
    Ok(if *device == cpu {
        model
    } else {
        model.to_device(device)
    })
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
        let model = load_weights(&config.model, weights, device)?;
        Ok(Recommender {
            model,
            config,
            catalog,
            item_track,
            track_item,
            device: device.clone(),
        })
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
                let item = self.track_item.get(t).copied().flatten()?;
                Some((item, completions.map_or(f32::NAN, |c| c[i])))
            })
            .unzip();
        let scores: Vec<f32> = if items.is_empty() {
            self.config.popularity.iter().map(|&p| p as f32).collect()
        } else {
            let ratios = [ratios.as_slice()];
            let state = self.model.history_state_with(
                &[&items],
                completions.is_some().then_some(&ratios[..]),
                self.config.model.max_len(),
                true,
                self.model.rows().as_ref(),
                &self.device,
            );
            let s = self.model.score_all(state);
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
                track: self.item_track[i],
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
    use burn::module::Quantizer;
    use burn::tensor::quantization::{
        Calibration, QuantScheme, QuantStore, QuantValue, ScaleDtype,
    };
    use std::path::{Path, PathBuf};

    use crate::data::store::write_atomic;
    use crate::train::run::{RunSpec, load, test_ranks};

    pub struct ExportOptions {
        pub run: PathBuf,
        pub seed: Option<u64>,
        pub catalog: PathBuf,
        pub quantize: String,
        pub out: PathBuf,
        pub name: Option<String>,
        pub description: Option<String>,
        pub simulated: bool,
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

    /// The quantizer for `q8` (8-bit symmetric, blocks of 64 with an f32 scale each) or `q4`.
    pub fn quantizer(kind: &str) -> Result<Option<Quantizer>, String> {
        let value = match kind {
            "none" => return Ok(None),
            "q8" => QuantValue::Q8S,
            "q4" => QuantValue::Q4S,
            other => return Err(format!("--quantize {other}: expected none, q8 or q4")),
        };
        let scheme = QuantScheme::default()
            .with_value(value)
            .with_store(QuantStore::PackedU32(0))
            .per_block([64], ScaleDtype::F32);
        Ok(Some(Quantizer::new(Calibration::MinMax, scheme)))
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

    /// Writes a bundle from a training run's seed and a catalog; returns its manifest.
    pub fn export(opts: &ExportOptions) -> Result<Manifest, String> {
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
        let serialise = |m: SeqModel| {
            m.into_record()
                .into_bytes()
                .map_err(|e| format!("serialising the model: {e}"))
        };
        let (weights, quantization_effect) = match quantizer(&opts.quantize)? {
            None => (serialise(model)?, None),
            Some(mut q) => {
                let float_bytes = serialise(model.clone())?.len() as u64;
                let weights = serialise(model.clone().quantize_weights(&mut q))?;
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
        let mut metrics = std::collections::BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(opts.run.join("results.json"))
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
        let config = BundleConfig {
            model: spec.model.clone(),
            items,
            popularity,
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
                    spec.model.name(),
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
