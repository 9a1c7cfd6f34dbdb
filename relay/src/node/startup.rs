//! Start-up: the checks a relay passes before it serves (its audit log
//! against its newest signed checkpoint, the roster file against the
//! roster stored before, the message keys the roster lists, one of them
//! valid now), what peers have cosigned of its log, and the QUIC endpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kurir_certs::roster::CaDates;
use kurir_certs::tls::{self, FederationVerifier, NodeCertificate};
use kurir_certs::{Accepted as RosterAccepted, Roster, SignedRoster};
use kurir_proto::audit::log_origin;
use kurir_proto::checkpoint::{NoteVerifier, SignedCheckpoint};
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::{AuthorityId, Timestamp};
use tracing::warn;

use super::NodeError;
use crate::config::RelayConfig;
use crate::core::events;
use crate::core::keys::MessageKeys;
use crate::core::roster::FileVersus;
use crate::store::Store;

/// The node certificate the relay starts with: its key fits, it names
/// `me` and chains to the CA the roster lists for `me` (an expired one
/// only warns, through the expiry metrics and warnings).
pub(super) fn node_certificate(
    config: &RelayConfig,
    me: &AuthorityId,
    roster: &Roster,
    credentials: &tls::Credentials,
) -> Result<Arc<NodeCertificate>, NodeError> {
    let ca = roster
        .member(me)
        .map(|m| rustls::pki_types::CertificateDer::from(m.tls_ca.clone()))
        .ok_or_else(|| NodeError::MessageKey(format!("the roster does not list {me}")))?;
    let path = config
        .authority_dir
        .join(kurir_certs::authority::layout::NODE_CERT);
    Ok(NodeCertificate::new(me, credentials, &ca, &path)?)
}

/// The QUIC endpoint for peers and officers, on `socket` if given (else
/// bound to the configured address), with the server's TLS configuration:
/// every handshake presents the node certificate in force (`renewal`).
pub(super) fn endpoint(
    config: &RelayConfig,
    log_key: &SigningKey,
    verifier: Arc<FederationVerifier>,
    node_cert: Arc<NodeCertificate>,
    socket: Option<std::net::UdpSocket>,
) -> Result<quinn::Endpoint, NodeError> {
    let server_tls = tls::node_server_config(verifier, node_cert)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(
        quinn::crypto::rustls::QuicServerConfig::try_from(server_tls)
            .map_err(|e| NodeError::Quic(e.to_string()))?,
    ));
    let windows = ReceiveWindows::for_parcels(config.max_parcel_bytes);
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(config.max_streams_per_connection.into())
        .max_concurrent_uni_streams(0u32.into())
        .stream_receive_window(windows.stream)
        .receive_window(windows.connection)
        .keep_alive_interval(Some(Duration::from_secs(10)));
    let transport = Arc::new(transport);
    server.transport_config(transport.clone());
    // Address validation (QUIC Retry) is asked for by the accept loop
    // (`conn`) when many handshakes are in progress.

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

/// What a peer or officer may send on a connection before the relay has
/// read it (QUIC flow control), bound to what the parcel limit needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReceiveWindows {
    /// Per stream: quinn's default (about 1.2 MB: 100 ms at 100 Mbit/s),
    /// or one whole frame when frames are smaller.
    pub(super) stream: quinn::VarInt,
    /// Per connection, across its streams: one whole frame of the largest
    /// kind (a parcel, or an officer's request with its overhead), and at
    /// least one stream's window. quinn's default is unlimited: a client
    /// could make the relay buffer every stream's window at once.
    pub(super) connection: quinn::VarInt,
}

/// Framing, headers and an officer request's fields beyond the parcel.
const FRAME_OVERHEAD: u64 = 64 * 1024 + kurir_proto::frame::PREFIX_LEN as u64;
/// quinn's default stream receive window.
const DEFAULT_STREAM_WINDOW: u64 = 1_250_000;

impl ReceiveWindows {
    pub(super) fn for_parcels(max_parcel_bytes: usize) -> ReceiveWindows {
        let frame = u64::try_from(max_parcel_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(FRAME_OVERHEAD);
        let stream = frame.min(DEFAULT_STREAM_WINDOW);
        let varint = |v: u64| quinn::VarInt::from_u64(v).unwrap_or(quinn::VarInt::MAX);
        ReceiveWindows {
            stream: varint(stream),
            connection: varint(frame.max(stream)),
        }
    }
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

/// Loads the roster file, and records it when it is newer than the roster
/// the store has accepted before. A file older than the stored roster (the
/// relay adopted a newer one while it ran: installed, or from peers) is
/// behind: the relay starts with the stored roster and warns; it never
/// refuses to start over a stale file. A file of the stored version with
/// other content, or one that does not verify against the stored roster,
/// is refused.
///
/// The members' CA certificates are not held to their dates here
/// ([`CaDates::Unchecked`]): one member's expired CA must not stop every
/// relay from starting. The relay refuses that member's connections instead
/// (`links::MemberCas`) and logs which CA is out of date.
pub(super) async fn load_roster(
    path: &Path,
    me: &AuthorityId,
    store: &Store,
    now: Timestamp,
) -> Result<Roster, NodeError> {
    let bytes = kurir_certs::files::read(path)
        .map_err(|e| NodeError::Roster(kurir_certs::RosterError::File(e)))?;
    let dates = CaDates::Unchecked;
    let stored = match store.roster()? {
        Some(old) => Some(Roster::verify_against_with(&old, None, now, dates)?),
        None => None,
    };
    if let Some(in_force) = &stored
        && let Some(file) = SignedRoster::decode(&bytes)
            .ok()
            .and_then(|s| s.body().ok())
            .map(|b| b.version)
        && let FileVersus::Behind { file, in_force: v } =
            crate::core::roster::file_versus(file, in_force.version())
    {
        warn!(
            path = %path.display(),
            file_version = file,
            in_force = v,
            "the roster file is behind the roster this relay adopted (version {v}): starting with \
             the stored roster. Put the newest roster in the file"
        );
        return Ok(in_force.clone());
    }
    let accepted =
        Roster::accept_with(&bytes, stored.as_ref(), now, dates).map_err(|e| with_path(e, path))?;
    let roster = match accepted {
        RosterAccepted::Newer(r) => r,
        RosterAccepted::Unchanged => match stored {
            Some(r) => return Ok(r),
            None => Roster::verify_against_with(&bytes, None, now, dates)
                .map_err(|e| with_path(e, path))?,
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
            // Any log key the member has had: cosignatures made before it
            // rotated stay valid evidence.
            for key in m.all_log_keys() {
                let Ok(v) = NoteVerifier::cosigner(&log_origin(&m.id), key) else {
                    continue;
                };
                if signed.verify_cosignature(&v).is_ok() {
                    map.insert(m.id.clone(), signed.checkpoint().size());
                    break;
                }
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
    held: &[SigningKey],
    now: Timestamp,
) -> Result<(), NodeError> {
    let origin = log_origin(me);
    let state = store.log_state();
    let Some((note, size, root)) = &state.last_checkpoint else {
        return Ok(());
    };
    let integrity = |reason: String| NodeError::Integrity(reason);
    let signed = SignedCheckpoint::parse(note)
        .map_err(|e| integrity(format!("the newest checkpoint does not parse: {e}")))?;
    // Signed by one of this relay's log keys: those it holds (`log.key`,
    // `log.key.<N>`) and every one the roster it ran with lists for it (a
    // key rotated to whose secret is not copied here yet).
    let mut keys: Vec<_> = held.iter().map(SigningKey::verifying_key).collect();
    if let Some(bytes) = store.roster()?
        && let Ok(roster) = Roster::verify_against_with(&bytes, None, now, CaDates::Unchecked)
    {
        keys.extend(roster.all_log_keys(me));
    }
    let mut signed_by = Err(String::from("no log key held"));
    for key in keys {
        let verifier =
            NoteVerifier::ed25519(&origin, key).map_err(|e| integrity(format!("log key: {e}")))?;
        signed_by = signed.verify(&verifier).map_err(|e| e.to_string());
        if signed_by.is_ok() {
            break;
        }
    }
    signed_by.map_err(|e| {
        integrity(format!(
            "the newest checkpoint (size {size}) is not signed by any of this relay's log keys \
             (log.key, log.key.<N>, those the stored roster lists): {e}"
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

/// Every message key of this authority the relay holds (the keys in
/// `message-keys/` the roster lists for it, with their validity); which one
/// signs is chosen at each signature ([`MessageKeys::at`]). A key file the
/// roster does not list for this authority is skipped with a warning.
/// Refuses to start when none is valid now.
pub(super) fn load_message_keys(
    authority_dir: &Path,
    me: &AuthorityId,
    roster: &Roster,
    now: Timestamp,
) -> Result<MessageKeys, NodeError> {
    let dir: PathBuf = super::message_keys::dir_of(authority_dir);
    let scan = super::message_keys::scan(&dir, me, roster)?;
    for (path, reason) in &scan.skipped {
        warn!(file = %path.display(), %reason, "a message key file is not used: it does not match the roster");
    }
    let keys = MessageKeys::new(me.clone(), scan.held);
    keys.at(now).map_err(|e| NodeError::NoMessageKey {
        dir: dir.clone(),
        source: e,
    })?;
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_windows_are_bound_by_the_parcel_limit() {
        let default = ReceiveWindows::for_parcels(kurir_proto::DEFAULT_MAX_PARCEL);
        let frame = kurir_proto::DEFAULT_MAX_PARCEL as u64 + FRAME_OVERHEAD;
        assert_eq!(default.connection.into_inner(), frame);
        assert_eq!(default.stream.into_inner(), DEFAULT_STREAM_WINDOW);
        let small = ReceiveWindows::for_parcels(1000);
        assert_eq!(small.stream.into_inner(), 1000 + FRAME_OVERHEAD);
        assert_eq!(small.connection.into_inner(), 1000 + FRAME_OVERHEAD);
        let largest = ReceiveWindows::for_parcels(kurir_proto::frame::HARD_MAX_FRAME);
        assert_eq!(
            largest.connection.into_inner(),
            kurir_proto::frame::HARD_MAX_FRAME as u64 + FRAME_OVERHEAD
        );
    }
}
