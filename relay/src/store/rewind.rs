//! Setting a closed store back to the state a crash leaves it in, for
//! measuring the worst start (`kurir-bench --mode restart-log`).

use std::path::Path;

use super::StoreError;
use super::journal::{JOURNAL, SEQ_KEY, records};
use super::trees::{Trees, open_sled};

/// What [`rewind_journal`] left for the next open to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewound {
    /// Group commits the journal holds from its start, all applied again
    /// at the next open.
    pub groups: u64,
    /// The bytes of their records.
    pub bytes: u64,
}

/// Sets the number of the newest group the closed store in `dir` holds
/// back to just before the first record its commit journal holds, as a
/// crash right after that record was synced would have left it: the next
/// open applies every record again (each write leaves the value it holds,
/// so the store ends as it was). The journal keeps the records of the
/// groups since the last full flush, even after it was emptied by one.
pub fn rewind_journal(dir: &Path) -> Result<Rewound, StoreError> {
    let path = dir.join(JOURNAL);
    let bytes = std::fs::read(&path).map_err(|source| StoreError::Sync {
        path: path.clone(),
        source,
    })?;
    let found = records(&bytes);
    let (Some((first, _)), Some((_, end))) = (found.first(), found.last()) else {
        return Err(StoreError::Corrupt {
            path,
            tree: "journal",
            reason: "the journal holds no record to apply again".into(),
        });
    };
    let sled_err = |source| StoreError::Sled {
        path: dir.to_owned(),
        source,
    };
    let trees = open_sled(dir).and_then(Trees::open).map_err(sled_err)?;
    trees
        .meta
        .insert(SEQ_KEY, &(first - 1).to_be_bytes()[..])
        .map_err(sled_err)?;
    trees.db.flush().map_err(sled_err)?;
    Ok(Rewound {
        groups: found.len() as u64,
        bytes: *end as u64,
    })
}
