//! A sink subtask's output files with two-phase commit, as Flink's file
//! sink does it with its recoverable writers: files are appended to; when an
//! epoch's barrier passes the subtask flushes them and notes their lengths;
//! when the epoch's checkpoint is committed those lengths become the
//! subtask's *commit record*. A run resumed from that checkpoint truncates
//! every file back to its committed length and deletes the files the record
//! does not name, so no row of a rolled-back epoch survives and none of a
//! committed one is lost.
//!
//! # Commit record
//!
//! `<root>/.commits/part-<subtask>`, replaced atomically (written to a
//! `.tmp` file, then renamed), UTF-8 lines:
//!
//! ```text
//! riverbed-commit 1 <epoch>
//! <length> <path relative to root>
//! ...
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use riverbed_state_store::Epoch;

const HEADER: &str = "riverbed-commit 1";

fn io_error(path: &Path, e: std::io::Error) -> riverbed_compute::Error {
    riverbed_compute::Error::Io {
        what: path.display().to_string(),
        source: e,
    }
}

/// The folder of commit records under `root` (removed before publishing).
pub const COMMITS_DIR: &str = ".commits";

/// One subtask's files under `root`.
pub struct TxnFiles {
    root: PathBuf,
    subtask: usize,
    files: HashMap<PathBuf, BufWriter<File>>,
    /// Lengths noted at each barrier, waiting for the epoch's commit.
    staged: BTreeMap<Epoch, Vec<(PathBuf, u64)>>,
    /// Lengths of files that were committed and have not been opened again
    /// in this run (they keep their committed length).
    committed: HashMap<PathBuf, u64>,
}

impl TxnFiles {
    /// The files of `subtask` under `root`. With `resume`, every file of the
    /// subtask is cut back to its committed length (files the commit record
    /// does not name are deleted); without, the subtask starts empty.
    pub fn open(root: &Path, subtask: usize, resume: bool) -> riverbed_compute::Result<Self> {
        fs::create_dir_all(root.join(COMMITS_DIR)).map_err(|e| io_error(root, e))?;
        let mut committed = HashMap::new();
        if resume {
            committed = read_record(&record_path(root, subtask))?;
            for path in files_of(root, subtask)? {
                let rel = path
                    .strip_prefix(root)
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|_| path.clone());
                match committed.get(&rel) {
                    Some(&len) => {
                        let f = OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .map_err(|e| io_error(&path, e))?;
                        f.set_len(len).map_err(|e| io_error(&path, e))?;
                    }
                    None => fs::remove_file(&path).map_err(|e| io_error(&path, e))?,
                }
            }
        }
        Ok(TxnFiles {
            root: root.to_path_buf(),
            subtask,
            files: HashMap::new(),
            staged: BTreeMap::new(),
            committed,
        })
    }

    /// The writer of file `rel` (a path under the root, named for this
    /// subtask by the caller), opened for appending on first use.
    pub fn file(&mut self, rel: &Path) -> riverbed_compute::Result<&mut BufWriter<File>> {
        if !self.files.contains_key(rel) {
            let path = self.root.join(rel);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io_error(&path, e))?;
            self.committed.remove(rel);
            self.files
                .insert(rel.to_path_buf(), BufWriter::with_capacity(256 << 10, f));
        }
        Ok(self.files.get_mut(rel).expect("inserted above"))
    }

    /// Flushes every open file (at the end of the input).
    pub fn flush(&mut self) -> riverbed_compute::Result<()> {
        for (rel, w) in &mut self.files {
            w.flush().map_err(|e| io_error(&self.root.join(rel), e))?;
        }
        Ok(())
    }

    /// Everything written so far belongs to `epoch`: flush and note the
    /// lengths.
    pub fn pre_commit(&mut self, epoch: Epoch) -> riverbed_compute::Result<()> {
        self.flush()?;
        let mut lengths: Vec<(PathBuf, u64)> = self
            .committed
            .iter()
            .map(|(p, l)| (p.clone(), *l))
            .collect();
        for (rel, w) in &self.files {
            let len = w
                .get_ref()
                .metadata()
                .map_err(|e| io_error(&self.root.join(rel), e))?
                .len();
            lengths.push((rel.clone(), len));
        }
        self.staged.insert(epoch, lengths);
        Ok(())
    }

    /// Checkpoint `epoch` is committed: the lengths noted for the newest
    /// staged epoch at or below it become the commit record.
    pub fn commit(&mut self, epoch: Epoch) -> riverbed_compute::Result<()> {
        let Some(&newest) = self.staged.range(..=epoch).next_back().map(|(e, _)| e) else {
            return Ok(());
        };
        let lengths = self.staged.remove(&newest).expect("a staged epoch");
        self.staged = self.staged.split_off(&newest.next());
        write_record(&record_path(&self.root, self.subtask), newest, &lengths)
    }
}

fn record_path(root: &Path, subtask: usize) -> PathBuf {
    root.join(COMMITS_DIR).join(format!("part-{subtask}"))
}

/// Every file under `root` (outside the commit records) whose name belongs
/// to `subtask`: `part-<subtask>` or `part-<subtask>.<extension>`.
fn files_of(root: &Path, subtask: usize) -> riverbed_compute::Result<Vec<PathBuf>> {
    let stem = format!("part-{subtask}");
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| io_error(&dir, e))? {
            let entry = entry.map_err(|e| io_error(&dir, e))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if entry.file_type().map_err(|e| io_error(&path, e))?.is_dir() {
                if name != COMMITS_DIR {
                    dirs.push(path);
                }
            } else if name == stem || name.split_once('.').is_some_and(|(s, _)| s == stem) {
                out.push(path);
            }
        }
    }
    Ok(out)
}

fn write_record(
    path: &Path,
    epoch: Epoch,
    lengths: &[(PathBuf, u64)],
) -> riverbed_compute::Result<()> {
    let mut text = format!("{HEADER} {}\n", epoch.0);
    let mut sorted: Vec<&(PathBuf, u64)> = lengths.iter().collect();
    sorted.sort();
    for (rel, len) in sorted {
        text.push_str(&format!("{len} {}\n", rel.display()));
    }
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| io_error(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

/// The committed lengths of a record; none when there is no record yet.
fn read_record(path: &Path) -> riverbed_compute::Result<HashMap<PathBuf, u64>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(io_error(path, e)),
    };
    let bad = || {
        riverbed_compute::Error::Source(format!(
            "{}: not a commit record this version wrote",
            path.display()
        ))
    };
    let mut lines = text.lines();
    if !lines.next().is_some_and(|h| h.starts_with(HEADER)) {
        return Err(bad());
    }
    let mut out = HashMap::new();
    for line in lines {
        let (len, rel) = line.split_once(' ').ok_or_else(bad)?;
        out.insert(PathBuf::from(rel), len.parse().map_err(|_| bad())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_subtask_keeps_exactly_what_was_committed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (a, b) = (PathBuf::from("part-0.jsonl"), PathBuf::from("x/part-0.csv"));
        let mut t = TxnFiles::open(root, 0, false).unwrap();
        t.file(&a).unwrap().write_all(b"one\n").unwrap();
        t.pre_commit(Epoch(1)).unwrap();
        t.file(&a).unwrap().write_all(b"two\n").unwrap();
        t.file(&b).unwrap().write_all(b"b2\n").unwrap();
        t.pre_commit(Epoch(2)).unwrap();
        t.commit(Epoch(1)).unwrap();
        // Epoch 2 was staged but never committed; 3 was written half-way.
        t.file(&a).unwrap().write_all(b"three\n").unwrap();
        t.flush().unwrap();
        drop(t);
        // Another subtask's file is not touched.
        fs::write(root.join("part-1.jsonl"), b"other\n").unwrap();
        let mut t = TxnFiles::open(root, 0, true).unwrap();
        assert_eq!(fs::read(root.join(&a)).unwrap(), b"one\n");
        assert!(
            !root.join(&b).exists(),
            "a file of an uncommitted epoch is gone"
        );
        assert_eq!(fs::read(root.join("part-1.jsonl")).unwrap(), b"other\n");
        // Going on appends after the committed part; a commit before any
        // new barrier keeps the old length.
        t.pre_commit(Epoch(2)).unwrap();
        t.commit(Epoch(2)).unwrap();
        t.file(&a).unwrap().write_all(b"again\n").unwrap();
        t.pre_commit(Epoch(3)).unwrap();
        t.commit(Epoch(3)).unwrap();
        drop(t);
        let _ = TxnFiles::open(root, 0, true).unwrap();
        assert_eq!(fs::read(root.join(&a)).unwrap(), b"one\nagain\n");
    }
}
