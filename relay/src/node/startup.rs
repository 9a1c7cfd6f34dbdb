//! Start-up: the checks a relay passes before it serves (its audit log
//! against its newest signed checkpoint, the roster file against the
//! roster stored before, a message key the roster lists as valid now), what
//! peers have cosigned of its log, and the QUIC endpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kurir_certs::tls::{self, Credentials, FederationVerifier};
use kurir_certs::{Accepted as RosterAccepted, Roster};
use kurir_proto::audit::log_origin;
use kurir_proto::checkpoint::{NoteVerifier, SignedCheckpoint};
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::{AuthorityId, KeyId, KeyLookup, Timestamp};

use super::NodeError;
use crate::config::RelayConfig;
use crate::core::events;
use crate::store::Store;

/// The QUIC endpoint for peers and officers, on `socket` if given (else
/// bound to the configured address), with the server's TLS configuration.
pub(super) fn endpoint(
    config: &RelayConfig,
    log_key: &SigningKey,
    verifier: Arc<FederationVerifier>,
    credentials: &Credentials,
    socket: Option<std::net::UdpSocket>,
) -> Result<quinn::Endpoint, NodeError> {
    let server_tls = tls::server_config(verifier, credentials)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(
        quinn::crypto::rustls::QuicServerConfig::try_from(server_tls)
            .map_err(|e| NodeError::Quic(e.to_string()))?,
    ));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(config.max_streams_per_connection.into())
        .max_concurrent_uni_streams(0u32.into())
        .keep_alive_interval(Some(Duration::from_secs(10)));
    let transport = Arc::new(transport);
    server.transport_config(transport.clone());

    let socket = match socket {
        Some(s) => s,
        None => std::net::UdpSocket::bind(config.listen).map_err(|source| NodeError::Listen {
            addr: config.listen,
            source,
        })?,
    };
    quinn::Endpoint::new(
        endpoint_config(log_key),
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|source| NodeError::Listen {
        addr: config.listen,
        source,
    })
}

/// QUIC endpoint settings that outlive the process: the stateless-reset
/// key and the connection-id key are derived from the relay's log key, so
/// a relay restarted after a crash recognises the connection ids of its
/// previous run and resets those connections (RFC 9000 §10.3). A peer
/// that was sending to it learns at once that the connection is gone and
/// dials again, instead of waiting for the receipt timeout or the idle
/// timeout on a connection nobody holds.
fn endpoint_config(secret: &SigningKey) -> quinn::EndpointConfig {
    let derive = |label: &[u8]| {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(label);
        ctx.update(secret.as_bytes());
        ctx.finish()
    };
    let reset = derive(b"kurir/quic stateless reset key\0");
    let mut config = quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        reset.as_ref(),
    )));
    let cid = derive(b"kurir/quic connection id key\0");
    let key = cid
        .as_ref()
        .first_chunk::<8>()
        .map_or(0, |b| u64::from_be_bytes(*b));
    config.cid_generator(move || Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(key)));
    config
}

/// Loads the roster file, refusing a rollback below the version the store
/// has accepted before, and records the accepted one.
pub(super) async fn load_roster(
    path: &Path,
    me: &AuthorityId,
    store: &Store,
    now: Timestamp,
) -> Result<Roster, NodeError> {
    let bytes = kurir_certs::files::read(path)
        .map_err(|e| NodeError::Roster(kurir_certs::RosterError::File(e)))?;
    let stored = match store.roster()? {
        Some(old) => Some(Roster::verify(&old, now)?),
        None => None,
    };
    let roster =
        match Roster::accept(&bytes, stored.as_ref(), now).map_err(|e| with_path(e, path))? {
            RosterAccepted::Newer(r) => r,
            RosterAccepted::Unchanged => match stored {
                Some(r) => return Ok(r),
                None => Roster::verify(&bytes, now).map_err(|e| with_path(e, path))?,
            },
        };
    let entry = events::roster(now, &roster);
    store
        .set_roster(me, roster.to_bytes().to_vec(), vec![entry])
        .await?;
    Ok(roster)
}

/// For each peer, the largest of our checkpoints it has cosigned (from the
/// cosignature lines in the stored checkpoints).
pub(super) fn cosigned_by_peers(
    store: &Store,
    roster: &Roster,
    me: &AuthorityId,
) -> Result<HashMap<AuthorityId, u64>, NodeError> {
    let mut map = HashMap::new();
    for note in store.checkpoints()? {
        let Ok(signed) = SignedCheckpoint::parse(&note) else {
            continue;
        };
        for m in roster.members().iter().filter(|m| &m.id != me) {
            let Ok(v) = NoteVerifier::cosigner(&log_origin(&m.id), m.log_key) else {
                continue;
            };
            if signed.verify_cosignature(&v).is_ok() {
                map.insert(m.id.clone(), signed.checkpoint().size());
            }
        }
    }
    Ok(map)
}

/// Refuses to run on an audit log that is shorter than, or differs from,
/// its newest signed checkpoint (a data directory restored from an old
/// backup, or entries changed on disk).
pub(super) fn check_log(
    store: &Store,
    me: &AuthorityId,
    log_key: &kurir_proto::ed25519_dalek::VerifyingKey,
) -> Result<(), NodeError> {
    let origin = log_origin(me);
    let state = store.log_state();
    let Some((note, size, root)) = &state.last_checkpoint else {
        return Ok(());
    };
    let integrity = |reason: String| NodeError::Integrity(reason);
    let signed = SignedCheckpoint::parse(note)
        .map_err(|e| integrity(format!("the newest checkpoint does not parse: {e}")))?;
    let verifier =
        NoteVerifier::ed25519(&origin, *log_key).map_err(|e| integrity(format!("log key: {e}")))?;
    signed.verify(&verifier).map_err(|e| {
        integrity(format!(
            "the newest checkpoint (size {size}) is not signed by this relay's log key: {e}"
        ))
    })?;
    if state.size < *size {
        return Err(integrity(format!(
            "the audit log holds {} entries but its last signed checkpoint covers {size}: the \
             data directory was rolled back or truncated. Do not run on it: restore the newest \
             backup, or have an auditor examine it",
            state.size
        )));
    }
    if signed.checkpoint().root() != root {
        return Err(integrity(format!(
            "the audit log differs from its last signed checkpoint at size {size} (root {} \
             signed, {} found): entries were changed on disk. Do not run on it; have an \
             auditor examine it",
            signed.checkpoint().root(),
            root
        )));
    }
    Ok(())
}

fn with_path(e: kurir_certs::RosterError, path: &Path) -> kurir_certs::RosterError {
    match e {
        kurir_certs::RosterError::Invalid { problems, .. } => kurir_certs::RosterError::Invalid {
            path: Some(path.to_owned()),
            problems,
        },
        other => other,
    }
}

/// The message key to sign with: of the keys in `message-keys/`, the one the
/// roster lists for this authority as valid now, newest first.
pub(super) fn pick_message_key(
    authority_dir: &Path,
    me: &AuthorityId,
    roster: &Roster,
    now: Timestamp,
) -> Result<SigningKey, NodeError> {
    let dir: PathBuf = authority_dir.join(kurir_certs::authority::layout::MESSAGE_KEYS);
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        NodeError::MessageKey(format!(
            "cannot read message keys in {}: {e}",
            dir.display()
        ))
    })?;
    let mut best: Option<(Timestamp, SigningKey)> = None;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("key") {
            continue;
        }
        let key = kurir_certs::keys::read_secret_key(&path)
            .map_err(|e| NodeError::MessageKey(e.to_string()))?;
        let kid = KeyId::of(&key.verifying_key());
        if let Some(pk) = roster.lookup(&kid)
            && &pk.authority == me
            && pk.valid_at(now)
            && best.as_ref().is_none_or(|(from, _)| pk.valid_from > *from)
        {
            best = Some((pk.valid_from, key));
        }
    }
    best.map(|(_, k)| k).ok_or_else(|| {
        NodeError::MessageKey(format!(
            "none of the keys in {} is a message key of {me} valid now in the roster; \
             add the current key to the roster (kurir-certs roster update) or check the clock",
            dir.display()
        ))
    })
}
