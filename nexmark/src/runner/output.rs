//! A query's results reach `<output>/<query>/` whole or not at all.
//!
//! The sinks write into a staging folder beside it,
//! `<output>/.staging-<query>-<pid>`; only when the query has finished is the
//! staging folder published in place of `<output>/<query>/`, by one atomic
//! exchange of the two names (Linux `renameat2(RENAME_EXCHANGE)`; a rename
//! pair where the file system has no exchange), after which the old results
//! are deleted. So `<output>/<query>/` always holds exactly one complete run:
//! nothing of an earlier run is kept beside a later one, and a run that
//! fails or is killed leaves the last complete results as they were. A
//! staging folder left by a killed run is deleted by the next run that
//! writes the same query's output. The checkpoint issue turns this into a
//! per-epoch two-phase commit.

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
    /// Prepares an empty staging folder for `query` under `output`, after
    /// deleting those that runs no longer alive left behind.
    pub fn prepare(output: &Path, query: &str) -> Result<Self> {
        std::fs::create_dir_all(output).map_err(|e| io(output, e))?;
        let prefix = format!(".staging-{query}-");
        for entry in std::fs::read_dir(output).map_err(|e| io(output, e))? {
            let entry = entry.map_err(|e| io(output, e))?;
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            let alive = pid.parse::<i32>().is_ok_and(process_alive);
            if !alive || pid == std::process::id().to_string() {
                let path = entry.path();
                std::fs::remove_dir_all(&path).map_err(|e| io(&path, e))?;
            }
        }
        let staging = output.join(format!("{prefix}{}", std::process::id()));
        std::fs::create_dir_all(&staging).map_err(|e| io(&staging, e))?;
        Ok(Staged {
            staging,
            target: output.join(query),
        })
    }

    /// Puts the staged results in place of the target, atomically.
    pub fn publish(self) -> Result<()> {
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

    /// Deletes what was staged (the run failed).
    pub fn discard(self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
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
        let old = out.path().join("q5");
        std::fs::create_dir_all(&old).unwrap();
        for f in ["part-0.jsonl", "part-3.jsonl", "by-hand.txt"] {
            std::fs::write(old.join(f), "old").unwrap();
        }
        // A staging folder of a dead run is cleaned up.
        std::fs::create_dir_all(out.path().join(".staging-q5-999999999")).unwrap();
        let staged = Staged::prepare(out.path(), "q5").unwrap();
        std::fs::write(staged.staging.join("part-0.jsonl"), "new").unwrap();
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
        let staged = Staged::prepare(out.path(), "q5").unwrap();
        std::fs::write(staged.staging.join("part-0.jsonl"), "half").unwrap();
        staged.discard();
        assert_eq!(names(out.path()), ["q5"]);
        assert_eq!(
            std::fs::read_to_string(old.join("part-0.jsonl")).unwrap(),
            "new"
        );
    }
}
