//! Files written whole or not at all (a temporary name, then a rename), and JSON files.

use serde::{Deserialize, Serialize};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file that could not be read, written or parsed, with its path.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl FileError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes `path` through `fill` into `path.tmp.PID`, flushes, syncs and renames. On error the
/// temporary file is removed and `path` is untouched.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), FileError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| FileError::io(dir, e))?;
    }
    let tmp = tmp_path(path);
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(FileError::io(path, e));
    }
    Ok(())
}

/// [`write_atomic`] of a byte slice.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    write_atomic(path, |w| w.write_all(bytes))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

/// Pretty JSON, written atomically, with a final newline.
pub fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), FileError> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, v).map_err(std::io::Error::other)?;
        writeln!(w)
    })
}

/// A JSON file read into `T`; the error names the file.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| FileError::Json {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_json(&p, &vec![1, 2]).unwrap();
        let err = write_atomic(&p, |_| Err(std::io::Error::other("stop"))).unwrap_err();
        assert!(err.to_string().contains("a.json"), "{err}");
        assert_eq!(read_json::<Vec<i32>>(&p).unwrap(), vec![1, 2]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&p, "[1,").unwrap();
        let err = read_json::<Vec<i32>>(&p).unwrap_err();
        assert!(
            err.to_string().starts_with(&p.display().to_string()),
            "{err}"
        );
    }
}
