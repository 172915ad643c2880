//! A query's results reach `<output>/<query>/` whole or not at all.
//!
//! The sinks write into a staging folder beside it,
//! `<output>/.staging-<query>-<id>`, where `<id>` names the state directory
//! of the run (so a resumed run finds the folder of the run it resumes, and
//! runs on other state directories never share one). Inside it every sink
//! subtask writes with two-phase commit per checkpoint (`txn_files.rs`). Only
//! when the query has finished is the staging folder published in place of
//! `<output>/<query>/`, by one atomic exchange of the two names (Linux
//! `renameat2(RENAME_EXCHANGE)`; a rename pair where the file system has no
//! exchange), after which the old results are deleted. So
//! `<output>/<query>/` always holds exactly one complete run: nothing of an
//! earlier run is kept beside a later one, and a run that fails or is killed
//! leaves the last complete results as they were. A fresh run starts with
//! an empty staging folder; a resumed one keeps what its checkpoints
//! committed.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where one query's results are written while it runs, and where they go.
#[derive(Debug)]
pub struct Staged {
    /// The folder the sinks write into.
    pub staging: PathBuf,
    /// The folder the results are published as.
    pub target: PathBuf,
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Staged {
    /// The staging folder of `query` under `output` for the run on
    /// `state_dir`: emptied for a fresh run, kept (or created) for a resumed
    /// one.
    pub fn prepare(output: &Path, query: &str, state_dir: &Path, resume: bool) -> Result<Self> {
        std::fs::create_dir_all(output).map_err(|e| io(output, e))?;
        let staging = output.join(format!(".staging-{query}-{:016x}", run_id(state_dir)));
        if !resume && staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| io(&staging, e))?;
        }
        std::fs::create_dir_all(&staging).map_err(|e| io(&staging, e))?;
        Ok(Staged {
            staging,
            target: output.join(query),
        })
    }

    /// Puts the staged results in place of the target, atomically, without
    /// the sinks' commit records.
    pub fn publish(self) -> Result<()> {
        let commits = self.staging.join(super::txn_files::COMMITS_DIR);
        if commits.exists() {
            std::fs::remove_dir_all(&commits).map_err(|e| io(&commits, e))?;
        }
        if self.target.exists() {
            if exchange(&self.staging, &self.target).is_err() {
                // No exchange on this file system: move the old results
                // aside first (a reader may see no folder for a moment).
                let aside = self.staging.with_extension("old");
                std::fs::rename(&self.target, &aside).map_err(|e| io(&self.target, e))?;
                std::fs::rename(&self.staging, &self.target).map_err(|e| io(&self.staging, e))?;
                std::fs::remove_dir_all(&aside).map_err(|e| io(&aside, e))?;
                return Ok(());
            }
            // The staging name now holds the old results.
            std::fs::remove_dir_all(&self.staging).map_err(|e| io(&self.staging, e))?;
        } else {
            std::fs::rename(&self.staging, &self.target).map_err(|e| io(&self.staging, e))?;
        }
        Ok(())
    }

    /// Deletes what was staged (the run failed and cannot be resumed).
    pub fn discard(self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

/// A stable id of a state directory (FNV-1a of its canonical path).
fn run_id(state_dir: &Path) -> u64 {
    let path = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    path.as_os_str()
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Swaps the names `a` and `b` in one step.
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn publishing_replaces_the_old_results_whole() {
        let out = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let old = out.path().join("q5");
        std::fs::create_dir_all(&old).unwrap();
        for f in ["part-0.jsonl", "part-3.jsonl", "by-hand.txt"] {
            std::fs::write(old.join(f), "old").unwrap();
        }
        let staged = Staged::prepare(out.path(), "q5", state.path(), false).unwrap();
        std::fs::write(staged.staging.join("part-0.jsonl"), "new").unwrap();
        std::fs::create_dir_all(staged.staging.join(crate::runner::txn_files::COMMITS_DIR))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(old.join("part-0.jsonl")).unwrap(),
            "old"
        );
        staged.publish().unwrap();
        assert_eq!(names(&old), ["part-0.jsonl"]);
        assert_eq!(
            std::fs::read_to_string(old.join("part-0.jsonl")).unwrap(),
            "new"
        );
        assert_eq!(names(out.path()), ["q5"]);
        // A discarded run leaves the published results as they were.
        let staged = Staged::prepare(out.path(), "q5", state.path(), false).unwrap();
        std::fs::write(staged.staging.join("part-0.jsonl"), "half").unwrap();
        staged.discard();
        assert_eq!(names(out.path()), ["q5"]);
        assert_eq!(
            std::fs::read_to_string(old.join("part-0.jsonl")).unwrap(),
            "new"
        );
        // A resumed run finds its staged files; a fresh one starts empty.
        let staged = Staged::prepare(out.path(), "q5", state.path(), false).unwrap();
        std::fs::write(staged.staging.join("part-0.jsonl"), "kept").unwrap();
        let again = Staged::prepare(out.path(), "q5", state.path(), true).unwrap();
        assert_eq!(
            std::fs::read_to_string(again.staging.join("part-0.jsonl")).unwrap(),
            "kept"
        );
        let fresh = Staged::prepare(out.path(), "q5", state.path(), false).unwrap();
        assert!(names(&fresh.staging).is_empty());
    }
}
