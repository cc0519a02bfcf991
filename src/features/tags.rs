//! Small modalities: tags and attributes as multi-hot vectors, MGPHot gene vectors, and listening
//! completion statistics per track.

use std::collections::{BTreeMap, HashMap};

use super::error::FeatureError;
use super::store::FeatureStore;

/// Per-track lists of labels (tag names, or attribute ids as text).
pub type LabelLists = Vec<(usize, String, Vec<String>)>;

/// Reads tag lists: a JSON object `{track key: [tags or attribute ids]}` (S3-Rec's
/// `item2attributes.json` is one), or TSV lines `key<TAB>tag[,tag...]` / `key<TAB>tag` (repeated
/// keys add up). Returns (line, key, labels).
pub fn read_label_lists(path: &std::path::Path) -> Result<LabelLists, FeatureError> {
    let text = std::fs::read_to_string(path).map_err(|e| FeatureError::io(path, e))?;
    if text.trim_start().starts_with('{') {
        let map: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| FeatureError::RowJson {
                path: path.to_path_buf(),
                line: e.line(),
                what: "not a JSON object of lists",
                source: e,
            })?;
        let key = |k: &str, reason: &str| FeatureError::Key {
            path: path.to_path_buf(),
            key: k.to_string(),
            reason: reason.to_string(),
        };
        return map
            .into_iter()
            .map(|(k, v)| {
                let arr = v.as_array().ok_or_else(|| key(&k, "maps to no list"))?;
                let labels = arr
                    .iter()
                    .map(|x| match x {
                        serde_json::Value::String(s) => Ok(s.trim().to_string()),
                        serde_json::Value::Number(n) => Ok(n.to_string()),
                        _ => Err(key(&k, "lists a value that is neither text nor a number")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((0, k, labels))
            })
            .collect();
    }
    let mut out: Vec<(usize, String, Vec<String>)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, rest)) = line.split_once('\t') else {
            return Err(FeatureError::row(path, i + 1, "expected key<TAB>tags"));
        };
        let labels: Vec<String> = rest
            .split([',', '\t', '|'])
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        match at.get(key) {
            Some(&j) => out[j].2.extend(labels),
            None => {
                at.insert(key.to_string(), out.len());
                out.push((i + 1, key.to_string(), labels));
            }
        }
    }
    Ok(out)
}

/// Which labels become dimensions: those carried by at least `min_count` tracks, the
/// `max_labels` most frequent of them.
#[derive(Clone, Copy, Debug)]
pub struct Vocabulary {
    pub min_count: usize,
    pub max_labels: usize,
}

/// The default cap on a label vocabulary: every tag set in the docs fits (HetRec's attributes
/// are 388), and a track's vector stays a few KB however many labels a file names.
pub const MAX_LABELS: usize = 1000;

/// Multi-hot vectors over the vocabulary's labels (sorted by count, then name). Tracks with
/// none of the kept labels are absent, not zero vectors. Returns (vocabulary, per resolved
/// track its vector). Unknown keys are an error.
#[allow(clippy::type_complexity)]
pub fn multi_hot(
    store: &FeatureStore,
    path: &std::path::Path,
    lists: LabelLists,
    keep: Vocabulary,
) -> Result<(Vec<String>, Vec<(usize, Vec<f32>)>), FeatureError> {
    let mut unknown = Vec::new();
    let mut resolved = Vec::new();
    for (line, key, labels) in lists {
        match store.resolve(&key) {
            Some(t) => resolved.push((t, labels)),
            None => unknown.push((line, key)),
        }
    }
    if !unknown.is_empty() {
        return Err(store.unknown_keys(path, unknown));
    }
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, labels) in &resolved {
        let mut seen: Vec<&str> = labels.iter().map(String::as_str).collect();
        seen.sort_unstable();
        seen.dedup();
        for l in seen {
            *count.entry(l).or_default() += 1;
        }
    }
    let mut vocab: Vec<(&str, usize)> = count
        .into_iter()
        .filter(|&(_, c)| c >= keep.min_count.max(1))
        .collect();
    vocab.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    vocab.truncate(keep.max_labels);
    let index: HashMap<&str, usize> = vocab
        .iter()
        .enumerate()
        .map(|(i, (l, _))| (*l, i))
        .collect();
    let mut out = Vec::new();
    for (t, labels) in &resolved {
        let mut v = vec![0f32; vocab.len()];
        for l in labels {
            if let Some(&i) = index.get(l.as_str()) {
                v[i] = 1.0;
            }
        }
        if v.iter().any(|&x| x > 0.0) {
            out.push((*t, v));
        }
    }
    Ok((vocab.into_iter().map(|(l, _)| l.to_string()).collect(), out))
}

/// MGPHot: 58 musicological genes, each in [0, 1].
pub const MGPHOT_DIM: usize = 58;

/// Checks a vector meant for a modality with known rules (`mgphot`: 58 values in [0, 1]).
pub fn check_known_modality(modality: &str, v: &[f32]) -> Result<(), FeatureError> {
    if modality == "mgphot" {
        if v.len() != MGPHOT_DIM {
            return Err(FeatureError::GeneCount {
                want: MGPHOT_DIM,
                got: v.len(),
            });
        }
        if let Some(i) = v.iter().position(|x| !(0.0..=1.0).contains(x)) {
            return Err(FeatureError::GeneRange {
                gene: i + 1,
                value: v[i],
            });
        }
    }
    Ok(())
}

/// Labels of the completion modality.
pub const COMPLETION_LABELS: [&str; 4] = ["mean", "median", "skip_rate", "log1p_plays"];

/// Completion statistics per track of a dataset into the store's `completion` modality
/// (tracks without any play that has a ratio are absent). Returns how many tracks got one.
#[cfg(not(target_arch = "wasm32"))]
pub fn add_completion(
    store: &mut FeatureStore,
    data: &crate::data::preprocess::Dataset,
    source: &str,
) -> Result<usize, FeatureError> {
    let prov = super::store::Provenance {
        model: "completion statistics".into(),
        parameters: serde_json::json!({"source": source, "labels": COMPLETION_LABELS}),
        encore: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    };
    let labels = COMPLETION_LABELS.iter().map(|s| s.to_string()).collect();
    store.ensure_modality("completion", COMPLETION_LABELS.len(), prov, Some(labels))?;
    let mut n = 0;
    for (t, c) in data.track_completion.iter().enumerate() {
        if c.n == 0 || !c.mean.is_finite() {
            continue;
        }
        let Some(i) = store.position(data.tracks.get(t as u32)) else {
            continue;
        };
        store.set(
            "completion",
            i,
            &[c.mean, c.median, c.skip_rate, (c.n as f32).ln_1p()],
        )?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::store::TrackRef;

    #[test]
    fn multi_hot_keeps_frequent_labels_and_marks_empty_tracks_absent() {
        let store = FeatureStore::new(
            ["1", "2", "3"]
                .iter()
                .map(|i| TrackRef {
                    id: i.to_string(),
                    artist: String::new(),
                    title: String::new(),
                })
                .collect(),
        )
        .unwrap();
        let lists = vec![
            (1, "1".into(), vec!["jazz".into(), "piano".into()]),
            (2, "2".into(), vec!["jazz".into()]),
            (3, "3".into(), vec!["rare".into()]),
        ];
        let p = std::path::Path::new("t.tsv");
        let (vocab, rows) = multi_hot(
            &store,
            p,
            lists.clone(),
            Vocabulary {
                min_count: 2,
                max_labels: MAX_LABELS,
            },
        )
        .unwrap();
        assert_eq!(vocab, vec!["jazz"]);
        assert_eq!(rows, vec![(0, vec![1.0]), (1, vec![1.0])]);
        let (vocab, rows) = multi_hot(
            &store,
            p,
            lists.clone(),
            Vocabulary {
                min_count: 1,
                max_labels: MAX_LABELS,
            },
        )
        .unwrap();
        assert_eq!(vocab, vec!["jazz", "piano", "rare"]);
        assert_eq!(rows[2], (2, vec![0.0, 0.0, 1.0]));
        let (vocab, _) = multi_hot(
            &store,
            p,
            lists,
            Vocabulary {
                min_count: 1,
                max_labels: 2,
            },
        )
        .unwrap();
        assert_eq!(vocab, vec!["jazz", "piano"]);
        let e = multi_hot(
            &store,
            p,
            vec![(7, "9".into(), vec!["x".into()])],
            Vocabulary {
                min_count: 1,
                max_labels: MAX_LABELS,
            },
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("line 7") && e.to_string().contains("unknown"),
            "{e}"
        );
    }

    #[test]
    fn mgphot_vectors_are_checked() {
        assert!(check_known_modality("mgphot", &[0.5; 58]).is_ok());
        assert!(
            check_known_modality("mgphot", &[0.5; 57])
                .unwrap_err()
                .to_string()
                .contains("58")
        );
        let mut v = [0.5; 58];
        v[3] = 1.5;
        assert!(
            check_known_modality("mgphot", &v)
                .unwrap_err()
                .to_string()
                .contains("gene 4")
        );
        assert!(check_known_modality("clap", &[9.0; 3]).is_ok());
    }
}
