//! Shared fixtures: authorities in temporary directories, roster keys from
//! fixed seeds, a signed roster.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use kurir_certs::authority::{self, InitParams};
use kurir_certs::files::Overwrite;
use kurir_certs::roster::{self, Editor, RosterKey, SignedRoster};
use kurir_certs::x509;
use kurir_proto::{AuthorityId, Timestamp};

pub(crate) const DAY: u64 = 86_400_000;

pub(crate) fn now() -> Timestamp {
    x509::now()
}

/// Creates an authority directory `dir/<id>` as of `now`.
pub(crate) fn init_at(dir: &Path, id: &str, now: Timestamp, node_days: u32) -> PathBuf {
    let out = dir.join(id);
    let host = format!(
        "relay.{}.example",
        id.split('.').next().unwrap().to_lowercase()
    );
    authority::init(
        &out,
        &InitParams {
            id: AuthorityId::parse(id).unwrap(),
            name: format!("{id} ministry"),
            relay_host: host,
            relay_port: 7443,
            ca_days: 3650,
            node_days,
            key_days: kurir_certs::authority::DEFAULT_KEY_DAYS,
            now,
            overwrite: Overwrite::Refuse,
        },
    )
    .unwrap();
    out
}

pub(crate) fn init(dir: &Path, id: &str) -> PathBuf {
    init_at(dir, id, now(), 730)
}

/// Roster key `i` from a fixed seed.
pub(crate) fn roster_key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

pub(crate) fn roster_keys(seeds: &[u8]) -> Vec<RosterKey> {
    seeds
        .iter()
        .map(|&i| RosterKey {
            label: format!("roster key {i}"),
            key: roster_key(i).verifying_key(),
        })
        .collect()
}

/// An unsigned roster (version 1, threshold `k`, keys from `seeds`) with
/// the members in `dirs`.
pub(crate) fn draft(k: u64, seeds: &[u8], dirs: &[&Path]) -> SignedRoster {
    let mut editor = Editor::create(k, roster_keys(seeds), now()).unwrap();
    for d in dirs {
        let m = roster::member_from_file(&d.join(authority::layout::MEMBER)).unwrap();
        editor.add_member(m).unwrap();
    }
    editor.finish(now()).unwrap()
}

/// `draft` signed by the keys in `signers`.
pub(crate) fn signed(k: u64, seeds: &[u8], dirs: &[&Path], signers: &[u8]) -> SignedRoster {
    let mut r = draft(k, seeds, dirs);
    for &s in signers {
        r.sign(&roster_key(s));
    }
    r
}

/// A federation of RS.MUP and BA.SPS with a 2-of-3 roster signed by keys 1 and 2.
pub(crate) struct Federation {
    pub(crate) _tmp: tempfile::TempDir,
    pub(crate) rs: PathBuf,
    pub(crate) ba: PathBuf,
    pub(crate) roster: SignedRoster,
}

pub(crate) fn federation() -> Federation {
    let tmp = tempfile::tempdir().unwrap();
    let rs = init(tmp.path(), "RS.MUP");
    let ba = init(tmp.path(), "BA.SPS");
    let roster = signed(2, &[1, 2, 3], &[&rs, &ba], &[1, 2]);
    Federation {
        _tmp: tmp,
        rs,
        ba,
        roster,
    }
}
