//! One state directory, one run: an advisory lock on `<state-dir>/LOCK`.
//!
//! The runner empties a query's state before it starts, so a second run on
//! the same directory would delete the state of the first under it. The lock
//! (`flock`, exclusive, never waited for) makes the second run fail at once
//! instead, naming the directory and the process that holds it. The kernel
//! drops the lock when its holder exits in any way, `kill -9` included, so a
//! crashed run never leaves a directory locked. The file keeps the holder's
//! process id, for the message only.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file's name inside a state directory.
pub const LOCK_FILE: &str = "LOCK";

/// A held lock on a state directory; released when dropped.
#[derive(Debug)]
pub struct StateDirLock {
    dir: PathBuf,
    _file: File,
}

impl StateDirLock {
    /// Creates `dir` if needed and locks it, or fails at once when another
    /// run holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let io = |path: &Path, source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        // SAFETY: flock on a descriptor this function owns; no memory involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => String::new(),
                    pid => format!(" (process {pid})"),
                };
                return Err(Error::Busy(format!(
                    "state directory {} is in use by another run{holder}: it holds {}; \
                     wait for it to finish or give another --state-dir",
                    dir.display(),
                    path.display()
                )));
            }
            return Err(io(&path, err));
        }
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .map_err(|e| io(&path, e))?;
        Ok(StateDirLock {
            dir: dir.to_path_buf(),
            _file: file,
        })
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_fails_at_once_and_the_first_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateDirLock::acquire(dir.path()).unwrap();
        let err = StateDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(err.contains("in use by another run"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        StateDirLock::acquire(dir.path()).unwrap();
    }
}
