//! Export: a finished run's model, its catalog and their provenance written as a bundle the web
//! app downloads (float32, or burn's q8/q4 weights), and a bundle registered in the app's index.

use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::Bytes;
use burn::tensor::quantization::{Calibration, QuantScheme, QuantStore, QuantValue, ScaleDtype};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::bundle::load_weights;
use crate::bundle::{
    BundleConfig, BundleProvenance, E4SRecPart, FORMAT, FileEntry, Manifest, QuantizationEffect,
};
use crate::catalog::Catalog;
use crate::eval::e4srec::E4SRecScorer;
use crate::experiment::ExperimentError;
use crate::experiment::e4srec::{E4SRecSetup, E4SRecSpec, load_trained, prepare};
use crate::experiment::run::{Loaded, RunSpec, load, test_ranks};
use crate::model::SeqModel;
use crate::util::fsio::write_atomic;
use crate::util::sha256_hex;

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
pub fn write_tensors(model: &SeqModel, path: &Path) -> Result<(), ExperimentError> {
    let mut named = Named::default();
    model.visit(&mut named);
    let data = crate::util::weights::write_f32(&named.tensors, None)?;
    Ok(write_atomic(path, |w| std::io::Write::write_all(w, &data))?)
}

fn write_file(out: &Path, name: &str, bytes: &[u8]) -> Result<FileEntry, ExperimentError> {
    let path = out.join(name);
    write_atomic(&path, |w| std::io::Write::write_all(w, bytes))?;
    Ok(FileEntry {
        path: name.to_string(),
        bytes: bytes.len() as u64,
        sha256: sha256_hex(bytes),
    })
}

/// Quantization block: values per f32 scale.
pub const BLOCK: u8 = 64;

/// The quantizer for `q8` (8-bit symmetric, blocks of 64 with an f32 scale each) or `q4`.
pub fn quantizer(kind: &str) -> Result<Option<BlockQuantizer>, ExperimentError> {
    let value = match kind {
        "none" => return Ok(None),
        "q8" => QuantValue::Q8S,
        "q4" => QuantValue::Q4S,
        other => {
            return Err(ExperimentError::setting(
                "quantize",
                format!("--quantize {other}: expected none, q8 or q4"),
            ));
        }
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
fn place_audio(
    catalog: &mut Catalog,
    catalog_path: &Path,
    out: &Path,
) -> Result<(), ExperimentError> {
    let abs = |p: &Path| std::path::absolute(p).map_err(|e| ExperimentError::io(p, e));
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
                .map_err(|source| ExperimentError::Link { from, to, source })?;
        }
    }
    Ok(())
}

/// Writes a bundle from a training run's seed and a catalog; returns its manifest. An
/// E4SRec run (`e4srec.json`) gives an E4SRec bundle over its item encoder's.
pub fn export(opts: &ExportOptions) -> Result<Manifest, ExperimentError> {
    if opts
        .run
        .join(crate::experiment::e4srec::SPEC_FILE)
        .is_file()
    {
        return export_e4srec(opts);
    }
    let spec = read_run_spec(&opts.run)?;
    let seed = opts.seed.unwrap_or(spec.seeds[0]);
    let weights_path = opts.run.join(format!("seed-{seed}")).join("best.bpk");
    if !weights_path.exists() {
        return Err(ExperimentError::Seed {
            path: weights_path,
            seed,
            reason: format!("no trained model (has seed {seed} finished?)"),
        });
    }
    let catalog = read_catalog(opts)?;
    // The run's data and split: item order and popularity, and the test cases below.
    let loaded = load(&spec)?;
    let (items, popularity) = items_and_popularity(&loaded, &catalog, &opts.catalog)?;
    let device = Device::flex();
    let model = crate::train::load_model(&spec.model, &weights_path, &device)?;
    if let Some(p) = &opts.tensors {
        write_tensors(&model, p)?;
    }
    let (weights, quantization_effect) =
        model_bytes(&opts.quantize, model, &spec, &loaded, &device)?;
    let metrics = seed_metrics(&opts.run, seed);
    let config = BundleConfig {
        model: spec.model.clone(),
        items,
        popularity,
        labels: content_labels(&spec)?,
        e4srec: None,
        provenance: BundleProvenance {
            run: opts.run.display().to_string(),
            seed,
            dataset: loaded.info.name.clone(),
            simulated: opts.simulated,
            protocol: spec.protocol.clone(),
            metrics,
        },
    };
    std::fs::create_dir_all(&opts.out).map_err(|e| ExperimentError::io(&opts.out, e))?;
    let files = vec![
        write_file(&opts.out, "model.bpk", &weights)?,
        write_json_file(&opts.out, "config.json", &config)?,
        write_json_file(&opts.out, "catalog.json", &catalog)?,
    ];
    let manifest = Manifest {
        format: FORMAT.to_string(),
        description: opts
            .description
            .clone()
            .unwrap_or_else(|| default_description(opts, &spec, catalog.tracks.len())),
        name: bundle_name(opts),
        quantization: opts.quantize.clone(),
        files,
        quantization_effect,
    };
    write_manifest(&opts.out, &manifest)?;
    Ok(manifest)
}

/// A training run's `run.json`.
fn read_run_spec(run: &Path) -> Result<RunSpec, ExperimentError> {
    Ok(crate::util::fsio::read_json(&run.join("run.json"))?)
}

/// The catalog, checked, with its audio placed for the bundle.
fn read_catalog(opts: &ExportOptions) -> Result<Catalog, ExperimentError> {
    let mut catalog: Catalog = crate::util::fsio::read_json(&opts.catalog)?;
    catalog
        .validate()
        .map_err(|e| ExperimentError::at(&opts.catalog, e))?;
    place_audio(&mut catalog, &opts.catalog, &opts.out)?;
    Ok(catalog)
}

/// The run's tracks in item order and each one's plays; every track must be in the catalog
/// (read from `catalog_path`).
fn items_and_popularity(
    loaded: &Loaded,
    catalog: &Catalog,
    catalog_path: &Path,
) -> Result<(Vec<String>, Vec<u32>), ExperimentError> {
    let data = &loaded.data;
    let items: Vec<String> = data.tracks.iter().map(str::to_string).collect();
    if let Some(missing) = items.iter().find(|id| catalog.position(id).is_none()) {
        return Err(ExperimentError::NotInCatalog {
            track: missing.clone(),
            catalog: catalog_path.to_path_buf(),
        });
    }
    let mut popularity = vec![0u32; items.len()];
    for &t in &data.track {
        popularity[t as usize] += 1;
    }
    Ok((items, popularity))
}

/// The model's weights as the bundle stores them: float32, or quantized (`quantize`) with the
/// test cases scored by the float model and by the quantized one as the app loads it.
fn model_bytes(
    quantize: &str,
    model: SeqModel,
    spec: &RunSpec,
    loaded: &Loaded,
    device: &Device,
) -> Result<(Bytes, Option<QuantizationEffect>), ExperimentError> {
    let serialise = |m: SeqModel| {
        m.into_record()
            .into_bytes()
            .map_err(|e| ExperimentError::Serialise(e.to_string()))
    };
    let Some(mut q) = quantizer(quantize)? else {
        return Ok((serialise(model)?, None));
    };
    let float_bytes = serialise(model.clone())?.len() as u64;
    let weights = serialise(model.clone().map(&mut q))?;
    // Score the test cases with both, the quantized model loaded as the app loads it.
    let restored = load_weights(&spec.model, weights.to_vec(), device)?;
    let (a, _) = test_ranks(loaded, &model, &spec.model, device);
    let (b, _) = test_ranks(loaded, &restored, &spec.model, device);
    let effect = QuantizationEffect {
        protocol: spec.protocol.clone(),
        metrics: effect_metrics(&a.protocol, &b.protocol),
        bytes: [float_bytes, weights.len() as u64],
    };
    Ok((weights, Some(effect)))
}

/// The metrics a quantization effect reports, float (`a`) and quantized (`b`).
fn effect_metrics(
    a: &crate::eval::Ranks,
    b: &crate::eval::Ranks,
) -> std::collections::BTreeMap<String, [f64; 2]> {
    ["HR@10", "NDCG@10", "MRR"]
        .iter()
        .map(|m| {
            let v = |r: &crate::eval::Ranks| r.mean(m).unwrap_or(f64::NAN);
            (m.to_string(), [v(a), v(b)])
        })
        .collect()
}

/// Named dimensions of feature-store content (musicnn's tags, MGPHot genes), for "why".
fn content_labels(
    spec: &RunSpec,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, ExperimentError> {
    let mut labels = std::collections::BTreeMap::new();
    for src in &spec.content {
        if src.path.join("manifest.json").is_file() {
            let store = crate::features::store::FeatureStore::load(&src.path)?;
            if let Some(l) = store.modality(&src.name).and_then(|m| m.labels.clone()) {
                labels.insert(src.name.clone(), l);
            }
        }
    }
    Ok(labels)
}

/// The bundle's name: `--name`, else its folder's.
fn bundle_name(opts: &ExportOptions) -> String {
    opts.name.clone().unwrap_or_else(|| {
        opts.out
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    })
}

/// "MODEL over N tracks (float32 or the quantization, and whether simulated)".
fn default_description(opts: &ExportOptions, spec: &RunSpec, tracks: usize) -> String {
    format!(
        "{} over {} tracks ({}{})",
        spec.model.label(),
        tracks,
        if opts.quantize == "none" {
            "float32".to_string()
        } else {
            opts.quantize.clone()
        },
        simulated_note(opts)
    )
}

/// What a description adds for a bundle trained on simulated sessions.
fn simulated_note(opts: &ExportOptions) -> &'static str {
    if opts.simulated {
        ", trained on simulated sessions"
    } else {
        ""
    }
}

/// Writes `value` as pretty JSON to `out/name`.
fn write_json_file(
    out: &Path,
    name: &str,
    value: &impl serde::Serialize,
) -> Result<FileEntry, ExperimentError> {
    write_file(
        out,
        name,
        serde_json::to_string_pretty(value).unwrap().as_bytes(),
    )
}

/// Writes the bundle's `manifest.json`.
fn write_manifest(out: &Path, manifest: &Manifest) -> Result<(), ExperimentError> {
    let text = serde_json::to_string_pretty(manifest).unwrap();
    Ok(write_atomic(&out.join("manifest.json"), |w| {
        std::io::Write::write_all(w, text.as_bytes())
    })?)
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
fn export_e4srec(opts: &ExportOptions) -> Result<Manifest, ExperimentError> {
    let spec_path = opts.run.join(crate::experiment::e4srec::SPEC_FILE);
    let mut spec: E4SRecSpec = crate::experiment::runner::read_json(&spec_path)?;
    let seed = opts.seed.unwrap_or(spec.seeds[0]);
    let best = opts
        .run
        .join(format!("seed-{seed}"))
        .join("best.safetensors");
    if !best.exists() {
        return Err(ExperimentError::Seed {
            path: best,
            seed,
            reason: format!("no trained E4SRec (has seed {seed} finished?)"),
        });
    }
    let q8 = match opts.quantize.as_str() {
        "none" => false,
        "q8" => true,
        o => {
            return Err(ExperimentError::setting(
                "quantize",
                format!("--quantize {o}: an E4SRec bundle is none or q8"),
            ));
        }
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
    let parts = E4SRecParts::of(&p, load_trained(&best, &device)?, q8)?;
    let quantization_effect = if q8 {
        Some(e4srec_effect(&spec, &p, &parts, &device)?)
    } else {
        None
    };
    let llm_file = "llm.gguf";
    let llm_to = opts.out.join(llm_file);
    let _ = std::fs::remove_file(&llm_to);
    crate::catalog::build::link_or_copy(&spec.llm, &llm_to).map_err(|source| {
        ExperimentError::Link {
            from: spec.llm.clone(),
            to: llm_to.clone(),
            source,
        }
    })?;
    let config = e4srec_config(opts, &spec, &p, seed, llm_file)?;
    let mut files: Vec<FileEntry> = manifest
        .files
        .into_iter()
        .filter(|f| f.path != "config.json")
        .collect();
    files.push(write_file(&opts.out, "e4srec.safetensors", &parts.bytes)?);
    files.push(write_json_file(&opts.out, "config.json", &config)?);
    files.push(FileEntry {
        path: llm_file.into(),
        bytes: std::fs::metadata(&spec.llm)
            .map_err(|e| ExperimentError::io(&spec.llm, e))?
            .len(),
        sha256: spec.llm_sha256.clone(),
    });
    manifest.files = files;
    manifest.quantization = opts.quantize.clone();
    manifest.quantization_effect = quantization_effect;
    if opts.description.is_none() {
        manifest.description = e4srec_description(opts, &spec, &p, q8);
    }
    write_manifest(&opts.out, &manifest)?;
    Ok(manifest)
}

/// An E4SRec seed's trained parts: as trained (float), and as the bundle writes them (with the
/// frozen item table and the tag table, q8 or float).
struct E4SRecParts {
    float: BTreeMap<String, Tensor<2>>,
    /// The float parts with `items` (and `tags`) added.
    written: BTreeMap<String, Tensor<2>>,
    bytes: Vec<u8>,
}

impl E4SRecParts {
    fn of(
        p: &E4SRecSetup,
        trained: BTreeMap<String, Tensor<2>>,
        q8: bool,
    ) -> Result<Self, ExperimentError> {
        let mut written = trained;
        let float = written.clone();
        written.insert("items".into(), p.items.clone());
        if let Some(t) = &p.signals.tags {
            written.insert("tags".into(), t.clone());
        }
        let bytes = crate::model::e4srec::trained_to_bytes(&written, q8)?;
        Ok(E4SRecParts {
            float,
            written,
            bytes,
        })
    }
}

/// The test cases, scored with the float parts and with the parts as the app reads them.
fn e4srec_effect(
    spec: &E4SRecSpec,
    p: &E4SRecSetup,
    parts: &E4SRecParts,
    device: &Device,
) -> Result<QuantizationEffect, ExperimentError> {
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
    let mut restored = crate::model::e4srec::trained_from_bytes(&parts.bytes, device)?;
    let items = restored
        .remove("items")
        .ok_or_else(|| ExperimentError::Invalid("no items table written".into()))?;
    let tags = restored.remove("tags");
    let float_model = p.model(spec, &parts.float, device)?;
    let a = score(&float_model);
    // The same decoder with the parts as the app reads them (one GGUF load, not two).
    let mut restored_model = float_model.load_trained(&restored)?;
    restored_model.items = items;
    restored_model.tags = tags;
    let b = score(&restored_model);
    let float_bytes = crate::model::e4srec::trained_to_bytes(&parts.written, false)?.len();
    Ok(QuantizationEffect {
        protocol: p.encoder.protocol.clone(),
        metrics: effect_metrics(&a, &b),
        bytes: [float_bytes as u64, parts.bytes.len() as u64],
    })
}

/// The item encoder's bundle config (already in `opts.out`) with the E4SRec part added and
/// the provenance of the E4SRec run's `seed`.
fn e4srec_config(
    opts: &ExportOptions,
    spec: &E4SRecSpec,
    p: &E4SRecSetup,
    seed: u64,
    llm_file: &str,
) -> Result<BundleConfig, ExperimentError> {
    let cfg_path = opts.out.join("config.json");
    let mut config: BundleConfig = crate::experiment::runner::read_json(&cfg_path)?;
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
    Ok(config)
}

/// "E4SRec: LLM (LoRA rank, history, signals) over the item table of ENCODER, q8 or float32".
fn e4srec_description(
    opts: &ExportOptions,
    spec: &E4SRecSpec,
    p: &E4SRecSetup,
    q8: bool,
) -> String {
    format!(
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
        simulated_note(opts)
    )
}

/// Adds (or replaces) a bundle in the `index.json` of the folder that holds it.
pub fn register(bundle_dir: &Path, manifest: &Manifest) -> Result<PathBuf, ExperimentError> {
    let parent = bundle_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let index_path = parent.join("index.json");
    let mut index: serde_json::Value = match std::fs::read_to_string(&index_path) {
        Ok(t) => serde_json::from_str(&t).map_err(|source| crate::util::fsio::FileError::Json {
            path: index_path.clone(),
            source,
        })?,
        Err(_) => serde_json::json!({ "bundles": [] }),
    };
    let dir = bundle_dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let list = index["bundles"]
        .as_array_mut()
        .ok_or_else(|| ExperimentError::Field {
            path: index_path.clone(),
            field: "bundles".into(),
            reason: "no \"bundles\" list".into(),
        })?;
    list.retain(|b| b["path"].as_str() != Some(dir.as_str()));
    list.push(serde_json::json!({
        "name": manifest.name,
        "path": dir,
        "description": manifest.description,
    }));
    let text = serde_json::to_string_pretty(&index).unwrap();
    write_atomic(&index_path, |w| {
        std::io::Write::write_all(w, text.as_bytes())
    })?;
    Ok(index_path)
}
