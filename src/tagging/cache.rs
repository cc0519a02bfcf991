//! An append-only cache of tagging results, one JSON line per (track, model, prompt version).
//! A line is written whole and flushed before the next track starts; a line cut by a kill is
//! dropped when the cache is opened again, so a run resumes where it stopped and nothing earlier
//! is lost.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::TagError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub track: String,
    pub model: String,
    pub prompt: String,
    /// 58 values in [0, 1].
    pub values: Vec<f32>,
}

pub struct TagCache {
    path: PathBuf,
    entries: HashMap<(String, String, String), Vec<f32>>,
    file: std::fs::File,
    /// Bytes of a cut last line dropped on opening.
    pub dropped: usize,
}

impl TagCache {
    /// Opens (or creates) a cache file; a complete line that is not an entry is an error naming
    /// the line.
    pub fn open(path: &Path) -> Result<Self, TagError> {
        let io = |e: std::io::Error| TagError::io(path, e);
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let dropped = bytes.len() - whole;
        let mut entries = HashMap::new();
        for (no, line) in bytes[..whole].split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let e: Entry = serde_json::from_slice(line).map_err(|source| TagError::CacheLine {
                path: path.to_path_buf(),
                line: no + 1,
                source,
            })?;
            entries.insert((e.track, e.model, e.prompt), e.values);
        }
        if dropped > 0 {
            // Cut the partial line so the next entry starts on a line of its own.
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io)?;
            f.set_len(whole as u64).map_err(io)?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            entries,
            file,
            dropped,
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, track: &str, model: &str, prompt: &str) -> Option<&[f32]> {
        self.entries
            .get(&(track.to_string(), model.to_string(), prompt.to_string()))
            .map(Vec::as_slice)
    }

    /// Appends an entry (one line, flushed and synced).
    pub fn put(&mut self, e: Entry) -> Result<(), TagError> {
        let mut line = serde_json::to_vec(&e).map_err(|source| TagError::CacheEntry {
            path: self.path.clone(),
            source,
        })?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|err| TagError::io(&self.path, err))?;
        self.entries.insert((e.track, e.model, e.prompt), e.values);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(t: &str) -> Entry {
        Entry {
            track: t.into(),
            model: "m".into(),
            prompt: "p".into(),
            values: vec![0.2; 58],
        }
    }

    #[test]
    fn a_line_cut_by_a_kill_is_dropped_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tags.jsonl");
        let mut c = TagCache::open(&p).unwrap();
        c.put(entry("a")).unwrap();
        c.put(entry("b")).unwrap();
        drop(c);
        // A kill in the middle of writing the third line.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"track":"c","model":"m","prompt":"p","val"#)
            .unwrap();
        drop(f);
        let mut c = TagCache::open(&p).unwrap();
        assert_eq!(c.len(), 2);
        assert!(c.dropped > 0);
        assert!(c.get("b", "m", "p").is_some() && c.get("c", "m", "p").is_none());
        c.put(entry("c")).unwrap();
        drop(c);
        let c = TagCache::open(&p).unwrap();
        assert_eq!((c.len(), c.dropped), (3, 0));
        assert!(c.get("a", "m", "other prompt").is_none());
        // A damaged complete line is an error naming it.
        std::fs::write(&p, "{\"track\":1}\n").unwrap();
        assert!(
            TagCache::open(&p)
                .err()
                .unwrap()
                .to_string()
                .contains("line 1")
        );
    }
}
