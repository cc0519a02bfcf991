//! A run's results: `results.json` (dataset, protocol, model and training config, seeds, code
//! version, and every metric as mean, 95 % CI and per-seed values), `results.md` (the same as
//! tables), `curves.svg` (training loss and validation metric per epoch and seed), and the
//! paired comparison of two runs.

use crate::eval::metrics::Ranks;
use crate::eval::stats::{Paired, paired, summarize};
use crate::model::ModelConfig;
use crate::train::{EpochLog, TrainConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    pub path: String,
    pub format: String,
    pub sha256: String,
    pub users: usize,
    pub items: usize,
    pub plays: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProtocolInfo {
    pub name: String,
    pub description: String,
    /// The samples file whose negatives were used, with its sha256.
    pub samples: Option<(String, String)>,
    pub test_cases: usize,
    pub valid_cases: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The backbone, with its fusion strategy when it has content (`sasrec+concat`).
    pub name: String,
    pub config: ModelConfig,
    /// The content fused into the items, in model order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<ContentInfo>,
    pub train: TrainConfig,
    /// E4SRec: the LLM and its configuration over the item encoder (`config` is then the
    /// encoder's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmInfo>,
}

/// The LLM side of an E4SRec or zero-shot run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmInfo {
    pub name: String,
    pub path: String,
    pub sha256: String,
    /// The item encoder's run folder and seed.
    pub encoder: String,
    pub encoder_seed: u64,
    /// E4SRec's configuration (absent for a zero-shot run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e4srec: Option<crate::model::e4srec::E4SRecConfig>,
    /// A zero-shot run's prompt and scoring (nothing trained; `encoder` only lends its data,
    /// protocol and candidates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zero_shot: Option<crate::llm::likelihood::ZeroShotConfig>,
}

/// One content modality of a run: where it came from and how much of the catalogue it covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContentInfo {
    pub name: String,
    pub path: String,
    pub dim: usize,
    /// Tracks that have it.
    pub present: usize,
    /// sha256 of the aligned values and presence.
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    pub mean: f64,
    pub ci95: [f64; 2],
    pub per_seed: Vec<f64>,
}

/// Per seed: how training went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedTraining {
    pub seed: u64,
    pub best_epoch: usize,
    pub best_valid: f64,
    pub epochs: usize,
    pub seconds: f64,
    /// Training windows (sequences) per second, over all epochs.
    pub seq_per_s: f64,
    /// Target positions (interactions predicted) per second, over all epochs.
    #[serde(default)]
    pub targets_per_s: f64,
    pub curve: Vec<EpochLog>,
}

impl SeedTraining {
    /// A seed's summary from its training curve: time, and windows and targets per second
    /// over all epochs.
    pub fn from_curve(seed: u64, best_epoch: usize, best_valid: f64, curve: Vec<EpochLog>) -> Self {
        let seconds: f64 = curve.iter().map(|e| e.seconds).sum();
        let windows: f64 = curve.iter().map(|e| e.seq_per_s * e.seconds).sum();
        let targets: f64 = curve.iter().map(|e| e.targets_per_s * e.seconds).sum();
        Self {
            seed,
            best_epoch,
            best_valid,
            epochs: curve.len(),
            seconds,
            seq_per_s: windows / seconds.max(1e-9),
            targets_per_s: targets / seconds.max(1e-9),
            curve,
        }
    }
}

/// Per seed, the test ranks under each protocol variant (`RUN/seed-K/ranks.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedRanks {
    pub protocol: Ranks,
    pub full: Ranks,
    pub full_unheard: Ranks,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub dataset: DatasetInfo,
    pub protocol: ProtocolInfo,
    pub model: ModelInfo,
    pub seeds: Vec<u64>,
    pub code_version: String,
    pub device: String,
    /// The protocol's metrics.
    pub metrics: BTreeMap<String, MetricSummary>,
    /// Every track a candidate.
    pub metrics_full: BTreeMap<String, MetricSummary>,
    /// Every track the user has not heard before a candidate.
    pub metrics_full_unheard: BTreeMap<String, MetricSummary>,
    pub training: Vec<SeedTraining>,
    /// Test evaluation throughput: users x items per second, each user scored once over every
    /// track and ranked under the protocol and both full-catalogue views.
    pub eval_user_items_per_s: f64,
    /// The floors on the same test cases under the protocol (`most-popular`, `item-knn`):
    /// deterministic, so one value per metric.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub baselines: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Mean, CI and per-seed values of every metric over the seeds' ranks.
pub fn summarize_metrics(per_seed: &[&Ranks]) -> BTreeMap<String, MetricSummary> {
    Ranks::metric_names()
        .into_iter()
        .map(|name| {
            let v: Vec<f64> = per_seed
                .iter()
                .map(|r| r.mean(&name).expect("known metric"))
                .collect();
            let s = summarize(&v);
            (
                name,
                MetricSummary {
                    mean: s.mean,
                    ci95: s.ci95,
                    per_seed: v,
                },
            )
        })
        .collect()
}

/// The metrics the compact tables show.
pub const HEADLINE: [&str; 9] = [
    "HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR", "HR@100",
];

fn table(out: &mut String, title: &str, m: &BTreeMap<String, MetricSummary>, names: &[&str]) {
    if m.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n### {title}\n");
    let _ = writeln!(out, "| metric | mean | 95 % CI | per seed |");
    let _ = writeln!(out, "|---|---|---|---|");
    for n in names {
        if let Some(s) = m.get(*n) {
            let seeds: Vec<String> = s.per_seed.iter().map(|v| format!("{v:.4}")).collect();
            let _ = writeln!(
                out,
                "| {n} | {:.4} | [{:.4}, {:.4}] | {} |",
                s.mean,
                s.ci95[0],
                s.ci95[1],
                seeds.join(" ")
            );
        }
    }
}

impl Results {
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        self.write_header(&mut s);
        self.write_model(&mut s);
        self.write_metrics(&mut s);
        if self.is_zero_shot() {
            self.write_scoring(&mut s);
        } else {
            self.write_training(&mut s);
        }
        s
    }

    /// Whether this is a zero-shot run (nothing trained).
    fn is_zero_shot(&self) -> bool {
        self.model
            .llm
            .as_ref()
            .is_some_and(|l| l.zero_shot.is_some())
    }

    /// The title, the data, the protocol and where the negatives came from.
    fn write_header(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "# {} on {} ({} seeds)\n",
            self.model.name,
            self.dataset.name,
            self.seeds.len()
        );
        let _ = writeln!(
            s,
            "- data: `{}` ({}), sha256 `{}`: {} users, {} tracks, {} plays",
            self.dataset.path,
            self.dataset.format,
            &self.dataset.sha256[..self.dataset.sha256.len().min(16)],
            self.dataset.users,
            self.dataset.items,
            self.dataset.plays
        );
        let _ = writeln!(
            s,
            "- protocol: {} ({} test cases, {} validation cases)",
            self.protocol.description, self.protocol.test_cases, self.protocol.valid_cases
        );
        if let Some((p, sha)) = &self.protocol.samples {
            let _ = writeln!(
                s,
                "- negatives from `{p}` (sha256 `{}`)",
                &sha[..sha.len().min(16)]
            );
        }
    }

    /// The model (with its LLM), its content, its training settings, the seeds and the code.
    fn write_model(&self, s: &mut String) {
        match &self.model.llm {
            None => {
                let _ = writeln!(s, "- model: `{}`", self.model.config.canonical_json());
            }
            Some(l) if l.zero_shot.is_some() => {
                let _ = writeln!(
                    s,
                    "- model: zero-shot likelihood ranking by `{}` ({}, sha256 `{}`), `{}`; nothing trained",
                    l.name,
                    l.path,
                    &l.sha256[..l.sha256.len().min(16)],
                    serde_json::to_string(&l.zero_shot).unwrap_or_default()
                );
                let _ = writeln!(s, "- data, protocol and candidates of `{}`", l.encoder);
            }
            Some(l) => {
                let _ = writeln!(
                    s,
                    "- model: E4SRec on `{}` ({}, sha256 `{}`), `{}`",
                    l.name,
                    l.path,
                    &l.sha256[..l.sha256.len().min(16)],
                    serde_json::to_string(&l.e4srec).unwrap_or_default()
                );
                let _ = writeln!(
                    s,
                    "- item encoder: `{}` seed {}, `{}`",
                    l.encoder,
                    l.encoder_seed,
                    self.model.config.canonical_json()
                );
            }
        }
        for c in &self.model.content {
            let _ = writeln!(
                s,
                "- content `{}`: {} dims, {} of {} tracks, from `{}` (sha256 `{}`)",
                c.name,
                c.dim,
                c.present,
                self.dataset.items,
                c.path,
                &c.sha256[..c.sha256.len().min(16)]
            );
        }
        if !self.is_zero_shot() {
            let _ = writeln!(
                s,
                "- training: `{}`",
                serde_json::to_string(&self.model.train).unwrap_or_default()
            );
        }
        let _ = writeln!(
            s,
            "- seeds {:?} on {}; code {}",
            self.seeds, self.device, self.code_version
        );
    }

    /// Every metric under the protocol, the floors, and the headline metrics under both
    /// full-catalogue views.
    fn write_metrics(&self, s: &mut String) {
        let mut all: Vec<String> = Ranks::metric_names();
        all.sort_by_key(|n| {
            (
                n.split('@').next().map(str::to_string),
                n.split('@').nth(1).and_then(|k| k.parse::<usize>().ok()),
            )
        });
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        table(
            s,
            &format!("{} (the protocol)", self.protocol.name),
            &self.metrics,
            &all,
        );
        self.write_floors(s);
        table(s, "full catalogue", &self.metrics_full, &HEADLINE);
        table(
            s,
            "full catalogue, tracks already heard left out",
            &self.metrics_full_unheard,
            &HEADLINE,
        );
    }

    /// The floors' headline metrics on the same cases, when computed.
    fn write_floors(&self, s: &mut String) {
        if self.baselines.is_empty() {
            return;
        }
        let _ = writeln!(
            s,
            "\n### floors on the same cases ({})\n",
            self.protocol.name
        );
        let _ = writeln!(s, "| floor | {} |", HEADLINE.join(" | "));
        let _ = writeln!(s, "|---|{}", "---|".repeat(HEADLINE.len()));
        for (name, m) in &self.baselines {
            let v: Vec<String> = HEADLINE
                .iter()
                .map(|k| m.get(*k).map_or(String::new(), |v| format!("{v:.4}")))
                .collect();
            let _ = writeln!(s, "| {name} | {} |", v.join(" | "));
        }
    }

    /// A zero-shot run's scoring time.
    fn write_scoring(&self, s: &mut String) {
        let secs: f64 = self.training.iter().map(|t| t.seconds).sum();
        let _ = writeln!(
            s,
            "\nScoring: {} cases in {secs:.0} s ({:.1} s a case, {:.0} candidates per second).",
            self.protocol.test_cases,
            secs / self.protocol.test_cases.max(1) as f64,
            self.eval_user_items_per_s
        );
    }

    /// Each seed's training, and the evaluation speed.
    fn write_training(&self, s: &mut String) {
        let _ = writeln!(s, "\n### training\n");
        let _ = writeln!(
            s,
            "| seed | best epoch | best valid {} | epochs | seconds | seq/s | targets/s |",
            self.model.train.valid_metric
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for t in &self.training {
            let _ = writeln!(
                s,
                "| {} | {} | {:.4} | {} | {:.1} | {:.0} | {:.0} |",
                t.seed,
                t.best_epoch,
                t.best_valid,
                t.epochs,
                t.seconds,
                t.seq_per_s,
                t.targets_per_s
            );
        }
        let _ = writeln!(
            s,
            "\nEvaluation: {:.3e} user x item scores per second (every track scored once per user, ranked three ways).",
            self.eval_user_items_per_s
        );
    }
}

/// What a curves panel plots of an epoch.
type Series = fn(&EpochLog) -> Option<f64>;

/// A curves panel's size and margin.
const PANEL_W: f64 = 420.0;
const PANEL_H: f64 = 260.0;
const PANEL_PAD: f64 = 45.0;

/// The seeds' line colours, in turn.
const COLOURS: [&str; 7] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
];

/// Training curves as an SVG: loss (left) and the validation metric (right) per epoch, one line
/// per seed.
pub fn curves_svg(training: &[SeedTraining], metric: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">"#,
        2.0 * PANEL_W,
        PANEL_H + 20.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let valid_title = format!("validation {metric}");
    let panels: [(&str, Series); 2] = [
        ("training loss", |e| Some(e.loss)),
        (&valid_title, |e| e.valid),
    ];
    for (pi, (title, f)) in panels.iter().enumerate() {
        let pts: Vec<Vec<(f64, f64)>> = training
            .iter()
            .map(|t| {
                t.curve
                    .iter()
                    .filter_map(|e| f(e).filter(|v| v.is_finite()).map(|v| (e.epoch as f64, v)))
                    .collect()
            })
            .collect();
        let panel = Panel::over(pi as f64 * PANEL_W, &pts);
        panel.write_axes(&mut s, title);
        for (i, line) in pts.iter().enumerate() {
            panel.write_line(&mut s, line, i, training[i].seed);
        }
    }
    s.push_str("</svg>\n");
    s
}

/// One panel of the curves: its left edge and the ranges its axes span.
struct Panel {
    x0: f64,
    xmax: f64,
    ymin: f64,
    ymax: f64,
}

impl Panel {
    /// The panel at `x0` spanning every point of `pts` (epochs from 1, values over at least 1e-9).
    fn over(x0: f64, pts: &[Vec<(f64, f64)>]) -> Panel {
        let all = pts.iter().flatten();
        let (mut xmax, mut ymin, mut ymax) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in all {
            xmax = xmax.max(x);
            ymin = ymin.min(y);
            ymax = ymax.max(y);
        }
        if !ymin.is_finite() {
            (ymin, ymax) = (0.0, 1.0);
        }
        if ymax - ymin < 1e-9 {
            ymax = ymin + 1.0;
        }
        Panel {
            x0,
            xmax,
            ymin,
            ymax,
        }
    }

    fn sx(&self, x: f64) -> f64 {
        self.x0 + PANEL_PAD + (x - 1.0) / (self.xmax - 1.0).max(1.0) * (PANEL_W - 1.5 * PANEL_PAD)
    }

    fn sy(&self, y: f64) -> f64 {
        PANEL_H - PANEL_PAD + 10.0
            - (y - self.ymin) / (self.ymax - self.ymin) * (PANEL_H - 1.5 * PANEL_PAD)
    }

    /// The title, both axes, the value range and the epoch range.
    fn write_axes(&self, s: &mut String, title: &str) {
        let (sx, sy) = (|x| self.sx(x), |y| self.sy(y));
        let (xmax, ymin, ymax) = (self.xmax, self.ymin, self.ymax);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="15" text-anchor="middle" font-size="13">{title}</text>"#,
            self.x0 + PANEL_W / 2.0
        );
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
            sx(1.0),
            sy(ymin),
            sx(xmax),
            sy(ymin),
            sx(1.0),
            sy(ymin),
            sx(1.0),
            sy(ymax)
        );
        for (v, anchor) in [(ymin, "end"), (ymax, "end")] {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="{anchor}">{v:.4}</text>"#,
                sx(1.0) - 4.0,
                sy(v) + 4.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">epoch (1 to {xmax})</text>"#,
            self.x0 + PANEL_W / 2.0,
            PANEL_H + 5.0
        );
    }

    /// Seed `seed`'s line (the `i`th), unless it has no points.
    fn write_line(&self, s: &mut String, line: &[(f64, f64)], i: usize, seed: u64) {
        if line.is_empty() {
            return;
        }
        let d: Vec<String> = line
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", self.sx(x), self.sy(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"><title>seed {}</title></polyline>"#,
            COLOURS[i % COLOURS.len()],
            d.join(" "),
            seed
        );
    }
}

/// Writes `results.json`, `results.md` and `curves.svg` into `dir` (each atomically).
pub fn write_results(dir: &Path, r: &Results) -> Result<(), super::ExperimentError> {
    let json =
        serde_json::to_string_pretty(r).map_err(|source| crate::util::fsio::FileError::Json {
            path: dir.join("results.json"),
            source,
        })?;
    for (name, text) in [
        ("results.json", json),
        ("results.md", r.to_markdown()),
        (
            "curves.svg",
            curves_svg(&r.training, &r.model.train.valid_metric),
        ),
    ] {
        crate::util::fsio::write_atomic(&dir.join(name), |w| {
            std::io::Write::write_all(w, text.as_bytes())
        })?;
    }
    Ok(())
}

/// A paired comparison of two runs on one metric, per user (each user's value averaged over the
/// run's seeds), over the users both runs evaluated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricComparison {
    pub metric: String,
    #[serde(flatten)]
    pub test: Paired,
}

/// Per user, a metric's mean over seeds.
pub fn per_user(seeds: &[Ranks], metric: &str) -> BTreeMap<u32, f64> {
    let mut sum: BTreeMap<u32, (f64, usize)> = BTreeMap::new();
    for r in seeds {
        let v = r.values(metric).expect("known metric");
        for (u, x) in r.users.iter().zip(v) {
            let e = sum.entry(*u).or_default();
            e.0 += x;
            e.1 += 1;
        }
    }
    sum.into_iter()
        .map(|(u, (s, n))| (u, s / n as f64))
        .collect()
}

pub fn compare(a: &[Ranks], b: &[Ranks], metrics: &[&str], seed: u64) -> Vec<MetricComparison> {
    metrics
        .iter()
        .map(|m| {
            let (ua, ub) = (per_user(a, m), per_user(b, m));
            let (va, vb): (Vec<f64>, Vec<f64>) = ua
                .iter()
                .filter_map(|(u, x)| ub.get(u).map(|y| (*x, *y)))
                .unzip();
            MetricComparison {
                metric: m.to_string(),
                test: paired(&va, &vb, 10_000, seed),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_values_average_over_seeds() {
        let mut a = Ranks::default();
        a.push(0, 1);
        a.push(1, 20);
        let mut b = Ranks::default();
        b.push(0, 3);
        b.push(1, 1);
        let m = per_user(&[a, b], "HR@1");
        assert_eq!(m[&0], 0.5);
        assert_eq!(m[&1], 0.5);
    }
}
