//! Compaction: merging files to bound read cost and reclaim space.
//!
//! Leveled, not tiered. Riverbed's state is read far more than it is
//! scanned in bulk, by point lookups of operators on every input batch;
//! leveled compaction keeps one file per sorted level on a point read's path
//! (plus a few L0 files), and bounds space amplification to about 1.1×, which
//! matters when state is hundreds of GB on object storage billed by the
//! byte. Tiered would write less, but a read would probe every run of every
//! tier. Writes to object storage are large sequential PUTs either way.
//! Only L0 is tiered, in a small way: a checkpoint's small files are merged
//! among themselves before they move down (`picker.rs` says why).
//!
//! Two compactions may run at once, one per lane (`picker::Lane`): the upper
//! lane merges L0 and moves it into L1, the deep lane moves files down the
//! sorted levels. They never share a file, so a long deep merge no longer
//! holds back the L0 merges that keep L0 shallow (and writes unpaced).
//!
//! - `picker.rs` decides what to compact (pure function of a version and of
//!   the files other compactions hold).
//! - `untouched.rs` takes out of a plan the lower files none of its upper
//!   keys fall in: they stay where they are.
//! - `executor.rs` merges and writes the output files.
//!
//! The store (`store.rs`) installs the result: one manifest version that
//! swaps inputs for outputs, then marks inputs obsolete so they are deleted
//! once no reader holds them.

pub mod executor;
pub mod picker;
pub mod untouched;

pub use picker::{pick, pick_in, InFlight, Lane, PickerOptions, Plan, Reason};

/// A file handle with only a key range and a size, for the picker's and the
/// executor's tests (no file behind it).
#[cfg(test)]
pub(crate) fn test_file(
    id: u64,
    smallest: &str,
    largest: &str,
    size: u64,
) -> std::sync::Arc<crate::version::SstHandle> {
    use crate::version::{GcQueue, SstHandle, SstMeta};
    let props = crate::sst::SstProps {
        smallest: bytes::Bytes::copy_from_slice(smallest.as_bytes()),
        largest: bytes::Bytes::copy_from_slice(largest.as_bytes()),
        ..Default::default()
    };
    let meta = SstMeta {
        id: crate::keys::FileId(id),
        size,
        props,
    };
    std::sync::Arc::new(SstHandle::new(
        meta,
        std::sync::Arc::new(GcQueue::default()),
    ))
}
