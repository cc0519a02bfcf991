//! `encore ablate`: backbones x modality subsets x fusion strategies x seeds on one dataset and
//! protocol. Every cell is an ordinary run folder (`OUT/CELL/`, as `encore train` writes), so a
//! killed ablation resumes inside the cell it was training and finished cells are skipped. Each
//! backbone's id-only run is the baseline its fused cells are compared with, per user and paired
//! (bootstrap CI of the difference, bootstrap and Wilcoxon p-values).

use super::ExperimentError;
use super::run::{RunSpec, finished_results, run_started, seed_ranks, start};
use super::runner::Execution;
use crate::eval::Ranks;
use crate::experiment::results::{MetricComparison, MetricSummary, Results, SeedRanks, compare};
use crate::model::ModelConfig;
use crate::model::fusion::{FusionConfig, Strategy};
use crate::train::TrainConfig;
use crate::train::content::ContentSource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The metrics of the ablation table.
pub const METRICS: [&str; 6] = [
    "Recall@5",
    "Recall@10",
    "Recall@20",
    "NDCG@5",
    "NDCG@10",
    "NDCG@20",
];

/// `encore ablate --config FILE` (TOML). Relative paths are relative to `root` (by default the
/// configuration file's folder).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AblationConfig {
    /// A name for the report.
    pub name: String,
    pub data: PathBuf,
    #[serde(default = "default_format")]
    pub format: String,
    #[serde(default = "default_preset")]
    pub preset: String,
    pub protocol: String,
    #[serde(default)]
    pub samples: Option<PathBuf>,
    /// Seeds 0..seeds per cell.
    pub seeds: u64,
    #[serde(default)]
    pub split_seed: u64,
    /// Cold start share (see `encore train --cold`).
    #[serde(default)]
    pub cold: Option<f64>,
    pub backbones: Vec<String>,
    pub fusions: Vec<Strategy>,
    /// Modality name -> source (a feature-store folder or an item2attributes .json).
    pub content: BTreeMap<String, PathBuf>,
    /// Modality subsets to fuse; by default each modality alone, and all together when there
    /// are several.
    #[serde(default)]
    pub subsets: Vec<Vec<String>>,
    #[serde(default = "default_modality_dropout")]
    pub modality_dropout: f64,
    /// Completion input of every cell (`buckets:N` or `scalar`), none by default.
    #[serde(default)]
    pub completion: Option<String>,
    /// Ranking the table compares under: `protocol`, `full` or `full-unheard`.
    #[serde(default = "default_ranking")]
    pub ranking: String,
    /// Training settings (those left out keep `encore train`'s defaults).
    #[serde(default)]
    pub train: TrainOverrides,
    /// Per backbone, hyper-parameter overrides (as `encore train --set`).
    #[serde(default)]
    pub model: BTreeMap<String, BTreeMap<String, f64>>,
}

fn default_format() -> String {
    "encore".into()
}
fn default_preset() -> String {
    "none".into()
}
fn default_modality_dropout() -> f64 {
    0.1
}
fn default_ranking() -> String {
    "protocol".into()
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainOverrides {
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub lr: Option<f64>,
    pub weight_decay: Option<f32>,
    pub warmup_steps: Option<usize>,
    pub decay: Option<crate::train::Decay>,
    /// 0 disables clipping.
    pub grad_clip: Option<f32>,
    pub loss: Option<String>,
    pub patience: Option<usize>,
    pub eval_every: Option<usize>,
    pub valid_metric: Option<String>,
    pub engagement_floor: Option<f32>,
}

impl TrainOverrides {
    pub fn apply(&self, mut t: TrainConfig) -> Result<TrainConfig, ExperimentError> {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { t.$f = v.clone(); } )* };
        }
        set!(
            epochs,
            batch_size,
            lr,
            weight_decay,
            warmup_steps,
            decay,
            patience,
            eval_every,
            valid_metric
        );
        if let Some(c) = self.grad_clip {
            t.grad_clip = (c > 0.0).then_some(c);
        }
        if let Some(l) = &self.loss {
            t.loss = l
                .parse()
                .map_err(|e: String| ExperimentError::setting("loss", e))?;
        }
        if let Some(f) = self.engagement_floor {
            t.engagement_floor = Some(f);
        }
        Ok(t)
    }
}

/// One cell: a backbone, and the fusion and modalities it uses (none: the id-only baseline).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Folder name: `sasrec-id`, `sasrec-concat-tags`, `gru4rec-gate-audio+tags`.
    pub key: String,
    pub backbone: String,
    pub fusion: Option<Strategy>,
    pub modalities: Vec<String>,
}

impl AblationConfig {
    pub fn read(path: &Path) -> Result<Self, ExperimentError> {
        let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::io(path, e))?;
        let c: Self = toml::from_str(&text).map_err(|source| {
            let line = source
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0);
            ExperimentError::AblationToml {
                path: path.to_path_buf(),
                line,
                source,
            }
        })?;
        c.validate(path)?;
        Ok(c)
    }

    /// Checks the configuration read from `path` (which the errors name).
    fn validate(&self, path: &Path) -> Result<(), ExperimentError> {
        let bad = |field: &str, reason: String| Err(ExperimentError::ablation(path, field, reason));
        if self.seeds == 0 {
            return bad("seeds", "seeds must be at least 1".into());
        }
        if self.backbones.is_empty() {
            return bad("backbones", "no backbones".into());
        }
        for b in &self.backbones {
            ModelConfig::defaults(b, 0).map_err(|e| ExperimentError::at(path, e))?;
        }
        for b in self.model.keys() {
            if !self.backbones.contains(b) {
                return bad(
                    "model",
                    format!("[model.{b}]: '{b}' is not one of the backbones"),
                );
            }
        }
        for s in self.subsets() {
            if s.is_empty() {
                return bad("subsets", "an empty modality subset".into());
            }
            for m in &s {
                if !self.content.contains_key(m) {
                    return bad(
                        "subsets",
                        format!(
                            "subset {s:?}: no content '{m}' (the [content] table has: {})",
                            self.content.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
        }
        if !["protocol", "full", "full-unheard"].contains(&self.ranking.as_str()) {
            return bad(
                "ranking",
                format!("ranking '{}' (protocol, full, full-unheard)", self.ranking),
            );
        }
        self.train
            .apply(TrainConfig::default())
            .map_err(|e| ExperimentError::at(path, e))?;
        if let Some(c) = &self.completion
            && let Err(e) = c.parse::<crate::model::completion::CompletionInput>()
        {
            return bad("completion", e);
        }
        Ok(())
    }

    /// The modality subsets, defaults filled in.
    pub fn subsets(&self) -> Vec<Vec<String>> {
        if !self.subsets.is_empty() {
            return self.subsets.clone();
        }
        let all: Vec<String> = self.content.keys().cloned().collect();
        let mut v: Vec<Vec<String>> = all.iter().map(|m| vec![m.clone()]).collect();
        if all.len() > 1 {
            v.push(all);
        }
        v
    }

    /// Every cell, each backbone's id-only baseline first.
    pub fn cells(&self) -> Vec<Cell> {
        let mut out = Vec::new();
        for b in &self.backbones {
            out.push(Cell {
                key: format!("{b}-id"),
                backbone: b.clone(),
                fusion: None,
                modalities: vec![],
            });
            for s in self.subsets() {
                for &f in &self.fusions {
                    out.push(Cell {
                        key: format!("{b}-{f}-{}", s.join("+")),
                        backbone: b.clone(),
                        fusion: Some(f),
                        modalities: s.clone(),
                    });
                }
            }
        }
        out
    }

    /// The run a cell is.
    pub fn spec(&self, cell: &Cell, root: &Path) -> Result<RunSpec, ExperimentError> {
        let at = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                root.join(p)
            }
        };
        let mut model = ModelConfig::defaults(&cell.backbone, 0)?;
        if let Some(sets) = self.model.get(&cell.backbone) {
            for (k, v) in sets {
                model.set(k, *v)?;
            }
        }
        model
            .set_fusion(cell.fusion.map(|s| {
                FusionConfig::new(s, vec![]).with_modality_dropout(self.modality_dropout)
            }));
        Ok(RunSpec {
            data: at(&self.data),
            format: self.format.clone(),
            preset: self.preset.clone(),
            protocol: self.protocol.clone(),
            samples: self.samples.as_deref().map(at),
            model,
            content: cell
                .modalities
                .iter()
                .map(|m| ContentSource {
                    name: m.clone(),
                    path: at(&self.content[m]),
                })
                .collect(),
            train: self.train.apply(TrainConfig::default())?,
            seeds: (0..self.seeds).collect(),
            split_seed: self.split_seed,
            cold: self.cold,
        })
    }
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub cell: Cell,
    pub seeds: usize,
    /// Mean and 95 % CI over seeds, for [`METRICS`].
    pub metrics: BTreeMap<String, MetricSummary>,
    /// Against the same backbone's id-only cell, paired per user (absent for baselines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lift: Vec<Lift>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lift {
    #[serde(flatten)]
    pub comparison: MetricComparison,
    /// `(B - A) / A` in per cent; `None` when the baseline is 0 (a cold-start id-only cell),
    /// where no relative change exists.
    pub relative_pct: Option<f64>,
}

/// `diff / base` in per cent, or `None` for a baseline of 0 (cold-start targets an id-only
/// model can never rank), which no relative change describes.
fn relative_pct(diff: f64, base: f64) -> Option<f64> {
    (base > 0.0).then(|| 100.0 * diff / base)
}

/// `ablation.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ablation {
    pub name: String,
    pub dataset: String,
    pub dataset_sha256: String,
    pub protocol: String,
    pub ranking: String,
    pub config: AblationConfig,
    pub cells: Vec<CellResult>,
    /// Most-popular and item-kNN on the same test cases (under the protocol's ranking).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub floors: BTreeMap<String, BTreeMap<String, f64>>,
    pub code_version: String,
}

/// The name under which `results.json` holds a table metric: Recall@K is HR@K (one target
/// per case).
fn results_key(metric: &str) -> String {
    metric.replace("Recall@", "HR@")
}

fn pick(r: &SeedRanks, ranking: &str) -> Ranks {
    match ranking {
        "full" => r.full.clone(),
        "full-unheard" => r.full_unheard.clone(),
        _ => r.protocol.clone(),
    }
}

fn summaries(r: &Results, ranking: &str) -> BTreeMap<String, MetricSummary> {
    let m = match ranking {
        "full" => &r.metrics_full,
        "full-unheard" => &r.metrics_full_unheard,
        _ => &r.metrics,
    };
    METRICS
        .iter()
        .filter_map(|k| m.get(&results_key(k)).map(|v| (k.to_string(), v.clone())))
        .collect()
}

/// Runs (or resumes) every cell, then writes `ablation.json`, `ablation.md` and `ablation.svg`
/// in `out`. `only` limits the cells run to those whose key contains it (the table still
/// includes every finished cell).
pub fn ablate(
    cfg: &AblationConfig,
    root: &Path,
    out: &Path,
    how: &Execution,
    only: Option<&str>,
) -> Result<Ablation, ExperimentError> {
    std::fs::create_dir_all(out).map_err(|e| ExperimentError::io(out, e))?;
    let cells = cfg.cells();
    let mut done: Vec<(Cell, Results)> = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let dir = out.join(&cell.key);
        let spec = cfg.spec(cell, root)?;
        let wanted = only.is_none_or(|o| cell.key.contains(o));
        if !wanted {
            if dir.join("run.json").exists() {
                let (spec, _) = start(spec, &dir)?;
                if let Some(r) = finished_results(&spec, &dir) {
                    done.push((cell.clone(), r));
                }
            }
            continue;
        }
        eprintln!("== cell {}/{}: {}", i + 1, cells.len(), cell.key);
        let (spec, l) = start(spec, &dir)?;
        let r = match finished_results(&spec, &dir) {
            Some(r) => {
                eprintln!("{}: finished, skipped", cell.key);
                r
            }
            None => run_started(&spec, &l, &dir, how)?,
        };
        done.push((cell.clone(), r));
    }
    let Some((_, first)) = done.first() else {
        return Err(ExperimentError::Invalid("no cell has finished".into()));
    };
    let mut rows = Vec::new();
    for (cell, r) in &done {
        let mut row = CellResult {
            cell: cell.clone(),
            seeds: r.seeds.len(),
            metrics: summaries(r, &cfg.ranking),
            lift: vec![],
        };
        if cell.fusion.is_some() {
            let base = out.join(format!("{}-id", cell.backbone));
            if base.join("results.json").exists() {
                let (_, a) = seed_ranks(&base)?;
                let (_, b) = seed_ranks(&out.join(&cell.key))?;
                let a: Vec<Ranks> = a.iter().map(|s| pick(s, &cfg.ranking)).collect();
                let b: Vec<Ranks> = b.iter().map(|s| pick(s, &cfg.ranking)).collect();
                row.lift = compare(&a, &b, &METRICS, 0)
                    .into_iter()
                    .map(|c| Lift {
                        relative_pct: relative_pct(c.test.diff, c.test.mean_a),
                        comparison: c,
                    })
                    .collect();
            }
        }
        rows.push(row);
    }
    let a = Ablation {
        name: cfg.name.clone(),
        dataset: first.dataset.name.clone(),
        dataset_sha256: first.dataset.sha256.clone(),
        protocol: first.protocol.name.clone(),
        ranking: cfg.ranking.clone(),
        config: cfg.clone(),
        cells: rows,
        floors: if cfg.ranking == "protocol" {
            first.baselines.clone()
        } else {
            BTreeMap::new()
        },
        code_version: crate::data::store::code_version(),
    };
    write(out, &a)?;
    Ok(a)
}

fn write(out: &Path, a: &Ablation) -> Result<(), ExperimentError> {
    let json =
        serde_json::to_string_pretty(a).map_err(|source| crate::util::fsio::FileError::Json {
            path: out.join("ablation.json"),
            source,
        })?;
    for (name, text) in [
        ("ablation.json", json),
        ("ablation.md", a.to_markdown()),
        ("ablation.svg", a.to_svg("NDCG@10")),
    ] {
        let p = out.join(name);
        crate::util::fsio::write_atomic(&p, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    }
    Ok(())
}

impl Ablation {
    /// The paper-style table: every metric per cell, then each fused cell's lift over its
    /// backbone's id-only run on Recall@10 and NDCG@10.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Ablation '{}': {} ({}), {} ranking\n",
            self.name, self.dataset, self.protocol, self.ranking
        );
        let _ = writeln!(
            s,
            "Mean over seeds (95 % CI half-width). Lift: the cell minus its backbone's id-only run, \
             per user and paired, with the bootstrap 95 % CI and p-values (bootstrap / Wilcoxon).\n"
        );
        let _ = write!(s, "| cell | seeds |");
        for m in METRICS {
            let _ = write!(s, " {m} |");
        }
        let _ = writeln!(s, " lift Recall@10 | lift NDCG@10 |");
        let _ = writeln!(s, "|---|---|{}---|---|", "---|".repeat(METRICS.len()));
        for c in &self.cells {
            let _ = write!(s, "| {} | {} |", c.cell.key, c.seeds);
            for m in METRICS {
                match c.metrics.get(m) {
                    Some(v) => {
                        let _ = write!(s, " {:.4} ±{:.4} |", v.mean, (v.ci95[1] - v.ci95[0]) / 2.0);
                    }
                    None => s.push_str(" |"),
                }
            }
            for m in ["Recall@10", "NDCG@10"] {
                match c.lift.iter().find(|l| l.comparison.metric == m) {
                    Some(l) => {
                        let t = &l.comparison.test;
                        let rel = l
                            .relative_pct
                            .map_or(String::new(), |r| format!(" ({r:+.1} %)"));
                        let _ = write!(
                            s,
                            " {:+.4} [{:+.4}, {:+.4}]{rel}, p {:.4} / {:.4} |",
                            t.diff, t.ci95[0], t.ci95[1], t.p_bootstrap, t.p_wilcoxon
                        );
                    }
                    None if c.cell.fusion.is_none() => s.push_str(" (baseline) |"),
                    None => s.push_str(" (no baseline) |"),
                }
            }
            s.push('\n');
        }
        for (name, m) in &self.floors {
            let _ = write!(s, "| {name} (floor) | 1 |");
            for k in METRICS {
                match m.get(&results_key(k)) {
                    Some(v) => {
                        let _ = write!(s, " {v:.4} |");
                    }
                    None => s.push_str(" |"),
                }
            }
            s.push_str(" | |\n");
        }
        s
    }

    /// Bars of one metric per cell with their 95 % CIs, id-only baselines in grey.
    pub fn to_svg(&self, metric: &str) -> String {
        const ROW: f64 = 22.0;
        const LEFT: f64 = 210.0;
        const W: f64 = 640.0;
        let n = self.cells.len();
        let h = 50.0 + ROW * n as f64;
        let hi = self
            .cells
            .iter()
            .filter_map(|c| c.metrics.get(metric).map(|v| v.ci95[1]))
            .fold(1e-9f64, f64::max)
            * 1.1;
        let x = |v: f64| LEFT + (W - LEFT - 20.0) * (v / hi).clamp(0.0, 1.0);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="16" font-size="13">{metric} ({} ranking), mean and 95 % CI over seeds</text>"#,
            self.ranking
        );
        for (i, c) in self.cells.iter().enumerate() {
            let y = 30.0 + ROW * i as f64;
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 14.0,
                c.cell.key
            );
            if let Some(v) = c.metrics.get(metric) {
                let fill = if c.cell.fusion.is_none() {
                    "#999"
                } else {
                    "#1f77b4"
                };
                let _ = writeln!(
                    s,
                    r#"<rect x="{LEFT}" y="{}" width="{:.1}" height="{}" fill="{fill}"><title>{:.4}</title></rect>"#,
                    y + 3.0,
                    x(v.mean) - LEFT,
                    ROW - 6.0,
                    v.mean
                );
                let _ = writeln!(
                    s,
                    r#"<line x1="{:.1}" x2="{:.1}" y1="{}" y2="{}" stroke="black"/>"#,
                    x(v.ci95[0]),
                    x(v.ci95[1]),
                    y + ROW / 2.0,
                    y + ROW / 2.0
                );
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{}">{:.4}</text>"#,
                    x(v.ci95[1]) + 4.0,
                    y + 14.0,
                    v.mean
                );
            }
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"
name = "t"
data = "LastFM.txt"
format = "s3rec"
protocol = "loo-sampled99"
samples = "LastFM_sample.txt"
seeds = 2
backbones = ["sasrec", "gru4rec"]
fusions = ["concat", "content-only"]
[content]
tags = "LastFM_item2attributes.json"
audio = "/abs/features"
[train]
epochs = 7
loss = "sampled-softmax:10"
[model.sasrec]
dropout = 0.5
"#;

    #[test]
    fn cells_cover_backbones_subsets_and_fusions() {
        let c: AblationConfig = toml::from_str(CFG).unwrap();
        c.validate(Path::new("ablation.toml")).unwrap();
        let keys: Vec<String> = c.cells().into_iter().map(|c| c.key).collect();
        assert_eq!(keys.len(), 2 * (1 + 3 * 2));
        assert_eq!(keys[0], "sasrec-id");
        assert!(keys.contains(&"gru4rec-content-only-audio+tags".to_string()));
        let cell = &c.cells()[1];
        let spec = c.spec(cell, Path::new("/data")).unwrap();
        assert_eq!(spec.data, Path::new("/data/LastFM.txt"));
        assert_eq!(spec.content[0].path, Path::new("/abs/features"));
        assert_eq!(spec.train.epochs, 7);
        assert_eq!(spec.train.loss.to_string(), "sampled-softmax:10");
        assert_eq!(spec.seeds, vec![0, 1]);
        assert_eq!(spec.model.fusion().unwrap().strategy, Strategy::Concat);
        assert!(spec.model.canonical_json().contains(r#""dropout":0.5"#));
    }

    #[test]
    fn a_lift_over_a_zero_baseline_has_no_relative_change() {
        assert_eq!(relative_pct(0.1, 0.5), Some(20.0));
        assert_eq!(relative_pct(0.02, 0.0), None);
    }

    #[test]
    fn bad_configurations_name_the_problem() {
        let bad = |from: &str, to: &str, want: &str| {
            let text = CFG.replace(from, to);
            let err = toml::from_str::<AblationConfig>(&text)
                .map_err(|e| e.to_string())
                .and_then(|c| {
                    c.validate(Path::new("ablation.toml"))
                        .map_err(|e| e.to_string())
                        .map(|_| c)
                })
                .err()
                .unwrap_or_default();
            assert!(err.contains(want), "{from} -> {to}: {err}");
        };
        bad("\"gru4rec\"]", "\"lstm\"]", "unknown model 'lstm'");
        bad("\"content-only\"]", "\"mean\"]", "mean");
        bad("seeds = 2", "seeds = 0", "at least 1");
        bad(
            "seeds = 2",
            "seeds = 2\nsubsets = [[\"lyrics\"]]",
            "no content 'lyrics'",
        );
        bad(
            "[model.sasrec]",
            "[model.bert4rec]",
            "not one of the backbones",
        );
        bad("epochs = 7", "epochs = 7\nepoch = 3", "epoch");
    }
}
