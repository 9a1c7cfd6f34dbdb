//! The bundle's envelopes: each signed by its sender, each the message of a
//! `submitted` or `received` entry, and every such entry's envelope held.

use std::collections::{BTreeMap, BTreeSet};

use kurir_proto::audit::{Bundle, Entry, Event};
use kurir_proto::batch::SignatureCheck;
use kurir_proto::envelope::verify_envelope_with;
use kurir_proto::{Digest, KeyLookup};

use crate::error::EnvelopeProblem;

/// Checks the bundle's envelopes: each is signed by a roster key of its
/// sender, and is the message of a `submitted` (sent by this authority) or
/// `received` entry with its digest; every such entry has its envelope.
/// Returns how many were checked.
pub(super) fn check(
    bundle: &Bundle,
    entries: &[Entry],
    keys: &dyn KeyLookup,
    sigs: &dyn SignatureCheck,
) -> Result<usize, EnvelopeProblem> {
    let authority = &bundle.authority;
    let mut logged: BTreeMap<Digest, &Entry> = BTreeMap::new();
    for e in entries {
        if matches!(e.event, Event::Submitted | Event::Received)
            && let Some(d) = e.envelope_digest
        {
            logged.insert(d, e);
        }
    }
    let mut seen = BTreeSet::new();
    for (i, env) in bundle.envelopes.iter().enumerate() {
        let number = i + 1;
        let v = verify_envelope_with(&env.0, keys, sigs)
            .map_err(|error| EnvelopeProblem::Invalid { number, error })?;
        let h = &v.header;
        let Some(entry) = logged.get(&v.envelope_digest) else {
            return Err(EnvelopeProblem::NotLogged {
                number,
                msg_id: h.id,
                from: h.from.clone(),
            });
        };
        let fits = entry.msg_id == Some(h.id)
            && match entry.event {
                Event::Submitted => &h.from == authority,
                _ => &h.from != authority && entry.peer.as_ref() == Some(&h.from),
            };
        if !fits {
            return Err(EnvelopeProblem::Mismatch {
                number,
                msg_id: h.id,
                from: h.from.clone(),
                entry: entry.index,
                event: entry.event,
                entry_msg_id: entry.msg_id,
            });
        }
        seen.insert(v.envelope_digest);
    }
    if let Some((d, e)) = logged.iter().find(|(d, _)| !seen.contains(*d)) {
        return Err(EnvelopeProblem::Missing {
            entry: e.index,
            event: e.event,
            msg_id: e.msg_id,
            digest: *d,
        });
    }
    Ok(seen.len())
}
