//! Every object name the engine uses, in one place.
//!
//! ```text
//! <root>/sst/<file id, 20 digits>.sst
//! <root>/manifest/<version, 20 digits>.manifest
//! ```
//! Zero-padded numbers make lexical order numeric order, so listing the
//! manifest folder yields versions in order.

use object_store::path::Path;

use crate::keys::FileId;

pub const SST_DIR: &str = "sst";
pub const MANIFEST_DIR: &str = "manifest";

pub fn sst(id: FileId) -> Path {
    Path::from(format!("{SST_DIR}/{:020}.sst", id.0))
}

pub fn manifest(version: u64) -> Path {
    Path::from(format!("{MANIFEST_DIR}/{version:020}.manifest"))
}

pub fn sst_dir() -> Path {
    Path::from(SST_DIR)
}

pub fn manifest_dir() -> Path {
    Path::from(MANIFEST_DIR)
}

/// The file id of an SST path, `None` for anything else.
pub fn parse_sst(path: &Path) -> Option<FileId> {
    let name = path.filename()?.strip_suffix(".sst")?;
    name.parse().ok().map(FileId)
}

/// The version of a manifest path, `None` for anything else.
pub fn parse_manifest(path: &Path) -> Option<u64> {
    path.filename()?.strip_suffix(".manifest")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(sst(FileId(42)).as_ref(), "sst/00000000000000000042.sst");
        assert_eq!(parse_sst(&sst(FileId(42))), Some(FileId(42)));
        assert_eq!(parse_manifest(&manifest(7)), Some(7));
        assert_eq!(parse_sst(&manifest(7)), None);
    }
}
