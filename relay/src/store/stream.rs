//! The backup file ([`SNAPSHOT_FILE`]): every tree of the store after one
//! commit, as one stream, written and read a record at a time so that
//! neither takes memory that grows with the store.
//!
//! # Format (version [`STREAM_VERSION`])
//!
//! Integers are unsigned big-endian.
//!
//! | part | bytes |
//! |---|---|
//! | header | the magic `KURIR-STORE-SNAPSHOT\n`; the stream version (u32, 1); the store format ([`FORMAT_VERSION`](super::FORMAT_VERSION), u32); the audit log's size at the commit (u64) and its Merkle root (32); the length (u32, 0 for none) and bytes of the `last-checkpoint.note` marker |
//! | records | each: the tag `0x01`; the tree name's length (u8) and name; the key's length (u32) and key; the value's length (u32) and value. In tree-name order, then key order, each (tree, key) once |
//! | trailer | the tag `0x00`; the number of records, sent messages, received messages and body files (u64 each); the SHA-256 of every byte before it (32) |
//!
//! [`StreamWriter`] writes it through a buffer and syncs it;
//! [`StreamReader`] reads it back record by record into buffers it reuses,
//! refusing a length larger than what is left of the file (a damaged length
//! never makes it allocate), and checks the trailer's counts and checksum.
//! What the records must hold (the audit log, checkpoints, body files) is
//! checked by `backup`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use kurir_proto::Digest;
use ring::digest::{Context, SHA256};

use super::StoreError;

/// The backup file's name, in a snapshot and in a backup directory.
pub const SNAPSHOT_FILE: &str = "store.snapshot";

/// The stream format this binary writes and reads.
pub const STREAM_VERSION: u32 = 1;

const MAGIC: &[u8] = b"KURIR-STORE-SNAPSHOT\n";
const RECORD: u8 = 1;
const END: u8 = 0;
/// The largest key or value read back (larger ones are refused as damage;
/// a record's value is a parcel at rest at most, its body in a file beyond
/// [`FILE_MIN`](super::at_rest::FILE_MIN)).
const MAX_LEN: u32 = 256 * 1024 * 1024;
/// The I/O buffer on either side.
const BUFFER: usize = 1024 * 1024;

/// The commit a stream holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) store_format: u32,
    pub(super) entries: u64,
    pub(super) root: Digest,
    pub(super) marker: Option<Vec<u8>>,
}

/// What the trailer counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) records: u64,
    pub(super) outbound: u64,
    pub(super) inbox: u64,
    pub(super) body_files: u64,
}

/// Writes a stream, a record at a time (see the module docs).
pub(super) struct StreamWriter {
    out: BufWriter<File>,
    hash: Context,
    records: u64,
    bytes: u64,
}

impl StreamWriter {
    /// Creates the new file `path` (0600) and writes the header.
    pub(super) fn create(path: &Path, header: &Header) -> std::io::Result<StreamWriter> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut w = StreamWriter {
            out: BufWriter::with_capacity(BUFFER, options.open(path)?),
            hash: Context::new(&SHA256),
            records: 0,
            bytes: 0,
        };
        let marker = header.marker.as_deref().unwrap_or_default();
        w.put(MAGIC)?;
        w.put(&STREAM_VERSION.to_be_bytes())?;
        w.put(&header.store_format.to_be_bytes())?;
        w.put(&header.entries.to_be_bytes())?;
        w.put(&header.root.0)?;
        w.put(&len32(marker)?.to_be_bytes())?;
        w.put(marker)?;
        Ok(w)
    }

    /// Appends one record.
    pub(super) fn record(&mut self, tree: &[u8], key: &[u8], value: &[u8]) -> std::io::Result<()> {
        let name_len = u8::try_from(tree.len()).map_err(|_| too_long("a tree name"))?;
        self.put(&[RECORD, name_len])?;
        self.put(tree)?;
        self.put(&len32(key)?.to_be_bytes())?;
        self.put(key)?;
        self.put(&len32(value)?.to_be_bytes())?;
        self.put(value)?;
        self.records += 1;
        Ok(())
    }

    /// Writes the trailer (`counts` but for the records, which this
    /// counted), flushes and syncs the file; its size in bytes.
    pub(super) fn finish(mut self, counts: Counts) -> std::io::Result<u64> {
        self.put(&[END])?;
        for n in [
            self.records,
            counts.outbound,
            counts.inbox,
            counts.body_files,
        ] {
            self.put(&n.to_be_bytes())?;
        }
        let sum = self.hash.clone().finish();
        self.out.write_all(sum.as_ref())?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(self.bytes + 32)
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hash.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out.write_all(bytes)
    }
}

fn len32(bytes: &[u8]) -> std::io::Result<u32> {
    u32::try_from(bytes.len())
        .ok()
        .filter(|n| *n <= MAX_LEN)
        .ok_or_else(|| too_long("a key or value"))
}

fn too_long(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{what} is too long for the backup format"),
    )
}

/// One record, in buffers reused from one to the next.
#[derive(Debug, Default)]
pub(super) struct Record {
    pub(super) tree: Vec<u8>,
    pub(super) key: Vec<u8>,
    pub(super) value: Vec<u8>,
}

/// Reads a stream (see the module docs).
pub(super) struct StreamReader {
    path: PathBuf,
    input: BufReader<File>,
    hash: Context,
    /// Bytes read so far.
    pos: u64,
    /// The file's size.
    len: u64,
    records: u64,
    header: Header,
}

impl StreamReader {
    /// Opens the file `path` and reads its header.
    pub(super) fn open(path: &Path) -> Result<StreamReader, StoreError> {
        let io = |source| StoreError::DataDir {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut r = StreamReader {
            path: path.to_owned(),
            input: BufReader::with_capacity(BUFFER, file),
            hash: Context::new(&SHA256),
            pos: 0,
            len,
            records: 0,
            header: Header {
                store_format: 0,
                entries: 0,
                root: Digest([0; 32]),
                marker: None,
            },
        };
        let mut magic = [0; MAGIC.len()];
        r.take(&mut magic, "the header")?;
        if magic != MAGIC {
            return Err(r.bad("it does not start with the backup file's magic: not a backup file"));
        }
        let version = r.u32("the header")?;
        if version != STREAM_VERSION {
            return Err(r.bad(&format!(
                "it is of backup format {version}; this kurir-relay reads format \
                 {STREAM_VERSION}: restore it with the kurir-relay that wrote it"
            )));
        }
        r.header.store_format = r.u32("the header")?;
        r.header.entries = r.u64("the header")?;
        let mut root = [0; 32];
        r.take(&mut root, "the header")?;
        r.header.root = Digest(root);
        let mut marker = Vec::new();
        let n = r.len32("the marker")?;
        r.fill(&mut marker, n, "the marker")?;
        r.header.marker = (!marker.is_empty()).then_some(marker);
        Ok(r)
    }

    /// The header.
    pub(super) fn header(&self) -> &Header {
        &self.header
    }

    /// The next record into `rec`, or, at the trailer, its counts (the
    /// checksum and the record count checked, and nothing after it).
    pub(super) fn next(&mut self, rec: &mut Record) -> Result<Option<Counts>, StoreError> {
        let at = format!("record {}", self.records);
        let mut tag = [0];
        self.take(&mut tag, &at)?;
        match tag[0] {
            RECORD => {}
            END => return self.trailer().map(Some),
            other => {
                return Err(self.bad(&format!(
                    "{at} (byte {}) starts with {other:#04x}, not a record or the trailer",
                    self.pos - 1
                )));
            }
        }
        let mut n = [0];
        self.take(&mut n, &at)?;
        self.fill(&mut rec.tree, u32::from(n[0]), &at)?;
        let n = self.len32(&at)?;
        self.fill(&mut rec.key, n, &at)?;
        let n = self.len32(&at)?;
        self.fill(&mut rec.value, n, &at)?;
        self.records += 1;
        Ok(None)
    }

    fn trailer(&mut self) -> Result<Counts, StoreError> {
        let at = "the trailer";
        let counts = Counts {
            records: self.u64(at)?,
            outbound: self.u64(at)?,
            inbox: self.u64(at)?,
            body_files: self.u64(at)?,
        };
        let ours = self.hash.clone().finish();
        let mut sum = [0; 32];
        self.input
            .read_exact(&mut sum)
            .map_err(|e| self.cut(at, &e))?;
        self.pos += 32;
        if sum != ours.as_ref() {
            return Err(self.bad(
                "its SHA-256 is not the one in its trailer: the file was changed or damaged \
                 after it was written",
            ));
        }
        if self.pos != self.len {
            return Err(self.bad(&format!("{} bytes follow its trailer", self.len - self.pos)));
        }
        if counts.records != self.records {
            return Err(self.bad(&format!(
                "its trailer counts {} records, the file holds {}",
                counts.records, self.records
            )));
        }
        Ok(counts)
    }

    fn u32(&mut self, at: &str) -> Result<u32, StoreError> {
        let mut b = [0; 4];
        self.take(&mut b, at)?;
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self, at: &str) -> Result<u64, StoreError> {
        let mut b = [0; 8];
        self.take(&mut b, at)?;
        Ok(u64::from_be_bytes(b))
    }

    /// A length, refused when larger than [`MAX_LEN`] or than what is
    /// left of the file.
    fn len32(&mut self, at: &str) -> Result<u32, StoreError> {
        let n = self.u32(at)?;
        if n > MAX_LEN || u64::from(n) > self.len - self.pos {
            return Err(self.bad(&format!(
                "{at} (byte {}) gives a length of {n} bytes, but {} are left in the file: \
                 the file is cut short or damaged",
                self.pos - 4,
                self.len - self.pos
            )));
        }
        Ok(n)
    }

    /// Reads `n` bytes into `buf`, replacing what it held.
    fn fill(&mut self, buf: &mut Vec<u8>, n: u32, at: &str) -> Result<(), StoreError> {
        buf.clear();
        buf.resize(n as usize, 0);
        self.take(buf, at)
    }

    fn take(&mut self, buf: &mut [u8], at: &str) -> Result<(), StoreError> {
        self.input.read_exact(buf).map_err(|e| self.cut(at, &e))?;
        self.hash.update(buf);
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn cut(&self, at: &str, e: &std::io::Error) -> StoreError {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            self.bad(&format!(
                "it ends at byte {} inside {at}: the file is cut short (copied or written \
                 only in part)",
                self.len
            ))
        } else {
            StoreError::DataDir {
                path: self.path.clone(),
                source: std::io::Error::new(e.kind(), e.to_string()),
            }
        }
    }

    /// A fault of the file.
    pub(super) fn bad(&self, reason: &str) -> StoreError {
        StoreError::Backup {
            path: self.path.clone(),
            reason: reason.to_owned(),
        }
    }
}
