//! A sink subtask's output files with two-phase commit, as Flink's file
//! sink does it with its recoverable writers: files are appended to; when an
//! epoch's barrier passes, the subtask flushes them and durably records
//! their lengths for that epoch (the *staged record*), before it tells the
//! coordinator it passed the barrier. So when checkpoint *e* is committed,
//! every sink subtask's record for *e* exists. A run resumed from checkpoint
//! *e* cuts every file back to its length in record *e* and deletes the files
//! that record does not name: no row of a rolled-back epoch survives and
//! none of a committed one is lost, even when the process died between the
//! store's commit and the sink's. Once an epoch is known committed, the
//! records before it are deleted.
//!
//! # Staged record
//!
//! `<root>/.commits/part-<subtask>/<epoch>`, written to a `.tmp` file, synced,
//! then renamed; UTF-8 lines:
//!
//! ```text
//! riverbed-commit 1 <epoch>
//! <length> <path relative to root>
//! ...
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use riverbed_compute::runtime::lease::Lease;
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

/// An appending writer of one file. Unlike `BufWriter` it does not flush
/// when dropped: bytes a subtask had not flushed belong to no checkpoint,
/// and a subtask that was cancelled, or replaced while it was paused, must
/// not append them after its replacement cut the file back.
///
/// On a worker it also holds the worker's lease and checks it right before
/// any byte reaches the file: a worker paused while it formatted a batch or
/// staged an epoch wakes after its replacement cut the file back and
/// appended to it, and must not append the old attempt's rows after them.
pub struct Appender {
    file: File,
    buf: Vec<u8>,
    lease: Option<Arc<Lease>>,
}

/// Bytes an [`Appender`] holds before it writes them through.
const APPEND_BUFFER: usize = 256 << 10;

impl Appender {
    fn new(file: File, lease: Option<Arc<Lease>>) -> Self {
        Appender {
            file,
            buf: Vec::with_capacity(APPEND_BUFFER),
            lease,
        }
    }

    pub fn get_ref(&self) -> &File {
        &self.file
    }
}

impl Write for Appender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > APPEND_BUFFER {
            write_through(&mut self.file, self.lease.as_deref(), &self.buf)?;
            self.buf.clear();
        }
        if data.len() >= APPEND_BUFFER {
            write_through(&mut self.file, self.lease.as_deref(), data)?;
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        write_through(&mut self.file, self.lease.as_deref(), &self.buf)?;
        self.buf.clear();
        self.file.flush()
    }
}

/// Writes `data` to `file` if `lease` (when there is one) holds.
fn write_through(file: &mut File, lease: Option<&Lease>, data: &[u8]) -> std::io::Result<()> {
    if let Some(l) = lease {
        l.check()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    file.write_all(data)
}

/// One subtask's files under `root`.
pub struct TxnFiles {
    root: PathBuf,
    subtask: usize,
    files: HashMap<PathBuf, Appender>,
    /// Lengths of files of the resumed checkpoint that have not been opened
    /// again in this run (they keep those lengths).
    kept: HashMap<PathBuf, u64>,
    /// Epochs whose records exist, oldest first.
    staged: BTreeMap<Epoch, ()>,
    /// On a worker: its lease, checked before every write to a file or record.
    lease: Option<Arc<Lease>>,
}

impl TxnFiles {
    /// The files of `subtask` under `root`. Resuming from checkpoint `resume`,
    /// every file of the subtask is cut back to its length in that epoch's
    /// record (files the record does not name are deleted, and so are the
    /// records of later epochs); without, the subtask starts empty.
    pub fn open(
        root: &Path,
        subtask: usize,
        resume: Option<Epoch>,
    ) -> riverbed_compute::Result<Self> {
        let records = records_dir(root, subtask);
        fs::create_dir_all(&records).map_err(|e| io_error(&records, e))?;
        let mut kept = HashMap::new();
        let mut staged = BTreeMap::new();
        for epoch in list_records(&records)? {
            match resume {
                Some(at) if epoch <= at => {
                    staged.insert(epoch, ());
                }
                _ => {
                    let path = records.join(epoch.0.to_string());
                    fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
                }
            }
        }
        if resume.is_some() {
            // The record of the resumed epoch, or the latest before it: a subtask that a
            // rescale to fewer subtasks left out wrote nothing after its
            // last record, which is what it keeps when the parallelism
            // grows back.
            kept = match staged.keys().next_back() {
                Some(e) => read_record(&records.join(e.0.to_string()))?,
                None => HashMap::new(),
            };
            for path in files_of(root, subtask)? {
                let rel = path
                    .strip_prefix(root)
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|_| path.clone());
                match kept.get(&rel) {
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
        } else {
            for path in files_of(root, subtask)? {
                fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
            }
        }
        Ok(TxnFiles {
            root: root.to_path_buf(),
            subtask,
            files: HashMap::new(),
            kept,
            staged,
            lease: None,
        })
    }

    /// The writer of file `rel` (a path under the root, named for this
    /// subtask by the caller), opened for appending on first use.
    pub fn file(&mut self, rel: &Path) -> riverbed_compute::Result<&mut Appender> {
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
            self.kept.remove(rel);
            self.files
                .insert(rel.to_path_buf(), Appender::new(f, self.lease.clone()));
        }
        Ok(self.files.get_mut(rel).expect("inserted above"))
    }

    /// From now on, nothing is written (files, records) unless `lease` holds.
    pub fn hold(&mut self, lease: Arc<Lease>) {
        for w in self.files.values_mut() {
            w.lease = Some(lease.clone());
        }
        self.lease = Some(lease);
    }

    fn check_lease(&self) -> riverbed_compute::Result<()> {
        self.lease.as_ref().map_or(Ok(()), |l| l.check())
    }

    /// Flushes every open file (at the end of the input).
    pub fn flush(&mut self) -> riverbed_compute::Result<()> {
        for (rel, w) in &mut self.files {
            w.flush().map_err(|e| io_error(&self.root.join(rel), e))?;
        }
        Ok(())
    }

    /// Everything written so far belongs to `epoch`: flush, and record the
    /// lengths durably, before the barrier is reported passed.
    pub fn pre_commit(&mut self, epoch: Epoch) -> riverbed_compute::Result<()> {
        self.flush()?;
        let mut lengths: Vec<(PathBuf, u64)> =
            self.kept.iter().map(|(p, l)| (p.clone(), *l)).collect();
        for (rel, w) in &self.files {
            let f = w.get_ref();
            f.sync_data()
                .map_err(|e| io_error(&self.root.join(rel), e))?;
            let len = f
                .metadata()
                .map_err(|e| io_error(&self.root.join(rel), e))?
                .len();
            lengths.push((rel.clone(), len));
        }
        let records = records_dir(&self.root, self.subtask);
        self.check_lease()?;
        write_record(&records.join(epoch.0.to_string()), epoch, &lengths)?;
        self.staged.insert(epoch, ());
        Ok(())
    }

    /// Checkpoint `epoch` is committed: the records before the newest one at
    /// or below it are no longer needed.
    pub fn commit(&mut self, epoch: Epoch) -> riverbed_compute::Result<()> {
        let Some(&newest) = self.staged.range(..=epoch).next_back().map(|(e, _)| e) else {
            return Ok(());
        };
        let records = records_dir(&self.root, self.subtask);
        self.check_lease()?;
        let older: Vec<Epoch> = self.staged.range(..newest).map(|(e, _)| *e).collect();
        for e in older {
            let path = records.join(e.0.to_string());
            fs::remove_file(&path).map_err(|err| io_error(&path, err))?;
            self.staged.remove(&e);
        }
        Ok(())
    }
}

/// Cuts the files of every subtask that has records under `root` back to
/// checkpoint `at` (see [`TxnFiles::open`]), whether or not the resumed run
/// has that subtask: a run killed after a rescale to more subtasks left rows
/// of rolled-back epochs in files that a resume at fewer subtasks never
/// opens.
pub fn cut_back_all(root: &Path, at: Epoch) -> riverbed_compute::Result<()> {
    let commits = root.join(COMMITS_DIR);
    let Ok(entries) = fs::read_dir(&commits) else {
        return Ok(()); // nothing was ever staged
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_error(&commits, e))?;
        let name = entry.file_name();
        if let Some(subtask) = name
            .to_str()
            .and_then(|n| n.strip_prefix("part-"))
            .and_then(|n| n.parse::<usize>().ok())
        {
            drop(TxnFiles::open(root, subtask, Some(at))?);
        }
    }
    Ok(())
}

fn records_dir(root: &Path, subtask: usize) -> PathBuf {
    root.join(COMMITS_DIR).join(format!("part-{subtask}"))
}

/// The epochs of the records in `dir` (temporary files of a record being
/// written when the process died are deleted).
fn list_records(dir: &Path) -> riverbed_compute::Result<Vec<Epoch>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry.file_name();
        match name.to_str().and_then(|n| n.parse::<u64>().ok()) {
            Some(e) => out.push(Epoch(e)),
            None => {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
            }
        }
    }
    out.sort();
    Ok(out)
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
    // `<epoch>.tmp` is not a record name: an interrupted write is ignored.
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
    fn what_was_not_flushed_goes_with_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let a = PathBuf::from("part-0.jsonl");
        let mut t = TxnFiles::open(dir.path(), 0, None).unwrap();
        t.file(&a).unwrap().write_all(b"staged\n").unwrap();
        t.pre_commit(Epoch(1)).unwrap();
        t.file(&a).unwrap().write_all(b"never flushed\n").unwrap();
        drop(t);
        let text = fs::read_to_string(dir.path().join(&a)).unwrap();
        assert_eq!(text, "staged\n", "a dropped writer appended what it held");
    }

    /// A paused worker that wakes inside a call to its sink, after its
    /// replacement took over, gets no byte into a file or record: its
    /// lease is checked where bytes leave, not only between calls.
    #[test]
    fn a_writer_without_its_lease_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![b'x'; APPEND_BUFFER + 1];
        let (live, paused) = (PathBuf::from("part-0.jsonl"), PathBuf::from("part-1.jsonl"));
        let held = Arc::new(Lease::new());
        #[allow(clippy::disallowed_methods)] // a lease is wall time by nature
        held.extend(
            std::time::Instant::now(),
            std::time::Duration::from_secs(3600),
        );
        let mut t = TxnFiles::open(dir.path(), 0, None).unwrap();
        t.hold(held);
        t.file(&live).unwrap().write_all(b"row\n").unwrap();
        t.file(&live).unwrap().write_all(&big).unwrap();
        t.pre_commit(Epoch(1)).unwrap();
        t.commit(Epoch(1)).unwrap();
        let len = fs::metadata(dir.path().join(&live)).unwrap().len();
        assert_eq!(len, big.len() as u64 + 4, "a held lease writes");

        // Lost: a lease that does not hold (the paused worker's, run out).
        let mut t = TxnFiles::open(dir.path(), 1, None).unwrap();
        t.file(&paused).unwrap().write_all(b"row\n").unwrap();
        t.hold(Arc::new(Lease::new()));
        let err = t.file(&paused).unwrap().write_all(&big).unwrap_err();
        assert!(err.to_string().contains("lease ran out"), "{err}");
        assert!(t.pre_commit(Epoch(1)).is_err());
        assert!(t.flush().is_err());
        let len = fs::metadata(dir.path().join(&paused)).unwrap().len();
        assert_eq!(len, 0, "a writer without its lease appended");
        assert!(list_records(&records_dir(dir.path(), 1))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_resumed_subtask_keeps_exactly_what_its_checkpoint_staged() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (a, b) = (PathBuf::from("part-0.jsonl"), PathBuf::from("x/part-0.csv"));
        let mut t = TxnFiles::open(root, 0, None).unwrap();
        t.file(&a).unwrap().write_all(b"one\n").unwrap();
        t.pre_commit(Epoch(1)).unwrap();
        t.commit(Epoch(1)).unwrap();
        t.file(&a).unwrap().write_all(b"two\n").unwrap();
        t.file(&b).unwrap().write_all(b"b2\n").unwrap();
        // Epoch 2 is staged; the process dies before the sink hears that its
        // checkpoint was committed, and after epoch 3 was half written.
        t.pre_commit(Epoch(2)).unwrap();
        t.file(&a).unwrap().write_all(b"three\n").unwrap();
        t.pre_commit(Epoch(3)).unwrap();
        t.file(&a).unwrap().write_all(b"four\n").unwrap();
        t.flush().unwrap();
        drop(t);
        // Another subtask's file is not touched.
        fs::write(root.join("part-1.jsonl"), b"other\n").unwrap();
        // Resumed from checkpoint 2: epoch 2's rows are kept, 3's and 4's go.
        let mut t = TxnFiles::open(root, 0, Some(Epoch(2))).unwrap();
        assert_eq!(fs::read(root.join(&a)).unwrap(), b"one\ntwo\n");
        assert_eq!(fs::read(root.join(&b)).unwrap(), b"b2\n");
        assert_eq!(fs::read(root.join("part-1.jsonl")).unwrap(), b"other\n");
        t.file(&a).unwrap().write_all(b"again\n").unwrap();
        t.pre_commit(Epoch(3)).unwrap();
        t.commit(Epoch(3)).unwrap();
        drop(t);
        // Resumed from checkpoint 1 instead: only its rows.
        let _ = TxnFiles::open(root, 0, Some(Epoch(3))).unwrap();
        assert_eq!(fs::read(root.join(&a)).unwrap(), b"one\ntwo\nagain\n");
        // A fresh start deletes the subtask's files.
        let _ = TxnFiles::open(root, 0, None).unwrap();
        assert!(!root.join(&a).exists() && !root.join(&b).exists());
        assert!(root.join("part-1.jsonl").exists());
    }

    #[test]
    fn a_subtask_a_rescale_left_out_resumes_from_its_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let f = PathBuf::from("part-1.jsonl");
        let mut t = TxnFiles::open(root, 1, None).unwrap();
        t.file(&f).unwrap().write_all(b"one\n").unwrap();
        t.pre_commit(Epoch(2)).unwrap();
        t.commit(Epoch(2)).unwrap();
        drop(t);
        // The job went on with one subtask through checkpoint 5; at four
        // subtasks again, subtask 1 keeps what its record of 2 has.
        let mut t = TxnFiles::open(root, 1, Some(Epoch(5))).unwrap();
        assert_eq!(fs::read(root.join(&f)).unwrap(), b"one\n");
        t.file(&f).unwrap().write_all(b"six\n").unwrap();
        t.pre_commit(Epoch(6)).unwrap();
        drop(t);
        let _ = TxnFiles::open(root, 1, Some(Epoch(6))).unwrap();
        assert_eq!(fs::read(root.join(&f)).unwrap(), b"one\nsix\n");
        // A subtask that never ran has nothing to keep.
        let _ = TxnFiles::open(root, 3, Some(Epoch(6))).unwrap();
        assert!(files_of(root, 3).unwrap().is_empty());
    }

    #[test]
    fn a_subtask_the_resumed_run_lacks_is_cut_back_too() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let f = PathBuf::from("part-3.jsonl");
        let mut t = TxnFiles::open(root, 3, None).unwrap();
        t.file(&f).unwrap().write_all(b"kept\n").unwrap();
        t.pre_commit(Epoch(4)).unwrap();
        // Rows of epoch 5, which never committed: the process was killed.
        t.file(&f).unwrap().write_all(b"rolled back\n").unwrap();
        t.flush().unwrap();
        drop(t);
        cut_back_all(root, Epoch(4)).unwrap();
        assert_eq!(fs::read(root.join(&f)).unwrap(), b"kept\n");
        // A root with nothing staged is fine.
        cut_back_all(&root.join("none"), Epoch(4)).unwrap();
    }
}
