//! Importers: precomputed per-track vectors (EnCodec, CLAP, MERT, mpnet, ...) from `.npy`,
//! safetensors, CSV/TSV or JSONL, and per-track texts (lyrics, descriptions) from TSV or JSONL.
//!
//! Rows are keyed by track id or by `artist` + `title`. A file is read whole and checked before
//! anything is stored: a wrong dimension, an unknown key, a malformed line or a non-finite value
//! is an error naming the file and line (for text formats) or row.

use crate::util::text::shown;
use std::path::Path;

use super::error::FeatureError;
use super::store::FeatureStore;

/// One keyed row: (line or row number, key, vector).
pub type Rows = Vec<(usize, String, Vec<f32>)>;

fn bad(path: &Path, line: usize, msg: impl std::fmt::Display) -> FeatureError {
    FeatureError::row(path, line, msg.to_string())
}

/// A row that is not a JSON object.
fn not_object(path: &Path, line: usize, source: serde_json::Error) -> FeatureError {
    FeatureError::RowJson {
        path: path.to_path_buf(),
        line,
        what: "not a JSON object",
        source,
    }
}

/// What is wrong in a vector file's bytes (the caller names the file).
fn malformed(reason: impl Into<String>) -> FeatureError {
    FeatureError::Format(reason.into())
}

/// Reads vectors from `path` by its extension. `.npy` and safetensors files carry no keys: give
/// them `ids` (one key per row, from `--ids`), or a safetensors `__metadata__` entry `ids` (a JSON
/// array of strings).
pub fn read_vectors(path: &Path, ids: Option<&[String]>) -> Result<Rows, FeatureError> {
    let bytes = std::fs::read(path).map_err(|e| FeatureError::io(path, e))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let keyed = |path: &Path,
                 rows: Vec<Vec<f32>>,
                 ids: Option<Vec<String>>|
     -> Result<Rows, FeatureError> {
        let ids = ids.ok_or_else(|| {
            FeatureError::invalid(
                path,
                "the file has no track keys; pass --ids FILE (one key per row)",
            )
        })?;
        if ids.len() != rows.len() {
            return Err(FeatureError::invalid(
                path,
                format!("{} rows but {} ids", rows.len(), ids.len()),
            ));
        }
        Ok(rows
            .into_iter()
            .zip(ids)
            .enumerate()
            .map(|(i, (v, k))| (i + 1, k, v))
            .collect())
    };
    match ext.as_str() {
        "npy" => {
            let rows = parse_npy(&bytes).map_err(|e| e.in_file(path))?;
            keyed(path, rows, ids.map(<[String]>::to_vec))
        }
        "safetensors" => {
            let (rows, meta_ids) = parse_safetensors_rows(&bytes).map_err(|e| e.in_file(path))?;
            keyed(path, rows, ids.map(<[String]>::to_vec).or(meta_ids))
        }
        "jsonl" | "ndjson" => parse_jsonl(path, &bytes),
        "csv" | "tsv" | "txt" => {
            parse_delimited(path, &bytes, if ext == "csv" { ',' } else { '\t' })
        }
        _ => Err(FeatureError::invalid(
            path,
            format!(
                "unknown extension '{ext}' (expected .npy, .safetensors, .csv, .tsv or .jsonl)"
            ),
        )),
    }
}

/// A `.npy` file holding a 2-D little-endian float32 or float64 array in C order.
pub fn parse_npy(b: &[u8]) -> Result<Vec<Vec<f32>>, FeatureError> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(malformed("not a .npy file (no \\x93NUMPY magic)"));
    }
    let (header_len, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 => {
            if b.len() < 12 {
                return Err(malformed("truncated .npy header"));
            }
            (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
        }
        v => return Err(malformed(format!(".npy version {v} is not supported"))),
    };
    let header = std::str::from_utf8(
        b.get(start..start + header_len)
            .ok_or_else(|| malformed("truncated .npy header"))?,
    )
    .map_err(|_| malformed(".npy header is not text"))?;
    let field = |name: &str| -> Option<&str> {
        let i = header.find(&format!("'{name}'"))?;
        Some(
            header[i + name.len() + 2..]
                .trim_start()
                .trim_start_matches(':')
                .trim_start(),
        )
    };
    let descr = field("descr").ok_or_else(|| malformed(".npy header has no descr"))?;
    let width = if descr.starts_with("'<f4'") {
        4
    } else if descr.starts_with("'<f8'") {
        8
    } else {
        return Err(malformed(format!(
            ".npy dtype {} is not supported (use float32 or float64)",
            descr.split(',').next().unwrap_or("")
        )));
    };
    if field("fortran_order").is_some_and(|f| f.starts_with("True")) {
        return Err(malformed(".npy in Fortran order is not supported"));
    }
    let shape = field("shape").ok_or_else(|| malformed(".npy header has no shape"))?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split_once(')'))
        .ok_or_else(|| malformed(format!(".npy shape {} is malformed", shown(shape, 40))))?
        .0;
    let dims: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| malformed(format!(".npy shape ({inner}) is malformed")))
        })
        .collect::<Result<_, _>>()?;
    let [rows, cols] = dims[..] else {
        return Err(malformed(format!(
            ".npy array has shape ({inner}); expected 2-D (tracks, dim)"
        )));
    };
    let data = &b[start + header_len..];
    if cols == 0 {
        return Err(malformed(format!(
            ".npy array has shape ({inner}): vectors of width 0"
        )));
    }
    // Checked: the shape is untrusted and its product may not fit a usize.
    let need = rows.checked_mul(cols).and_then(|n| n.checked_mul(width));
    if need != Some(data.len()) {
        let need = need.map_or("more than a machine can address".into(), |n| n.to_string());
        return Err(malformed(format!(
            ".npy data is {} bytes; shape ({rows}, {cols}) needs {need}",
            data.len(),
        )));
    }
    let values: Vec<f32> = if width == 4 {
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect()
    };
    Ok(values
        .chunks(cols.max(1))
        .map(<[f32]>::to_vec)
        .take(rows)
        .collect())
}

/// Rows of a 2-D tensor and the ids its metadata lists, if any.
type KeyedRows = (Vec<Vec<f32>>, Option<Vec<String>>);

fn parse_safetensors_rows(b: &[u8]) -> Result<KeyedRows, FeatureError> {
    let file = crate::util::weights::WeightsFile::parse(b)?;
    let tensors = crate::util::weights::read_f32(b)?;
    let (_, (shape, values)) = ["values", "vectors", "embeddings", "embedding", "features"]
        .iter()
        .find_map(|n| tensors.get_key_value(*n))
        .or_else(|| {
            if tensors.len() == 1 {
                tensors.iter().next()
            } else {
                None
            }
        })
        .ok_or_else(|| malformed("no tensor named values, vectors, embeddings or features"))?;
    let [rows, cols] = shape[..] else {
        return Err(malformed(format!(
            "tensor has shape {shape:?}; expected 2-D (tracks, dim)"
        )));
    };
    let ids = file
        .meta("ids")
        .map(|s| {
            serde_json::from_str::<Vec<String>>(s)
                .map_err(|e| FeatureError::json("metadata ids", e))
        })
        .transpose()?;
    Ok((
        values
            .chunks(cols.max(1))
            .map(<[f32]>::to_vec)
            .take(rows)
            .collect(),
        ids,
    ))
}

/// The key of a JSON object: `id` / `track_id`, else `artist` + `title`.
fn json_key(obj: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    for k in ["id", "track_id", "track", "key"] {
        match obj.get(k) {
            Some(serde_json::Value::String(s)) => return Some(s.clone()),
            Some(serde_json::Value::Number(n)) => return Some(n.to_string()),
            _ => {}
        }
    }
    let a = obj.get("artist")?.as_str()?;
    let t = obj.get("title")?.as_str()?;
    Some(format!("{a}\t{t}"))
}

fn parse_jsonl(path: &Path, b: &[u8]) -> Result<Rows, FeatureError> {
    let text = std::str::from_utf8(b).map_err(|_| FeatureError::invalid(path, "not UTF-8 text"))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).map_err(|e| not_object(path, n, e))?;
        let key =
            json_key(&obj).ok_or_else(|| bad(path, n, "no id, track_id, or artist and title"))?;
        let arr = ["vector", "embedding", "values", "features"]
            .iter()
            .find_map(|k| obj.get(*k))
            .and_then(|v| v.as_array())
            .ok_or_else(|| {
                bad(
                    path,
                    n,
                    "no vector (an array under vector, embedding, values or features)",
                )
            })?;
        let v = arr
            .iter()
            .enumerate()
            .map(|(j, x)| {
                x.as_f64()
                    .map(|f| f as f32)
                    .ok_or_else(|| bad(path, n, format!("element {j} is not a number")))
            })
            .collect::<Result<Vec<f32>, FeatureError>>()?;
        out.push((n, key, v));
    }
    Ok(out)
}

/// CSV or TSV: key columns, then numbers. A header is recognised by a non-numeric value after
/// the key; `artist` and `title` as its first two columns key by name, else the first column is
/// the track id.
fn parse_delimited(path: &Path, b: &[u8], sep: char) -> Result<Rows, FeatureError> {
    let rows = crate::util::delimited::read_rows(b, sep as u8)
        .map_err(|(line, e)| bad(path, line as usize, e))?;
    let mut out = Vec::new();
    let mut key_cols = 1;
    for (i, row) in rows.iter().enumerate() {
        let (n, cols) = (row.line as usize, &row.fields);
        if i == 0 && n == 1 && cols.len() > 1 && cols[1].parse::<f32>().is_err() {
            if cols.len() > 2
                && cols[0].eq_ignore_ascii_case("artist")
                && cols[1].eq_ignore_ascii_case("title")
            {
                key_cols = 2;
            }
            continue; // header
        }
        if cols.len() <= key_cols {
            return Err(bad(path, n, "no values after the key"));
        }
        let key = if key_cols == 2 {
            format!("{}\t{}", cols[0], cols[1])
        } else {
            cols[0].to_string()
        };
        let v = cols[key_cols..]
            .iter()
            .enumerate()
            .map(|(j, c)| {
                c.parse::<f32>().map_err(|_| {
                    bad(
                        path,
                        n,
                        format!("column {} ('{c}') is not a number", j + key_cols + 1),
                    )
                })
            })
            .collect::<Result<Vec<f32>, FeatureError>>()?;
        out.push((n, key, v));
    }
    Ok(out)
}

/// Checks every row against the store (known key, the modality's dimension, finite values) and
/// returns `(track, vector)` pairs; nothing is stored when any row fails.
pub fn resolve_rows(
    store: &FeatureStore,
    path: &Path,
    rows: Rows,
    modality: &str,
    dim: Option<usize>,
) -> Result<Vec<(usize, Vec<f32>)>, FeatureError> {
    let want = dim.or_else(|| rows.first().map(|r| r.2.len())).unwrap_or(0);
    let mut unknown = Vec::new();
    let mut out = Vec::with_capacity(rows.len());
    for (line, key, v) in rows {
        if v.len() != want {
            return Err(bad(
                path,
                line,
                format!("{} values; the modality holds {want}-d vectors", v.len()),
            ));
        }
        if let Some(j) = v.iter().position(|x| !x.is_finite()) {
            return Err(bad(path, line, format!("value {} is not finite", j + 1)));
        }
        super::tags::check_known_modality(modality, &v).map_err(|e| FeatureError::RowValues {
            path: path.to_path_buf(),
            line,
            source: Box::new(e),
        })?;
        match store.resolve(&key) {
            Some(t) => out.push((t, v)),
            None => unknown.push((line, key)),
        }
    }
    if !unknown.is_empty() {
        return Err(store.unknown_keys(path, unknown));
    }
    Ok(out)
}

/// Texts per track from TSV (`key<TAB>text`, or a header naming `id`/`track_id` or `artist` and
/// `title`, and `text`/`lyrics`) or JSONL (`{"id": .., "text": ..}`). Returns (line, key, text).
pub fn read_texts(path: &Path) -> Result<Vec<(usize, String, String)>, FeatureError> {
    let text = std::fs::read_to_string(path).map_err(|e| FeatureError::io(path, e))?;
    let jsonl = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "ndjson");
    let mut out = Vec::new();
    if jsonl {
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let obj: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).map_err(|e| not_object(path, n, e))?;
            let key = json_key(&obj)
                .ok_or_else(|| bad(path, n, "no id, track_id, or artist and title"))?;
            let t = ["text", "lyrics", "description"]
                .iter()
                .find_map(|k| obj.get(*k))
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(path, n, "text is not a string"))
                })
                .transpose()?
                .unwrap_or_default();
            out.push((n, key, t));
        }
        return Ok(out);
    }
    let mut lines = text.lines().enumerate().peekable();
    let (mut key_cols, mut text_col) = (1usize, 1usize);
    if let Some((_, first)) = lines.peek() {
        let cols: Vec<String> = first
            .split('\t')
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        let has = |n: &str| cols.iter().position(|c| c == n);
        if let Some(t) = has("text")
            .or_else(|| has("lyrics"))
            .or_else(|| has("description"))
        {
            text_col = t;
            key_cols = if has("artist") == Some(0) && has("title") == Some(1) {
                2
            } else {
                1
            };
            lines.next();
        }
    }
    for (i, line) in lines {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() <= text_col.max(key_cols - 1) {
            return Err(bad(
                path,
                n,
                format!("expected {} tab-separated columns", text_col + 1),
            ));
        }
        let key = if key_cols == 2 {
            format!("{}\t{}", cols[0], cols[1])
        } else {
            cols[0].to_string()
        };
        // A text may itself hold tabs: the rest of the line is the text.
        out.push((n, key, cols[text_col..].join("\t").replace("\\n", "\n")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(shape: &str, descr: &str, data: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((header.len() as u16).to_le_bytes());
        b.extend(header.as_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn npy_float32_and_float64() {
        let f32s: Vec<u8> = [1f32, 2., 3., 4., 5., 6.]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(
            parse_npy(&npy("(2, 3)", "<f4", &f32s)).unwrap(),
            vec![vec![1., 2., 3.], vec![4., 5., 6.]]
        );
        let f64s: Vec<u8> = [1f64, 2.].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(
            parse_npy(&npy("(1, 2)", "<f8", &f64s)).unwrap(),
            vec![vec![1., 2.]]
        );
        assert!(
            parse_npy(&npy("(3,)", "<f4", &f32s[..12]))
                .unwrap_err()
                .to_string()
                .contains("2-D")
        );
        assert!(
            parse_npy(&npy("(2, 3)", "<i4", &f32s))
                .unwrap_err()
                .to_string()
                .contains("dtype")
        );
        assert!(
            parse_npy(&npy(
                "(4611686018427387904, 4611686018427387904)",
                "<f4",
                &f32s
            ))
            .unwrap_err()
            .to_string()
            .contains("more than a machine can address")
        );
        // Found by fuzzing: a shape closed before it opens sliced the header backwards.
        assert!(
            parse_npy(&npy(")(3, 4)", "<f4", &f32s))
                .unwrap_err()
                .to_string()
                .contains("shape )(3, 4)")
        );
        assert!(
            parse_npy(&npy("(5, 0)", "<f4", &[]))
                .unwrap_err()
                .to_string()
                .contains("width 0")
        );
        assert!(
            parse_npy(&npy("(2, 4)", "<f4", &f32s))
                .unwrap_err()
                .to_string()
                .contains("bytes")
        );
    }

    #[test]
    fn delimited_vectors_key_by_quoted_artist_and_title() {
        let p = Path::new("v.csv");
        let text = "artist,title,v1,v2\n\"Crosby, Stills & Nash\",\"Helplessly Hoping\",0.5,1\n";
        let rows = parse_delimited(p, text.as_bytes(), ',').unwrap();
        assert_eq!(
            rows,
            vec![(
                2,
                "Crosby, Stills & Nash\tHelplessly Hoping".to_string(),
                vec![0.5, 1.0]
            )]
        );
        // A quote left open runs to the end: one field, no values after the key.
        let e = parse_delimited(p, b"id,v\n\"open,1\n", ',').unwrap_err();
        assert!(e.to_string().contains("no values after the key"), "{e}");
    }
}
