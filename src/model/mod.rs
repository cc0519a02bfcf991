//! Sequential next-track models: SASRec, BERT4Rec and GRU4Rec, one file each, behind one enum
//! so training, evaluation and export treat them alike.
//!
//! Item ids inside models: `0` is padding and track `t` (a dataset track id) is `t + 1`.
//! Every model maps a left-padded window of ids `[batch, len]` to hidden states
//! `[batch, len, d]` and scores a hidden state against the item embedding table (tied output),
//! either against every item or against a candidate list.
//!
//! With content ([`fusion`]), a track's embedding is its fused id + content representation: the
//! same fused table feeds the input and scores the output.

mod backbone;
pub mod bert4rec;
pub mod completion;
pub mod e4srec;
mod error;
pub mod fusion;
pub mod gru4rec;
pub mod item_input;
pub mod sasrec;
mod transformer;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use completion::CompletionInput;
use fusion::{FusionConfig, ItemFusion};
use item_input::window;
use serde::{Deserialize, Serialize};

pub use backbone::Backbone;
pub use bert4rec::{Bert4Rec, Bert4RecConfig};
pub use error::ModelError;
pub use gru4rec::{Gru4Rec, Gru4RecConfig};
pub use item_input::{ItemInput, PAD, history_window, padding_mask};
pub use sasrec::{SasRec, SasRecConfig};
pub use transformer::positions;

/// A model's name and full configuration (what `results.json` records).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum ModelConfig {
    Sasrec(SasRecConfig),
    Bert4rec(Bert4RecConfig),
    Gru4rec(Gru4RecConfig),
}

/// Runs `$e` with `$c` bound to whichever backbone configuration `$s` holds. Each declares
/// the item-input fields (`n_items`, `max_len`, `fusion`, `completion`) and the shared sizes
/// under the same names, in the order its JSON (and the checkpoint fingerprint) keeps.
macro_rules! each_config {
    ($s:expr, $c:ident => $e:expr) => {
        match $s {
            ModelConfig::Sasrec($c) => $e,
            ModelConfig::Bert4rec($c) => $e,
            ModelConfig::Gru4rec($c) => $e,
        }
    };
}

/// The model names `--model` accepts.
pub const MODEL_NAMES: [&str; 3] = ["sasrec", "bert4rec", "gru4rec"];

impl ModelConfig {
    /// The papers' defaults for `name` over `n_items` tracks.
    pub fn defaults(name: &str, n_items: usize) -> Result<Self, ModelError> {
        Ok(match name {
            "sasrec" => Self::Sasrec(SasRecConfig::new(n_items)),
            "bert4rec" => Self::Bert4rec(Bert4RecConfig::new(n_items)),
            "gru4rec" => Self::Gru4rec(Gru4RecConfig::new(n_items)),
            _ => {
                return Err(ModelError::UnknownModel {
                    name: name.to_string(),
                    known: MODEL_NAMES.join(", "),
                });
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Sasrec(_) => "sasrec",
            Self::Bert4rec(_) => "bert4rec",
            Self::Gru4rec(_) => "gru4rec",
        }
    }

    /// Sets the catalogue size (known once the data is loaded).
    pub fn set_n_items(&mut self, n: usize) {
        each_config!(self, c => c.n_items = n)
    }

    pub fn n_items(&self) -> usize {
        each_config!(self, c => c.n_items)
    }

    /// The content fusion, when the model has one.
    pub fn fusion(&self) -> Option<&FusionConfig> {
        each_config!(self, c => c.fusion.as_ref())
    }

    /// Sets (or removes) the content fusion.
    pub fn set_fusion(&mut self, f: Option<FusionConfig>) {
        each_config!(self, c => c.fusion = f)
    }

    /// The completion input, when the model reads completion ratios.
    pub fn completion(&self) -> Option<CompletionInput> {
        each_config!(self, c => c.completion)
    }

    pub fn set_completion(&mut self, v: Option<CompletionInput>) {
        each_config!(self, c => c.completion = v)
    }

    /// The name with the fusion strategy, e.g. `sasrec+concat`.
    pub fn label(&self) -> String {
        let mut s = self.name().to_string();
        if let Some(f) = self.fusion() {
            s = format!("{s}+{}", f.strategy);
        }
        if self.completion().is_some() {
            s.push_str("+completion");
        }
        s
    }

    /// The configuration as compact JSON, leaving out absent options (fusion, completion), so
    /// a plain model's text (and the checkpoint fingerprint made from it) is what it was before
    /// those options existed.
    pub fn canonical_json(&self) -> String {
        // No other field's text can contain these keys.
        serde_json::to_string(self)
            .expect("config serialises")
            .replace(",\"fusion\":null", "")
            .replace(",\"completion\":null", "")
            .replace(",\"init_std\":null", "")
    }

    /// Longest history window the model reads.
    pub fn max_len(&self) -> usize {
        each_config!(self, c => c.max_len)
    }

    /// Whether the model is trained by cloze (masked positions) rather than next-item.
    pub fn is_cloze(&self) -> bool {
        matches!(self, Self::Bert4rec(_))
    }

    /// Sets one hyper-parameter by name (`d_model`, `max_len`, `dropout`, `n_layers`,
    /// `n_heads`, `d_ff`, `mask_prob`, `d_hidden`, `init_std`); used by the command line's
    /// overrides.
    pub fn set(&mut self, key: &str, value: f64) -> Result<(), ModelError> {
        let v = value as usize;
        let name = self.name();
        match key {
            "d_model" => each_config!(self, c => c.d_model = v),
            "max_len" => each_config!(self, c => c.max_len = v),
            "dropout" => each_config!(self, c => c.dropout = value),
            "n_layers" => each_config!(self, c => c.n_layers = v),
            _ => match (self, key) {
                (Self::Sasrec(c), "n_heads") => c.n_heads = v,
                (Self::Sasrec(c), "d_ff") => c.d_ff = v,
                (Self::Sasrec(c), "init_std") => c.init_std = Some(value),
                (Self::Bert4rec(c), "n_heads") => c.n_heads = v,
                (Self::Bert4rec(c), "d_ff") => c.d_ff = v,
                (Self::Bert4rec(c), "mask_prob") => c.mask_prob = value,
                (Self::Bert4rec(c), "init_std") => c.init_std = Some(value),
                (Self::Gru4rec(c), "d_hidden") => c.d_hidden = v,
                _ => {
                    return Err(ModelError::UnknownSetting {
                        model: name.to_string(),
                        key: key.to_string(),
                    });
                }
            },
        }
        Ok(())
    }

    /// Refuses sizes that would crash or exhaust memory when the model is built (zero, beyond
    /// the limits below, heads that do not divide the width): what a bundle's or run's
    /// `config.json` must pass before [`init`](Self::init). The error names the field.
    pub fn check(&self) -> Result<(), ModelError> {
        let (n_items, max_len) = (self.n_items(), self.max_len());
        let (d_model, n_layers, dropout) =
            each_config!(self, c => (c.d_model, c.n_layers, c.dropout));
        let mut sizes = vec![
            ("n_items", n_items, 1 << 24),
            ("d_model", d_model, 4096),
            ("n_layers", n_layers, 48),
            ("max_len", max_len, 4096),
        ];
        match self {
            Self::Sasrec(c) => sizes.extend([("n_heads", c.n_heads, 64), ("d_ff", c.d_ff, 16384)]),
            Self::Bert4rec(c) => {
                sizes.extend([("n_heads", c.n_heads, 64), ("d_ff", c.d_ff, 16384)])
            }
            Self::Gru4rec(c) => sizes.push(("d_hidden", c.d_hidden, 4096)),
        }
        for (field, v, max) in sizes {
            if v == 0 || v > max {
                return Err(ModelError::setting(
                    field,
                    format!("{field} {v} is not between 1 and {max}"),
                ));
            }
        }
        let heads = match self {
            Self::Sasrec(c) => Some(c.n_heads),
            Self::Bert4rec(c) => Some(c.n_heads),
            Self::Gru4rec(_) => None,
        };
        if let Some(h) = heads
            && !d_model.is_multiple_of(h)
        {
            return Err(ModelError::setting(
                "n_heads",
                format!("{h} heads do not divide d_model {d_model}"),
            ));
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(ModelError::setting(
                "dropout",
                format!("dropout {dropout} is not in [0, 1)"),
            ));
        }
        self.check_inputs()
    }

    /// The fusion and completion parts of [`check`](Self::check).
    fn check_inputs(&self) -> Result<(), ModelError> {
        if let Some(f) = self.fusion() {
            f.validate()?;
            if let Some(m) = f.modalities.iter().find(|m| m.dim > 1 << 16) {
                return Err(ModelError::setting(
                    "fusion",
                    format!(
                        "modality '{}' has {} dimensions (at most 65536)",
                        m.name, m.dim
                    ),
                ));
            }
        }
        if let Some(CompletionInput::Buckets { n }) = self.completion()
            && !(1..=1000).contains(&n)
        {
            return Err(ModelError::setting(
                "completion",
                format!("{n} completion buckets (1 to 1000)"),
            ));
        }
        Ok(())
    }

    /// About how many parameters the model has (tables, blocks, fusion projections): what a
    /// weights file must have room for.
    pub fn approx_params(&self) -> u64 {
        let (n, d, layers) =
            each_config!(self, c => (c.n_items as u64, c.d_model as u64, c.n_layers as u64));
        let block = match self {
            Self::Sasrec(c) => 4 * d * d + 2 * d * c.d_ff as u64,
            Self::Bert4rec(c) => 4 * d * d + 2 * d * c.d_ff as u64,
            Self::Gru4rec(c) => 3 * (d + c.d_hidden as u64) * c.d_hidden as u64,
        };
        let content: u64 = self
            .fusion()
            .map_or(0, |f| f.modalities.iter().map(|m| m.dim as u64 * d).sum());
        (n + 1) * d + layers * block + content
    }

    pub fn init(&self, device: &Device) -> SeqModel {
        match self {
            Self::Sasrec(c) => SeqModel::SasRec(c.init(device)),
            Self::Bert4rec(c) => SeqModel::Bert4Rec(c.init(device)),
            Self::Gru4rec(c) => SeqModel::Gru4Rec(c.init(device)),
        }
    }
}

/// Any of the sequential models.
// A model is built once and lives long: boxing the larger variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum SeqModel {
    SasRec(SasRec),
    Bert4Rec(Bert4Rec),
    Gru4Rec(Gru4Rec),
}

impl SeqModel {
    /// Hidden states of a left-padded window.
    ///
    /// # Shapes
    /// - ids: `[batch, len]` (`0` = padding, track `t` = `t + 1`; BERT4Rec also takes its mask id)
    /// - output: `[batch, len, d]`
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.forward_rows(ids, self.rows().as_ref(), None)
    }

    /// [`forward`](Self::forward) with the fused input table computed once by the caller
    /// ([`rows`](Self::rows)), so a training step fuses content once for input and output.
    ///
    /// # Shapes
    /// - ids: `[batch, len]`
    /// - rows: `[n_embeddings, d]`
    /// - completion: `batch * len` ratios (NaN: unknown), read when the model has a
    ///   completion input
    /// - output: `[batch, len, d]`
    pub fn forward_rows(
        &self,
        ids: Tensor<2, Int>,
        rows: Option<&Tensor<2>>,
        completion: Option<&[f32]>,
    ) -> Tensor<3> {
        self.backbone().hidden(ids, rows, completion)
    }

    /// The backbone behind the enum: the one place that tells the three apart.
    pub fn backbone(&self) -> &dyn Backbone {
        match self {
            Self::SasRec(m) => m,
            Self::Bert4Rec(m) => m,
            Self::Gru4Rec(m) => m,
        }
    }

    fn backbone_mut(&mut self) -> &mut dyn Backbone {
        match self {
            Self::SasRec(m) => m,
            Self::Bert4Rec(m) => m,
            Self::Gru4Rec(m) => m,
        }
    }

    /// Whether the model reads completion ratios.
    pub fn reads_completion(&self) -> bool {
        self.backbone().input().completion.is_some()
    }

    /// The fused input table (padding row, tracks, any special rows), when the model has
    /// content; `None` for an id-only model.
    ///
    /// # Shapes
    /// - output: `[n_embeddings, d]`
    pub fn rows(&self) -> Option<Tensor<2>> {
        self.backbone().input().rows()
    }

    /// The content fusion module, when the model has one.
    pub fn fusion(&self) -> Option<&ItemFusion> {
        self.backbone().input().fusion
    }

    /// Puts content values into the fusion module (one table per configured modality).
    pub fn set_content(mut self, tables: &[fusion::ContentTable]) -> Result<Self, ModelError> {
        let slot = self.backbone_mut().fusion_mut();
        *slot = match slot.take() {
            Some(f) => Some(f.set_content(tables)?),
            None if tables.is_empty() => None,
            None => {
                return Err(ModelError::Invalid(
                    "content was given to a model without fusion".into(),
                ));
            }
        };
        Ok(self)
    }

    /// Number of tracks.
    pub fn n_items(&self) -> usize {
        self.backbone().input().n_items
    }

    /// The output embedding of every track, row `t` for track `t` (padding and mask rows left out).
    ///
    /// # Shapes
    /// - output: `[n_items, d]`
    pub fn item_table(&self) -> Tensor<2> {
        let input = self.backbone().input();
        input.table(input.rows().as_ref())
    }

    /// The output table from an input table already computed ([`rows`](Self::rows)).
    ///
    /// # Shapes
    /// - rows: `[n_embeddings, d]`
    /// - output: `[n_items, d]`
    pub fn item_table_from(&self, rows: Option<&Tensor<2>>) -> Tensor<2> {
        match rows {
            Some(r) => r.clone().narrow(0, 1, self.n_items()),
            None => self.item_table(),
        }
    }

    /// Per-track output bias, where the model has one.
    ///
    /// # Shapes
    /// - output: `[n_items]`
    pub fn item_bias(&self) -> Option<Tensor<1>> {
        self.backbone().item_bias()
    }

    /// The representation that is scored against items, from hidden states.
    ///
    /// # Shapes
    /// - hidden: `[n, d]`
    /// - output: `[n, d]`
    pub fn project(&self, hidden: Tensor<2>) -> Tensor<2> {
        self.backbone().project(hidden)
    }

    /// Scores every track for each state (tied output).
    ///
    /// # Shapes
    /// - state: `[n, d]` (already [`project`](Self::project)ed)
    /// - output: `[n, n_items]`
    pub fn score_all(&self, state: Tensor<2>) -> Tensor<2> {
        self.score_all_with(state, self.item_table())
    }

    /// [`score_all`](Self::score_all) against a given output table ([`item_table`](Self::item_table)).
    ///
    /// # Shapes
    /// - state: `[n, d]`
    /// - table: `[n_items, d]`
    /// - output: `[n, n_items]`
    pub fn score_all_with(&self, state: Tensor<2>, table: Tensor<2>) -> Tensor<2> {
        let s = state.matmul(table.transpose());
        match self.item_bias() {
            Some(b) => s + b.unsqueeze_dim(0),
            None => s,
        }
    }

    /// Scores a candidate list (dataset track ids) for each state.
    ///
    /// # Shapes
    /// - state: `[n, d]`
    /// - candidates: `[n, c]` track ids (not shifted)
    /// - output: `[n, c]`
    pub fn score_candidates(&self, state: Tensor<2>, candidates: Tensor<2, Int>) -> Tensor<2> {
        self.score_candidates_with(state, candidates, self.item_table())
    }

    /// [`score_candidates`](Self::score_candidates) against a given output table.
    ///
    /// # Shapes
    /// - state: `[n, d]`
    /// - candidates: `[n, c]`
    /// - table: `[n_items, d]`
    /// - output: `[n, c]`
    pub fn score_candidates_with(
        &self,
        state: Tensor<2>,
        candidates: Tensor<2, Int>,
        table: Tensor<2>,
    ) -> Tensor<2> {
        let [n, c] = candidates.dims();
        let d = state.dims()[1];
        let flat = candidates.reshape([n * c]);
        let emb = table.select(0, flat.clone()).reshape([n, c, d]);
        let s = emb.matmul(state.unsqueeze_dim::<3>(2)).reshape([n, c]);
        match self.item_bias() {
            Some(b) => s + b.select(0, flat).reshape([n, c]),
            None => s,
        }
    }

    /// The state after each history: its last position (BERT4Rec: a mask appended).
    ///
    /// # Shapes
    /// - histories: `n` slices of track ids in time order (the last `max_len` are used)
    /// - output: `[n, d]`
    pub fn history_state(
        &self,
        histories: &[&[u32]],
        max_len: usize,
        device: &Device,
    ) -> Tensor<2> {
        self.history_state_padded(histories, max_len, false, device)
    }

    /// [`history_state`](Self::history_state), with every window padded to `max_len` when
    /// `full` is set: one input shape for any history, so GPU kernels compile once (what an
    /// app scoring one listener after every event wants). Every model masks padding, so the
    /// state is the same.
    pub fn history_state_padded(
        &self,
        histories: &[&[u32]],
        max_len: usize,
        full: bool,
        device: &Device,
    ) -> Tensor<2> {
        self.history_state_with(histories, None, max_len, full, self.rows().as_ref(), device)
    }

    /// [`history_state_padded`](Self::history_state_padded) with the completion ratio of every
    /// history play (parallel to `histories`, NaN where unknown) and the fused input table
    /// computed once by the caller ([`rows`](Self::rows)).
    pub fn history_state_with(
        &self,
        histories: &[&[u32]],
        completions: Option<&[&[f32]]>,
        max_len: usize,
        full: bool,
        rows: Option<&Tensor<2>>,
        device: &Device,
    ) -> Tensor<2> {
        let mask_id = self.backbone().mask_id();
        let (ids, ratios) = window(histories, completions, max_len, mask_id, full, device);
        let ratios = self.reads_completion().then_some(ratios).flatten();
        let h = self.forward_rows(ids, rows, ratios.as_deref());
        let [n, len, d] = h.dims();
        let last = h.narrow(1, len - 1, 1).reshape([n, d]);
        self.project(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// Scoring a candidate list gives the same scores as scoring every track (30 tracks).
    fn candidates_score_as_all(m: &SeqModel, cfg: &ModelConfig, d: &Device, label: &str) {
        let hist: [&[u32]; 2] = [&[1, 2, 3, 4], &[29, 0]];
        let state = m.history_state(&hist, cfg.max_len(), d);
        let all: Vec<f32> = m.score_all(state.clone()).into_data().try_to_vec().unwrap();
        let cands = [3i64, 0, 29, 7, 3, 11];
        let c = Tensor::<2, Int>::from_data(TensorData::new(cands.to_vec(), [2, 3]), d);
        let got: Vec<f32> = m
            .score_candidates(state, c)
            .into_data()
            .try_to_vec()
            .unwrap();
        for (i, &t) in cands.iter().enumerate() {
            let want = all[(i / 3) * 30 + t as usize];
            assert!(
                (got[i] - want).abs() < 1e-4,
                "{label}: {} vs {want}",
                got[i]
            );
        }
    }

    #[test]
    fn padding_to_the_full_window_leaves_the_state_unchanged() {
        let d = Device::flex();
        for name in ["sasrec", "bert4rec", "gru4rec"] {
            let m = ModelConfig::defaults(name, 30).unwrap().init(&d).valid();
            let h: &[u32] = &[3, 7, 7, 12];
            // Batched with a longer history (more padding for `h`) gives the same state too.
            let long: Vec<u32> = (0..20).collect();
            let batched = m.history_state(&[h, &long], 50, &d).narrow(0, 0, 1);
            let single = m.history_state(&[h], 50, &d);
            let diff: f32 = (batched - single).abs().max().into_scalar();
            assert!(diff < 1e-5, "{name}: batched vs single {diff}");
            let a = m
                .history_state(&[h], 50, &d)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let b = m
                .history_state_padded(&[h], 50, true, &d)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let diff = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(diff < 1e-5, "{name}: max difference {diff}");
        }
    }

    #[test]
    fn an_id_only_configuration_reads_and_fingerprints_as_before_fusion() {
        let before = r#"{"name":"sasrec","n_items":30,"d_model":64,"d_ff":256,"n_layers":2,"n_heads":2,"max_len":50,"dropout":0.2}"#;
        let c: ModelConfig = serde_json::from_str(before).unwrap();
        assert_eq!(c, ModelConfig::defaults("sasrec", 30).unwrap());
        assert_eq!(c.canonical_json(), before);
        let mut f = c.clone();
        f.set_fusion(Some(FusionConfig::new(
            fusion::Strategy::Gate,
            vec![fusion::ModalityDim {
                name: "tags".into(),
                dim: 5,
            }],
        )));
        assert!(f.canonical_json().contains(r#""strategy":"gate""#));
        let back: ModelConfig = serde_json::from_str(&f.canonical_json()).unwrap();
        assert_eq!(back, f);
        assert_eq!(f.label(), "sasrec+gate");
    }

    #[test]
    fn fused_models_score_candidates_as_they_score_all_and_keep_special_rows() {
        let d = Device::flex();
        let table = fusion::ContentTable {
            name: "audio".into(),
            dim: 3,
            values: (0..30 * 3).map(|i| (i as f32 * 0.7).cos()).collect(),
            present: (0..30).map(|i| i % 4 != 0).collect(),
            labels: None,
        };
        for name in MODEL_NAMES {
            for s in fusion::STRATEGY_NAMES {
                let mut cfg = ModelConfig::defaults(name, 30).unwrap();
                cfg.set_fusion(Some(FusionConfig::new(
                    s.parse().unwrap(),
                    vec![table.modality_dim()],
                )));
                let m = cfg
                    .init(&d)
                    .set_content(std::slice::from_ref(&table))
                    .unwrap()
                    .valid();
                let rows = m.rows().expect("a fused model has a fused table");
                let w = match &m {
                    SeqModel::SasRec(x) => x.item_emb.weight.val(),
                    SeqModel::Bert4Rec(x) => x.item_emb.weight.val(),
                    SeqModel::Gru4Rec(x) => x.item_emb.weight.val(),
                };
                let [n_rows, _] = w.dims();
                assert_eq!(rows.dims()[0], n_rows, "{name}+{s}");
                // Padding (and BERT4Rec's mask) keep their id embeddings.
                let special = |t: &Tensor<2>| {
                    let mut v: Vec<f32> =
                        t.clone().narrow(0, 0, 1).into_data().try_to_vec().unwrap();
                    if n_rows > 31 {
                        let rest = t.clone().narrow(0, 31, n_rows - 31);
                        v.extend(rest.into_data().try_to_vec::<f32>().unwrap());
                    }
                    v
                };
                assert_eq!(special(&rows), special(&w), "{name}+{s}");
                candidates_score_as_all(&m, &cfg, &d, &format!("{name}+{s}"));
            }
        }
    }

    #[test]
    fn windows_keep_the_latest_items_on_the_right() {
        let d = Device::flex();
        let w = history_window(&[&[5, 6, 7], &[1]], 2, None, &d);
        let v: Vec<i64> = w.into_data().convert::<i64>().try_to_vec().unwrap();
        assert_eq!(v, vec![7, 8, 0, 2]);
        // Padded to the longest history only.
        let w = history_window(&[&[5], &[1, 2]], 50, None, &d);
        let v: Vec<i64> = w.into_data().convert::<i64>().try_to_vec().unwrap();
        assert_eq!(v, vec![0, 6, 2, 3]);
        let w = history_window(&[&[5, 6, 7]], 3, Some(99), &d);
        let v: Vec<i64> = w.into_data().convert::<i64>().try_to_vec().unwrap();
        assert_eq!(v, vec![7, 8, 99]);
    }

    #[test]
    fn every_model_scores_candidates_as_it_scores_all() {
        let d = Device::flex();
        for name in MODEL_NAMES {
            let cfg = ModelConfig::defaults(name, 30).unwrap();
            candidates_score_as_all(&cfg.init(&d).valid(), &cfg, &d, name);
        }
    }
}
