//! Folders replaced whole, and what interrupted writers leave behind.
//!
//! A job that writes several files into one folder writes them into a sibling `DIR.tmp.PID`
//! and then swaps it in for `DIR` (the old folder goes to `DIR.old.PID` for the moment of the
//! swap), so `DIR` never holds files of two runs. [`sweep_stale`] removes what killed
//! processes left: `NAME.tmp.PID` files and folders, and `NAME.old.PID` folders (put back as
//! `NAME` when the kill came between the two renames of a swap, so nothing complete is lost).

use super::fsio::FileError;
use std::path::{Path, PathBuf};

/// A folder being written in place of `target`; dropped without [`commit`](Self::commit)
/// (an error on the way), its files are removed and `target` is untouched.
pub struct StagedDir {
    target: PathBuf,
    staging: PathBuf,
    done: bool,
}

impl StagedDir {
    /// Creates the empty staging folder beside `target`, after sweeping stale leftovers.
    pub fn new(target: &Path) -> Result<Self, FileError> {
        let parent = parent_of(target);
        std::fs::create_dir_all(&parent).map_err(|e| FileError::io(&parent, e))?;
        sweep_stale(&parent);
        let staging = sibling(target, "tmp", std::process::id());
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir(&staging).map_err(|e| FileError::io(&staging, e))?;
        Ok(Self {
            target: target.to_path_buf(),
            staging,
            done: false,
        })
    }

    /// Where the files go until the commit.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Puts the staged folder in `target`'s place and removes the old one.
    pub fn commit(mut self) -> Result<(), FileError> {
        let old = sibling(&self.target, "old", std::process::id());
        let had_old = self.target.exists();
        if had_old {
            std::fs::rename(&self.target, &old).map_err(|e| FileError::io(&self.target, e))?;
        }
        if let Err(e) = std::fs::rename(&self.staging, &self.target) {
            if had_old {
                let _ = std::fs::rename(&old, &self.target);
            }
            return Err(FileError::io(&self.target, e));
        }
        self.done = true;
        if had_old {
            let _ = std::fs::remove_dir_all(&old);
        }
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn sibling(target: &Path, kind: &str, pid: u32) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{kind}.{pid}"));
    target.with_file_name(name)
}

/// `NAME.KIND.PID` split into its parts, when an entry is named so.
fn stale_parts(name: &str) -> Option<(&str, &str, u32)> {
    let (rest, pid) = name.rsplit_once('.')?;
    let (base, kind) = rest.rsplit_once('.')?;
    let pid = pid.parse().ok()?;
    (matches!(kind, "tmp" | "old") && !base.is_empty()).then_some((base, kind, pid))
}

/// Whether process `pid` runs (known where `/proc` exists; elsewhere every process counts as
/// running, so nothing is swept).
fn running(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if pid == std::process::id() || !proc.is_dir() {
        return true;
    }
    // A killed process that its parent has not yet reaped (a zombie) keeps its id but never
    // writes again.
    proc_state(pid).is_some_and(|state| state != 'Z')
}

/// The state letter in `/proc/PID/stat` (`PID (NAME) STATE ...`; NAME may hold spaces and
/// parentheses), when the process exists.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Removes the leftovers of killed writers in `dir` (see the module's notes); returns how
/// many entries it removed or put back. Errors are ignored: a sweep never stops a job.
pub fn sweep_stale(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut stale: Vec<(PathBuf, String, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (base, kind, pid) = stale_parts(&name)?;
            (!running(pid)).then(|| (e.path(), base.to_string(), kind.to_string()))
        })
        .collect();
    // Put old folders back before anything is removed.
    stale.sort_by_key(|(_, _, kind)| kind != "old");
    let mut n = 0;
    for (path, base, kind) in stale {
        let target = dir.join(&base);
        let done = if kind == "old" && !target.exists() {
            std::fs::rename(&path, &target).is_ok()
        } else if path.is_dir() {
            std::fs::remove_dir_all(&path).is_ok()
        } else {
            std::fs::remove_file(&path).is_ok()
        };
        n += usize::from(done);
    }
    n
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// A process id that is not running (the largest Linux allows is 4194304).
    const GONE: u32 = 4_194_303;

    #[test]
    fn a_staged_folder_replaces_the_old_one_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("old-only.txt"), "old").unwrap();
        std::fs::write(target.join("both.txt"), "old").unwrap();
        let s = StagedDir::new(&target).unwrap();
        std::fs::write(s.path().join("both.txt"), "new").unwrap();
        drop(s);
        assert_eq!(
            std::fs::read_to_string(target.join("both.txt")).unwrap(),
            "old"
        );
        let s = StagedDir::new(&target).unwrap();
        std::fs::write(s.path().join("both.txt"), "new").unwrap();
        s.commit().unwrap();
        assert_eq!(
            std::fs::read_to_string(target.join("both.txt")).unwrap(),
            "new"
        );
        assert!(!target.join("old-only.txt").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn what_killed_writers_left_is_swept_and_a_half_swap_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Killed while writing: a temporary file and a staging folder.
        std::fs::write(d.join(format!("a.json.tmp.{GONE}")), "half").unwrap();
        std::fs::create_dir(d.join(format!("out.tmp.{GONE}"))).unwrap();
        // Killed between the two renames of a swap: the old folder is put back.
        std::fs::create_dir(d.join(format!("ds.old.{GONE}"))).unwrap();
        std::fs::write(d.join(format!("ds.old.{GONE}")).join("x"), "kept").unwrap();
        // A live writer's files and other names are left alone.
        let mine = format!("b.json.tmp.{}", std::process::id());
        std::fs::write(d.join(&mine), "mine").unwrap();
        std::fs::write(d.join("notes.tmp.txt"), "notes").unwrap();
        assert_eq!(sweep_stale(d), 3);
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [mine.as_str(), "ds", "notes.tmp.txt"]);
        assert_eq!(std::fs::read_to_string(d.join("ds/x")).unwrap(), "kept");
    }

    /// A killed writer whose parent has not reaped it yet (a zombie) counts as gone: the kill
    /// test found `*.tmp.PID` files of such processes left behind by the next run.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_process_that_exited_but_was_not_reaped_is_not_running() {
        let mut live = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut done = std::process::Command::new("true").spawn().unwrap();
        let zombie = |pid: u32| proc_state(pid) == Some('Z');
        let t0 = std::time::Instant::now();
        while !zombie(done.id()) && t0.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(zombie(done.id()), "the child did not exit");
        assert!(running(live.id()));
        assert!(!running(done.id()));
        live.kill().unwrap();
        live.wait().unwrap();
        done.wait().unwrap();
    }
}
