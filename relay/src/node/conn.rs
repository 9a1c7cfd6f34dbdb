//! Connections and streams: the accept loop (a QUIC Retry first for new
//! connections while many handshakes are in progress), identifying each
//! connection after its handshake (a peer authority or an officer, by
//! certificate and ALPN; a member whose CA is not valid is refused) and
//! handing it to its side within the connection caps per peer and per
//! officer certificate, serving a connection's streams until it closes or
//! the relay stops, and reading and writing frames (each frame within the
//! read deadline).

use std::sync::Arc;
use std::time::Duration;

use kurir_certs::tls::{self, Identity};
use kurir_proto::frame;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::links::Links;
use super::officer::{self, OfficerSide};
use super::peer::{self, PeerSide};
use super::revocation::Revocation;
use super::{
    Base, CLOSE_NODE_REVOKED, CLOSE_NOT_A_MEMBER, CLOSE_REFUSED, CLOSE_REVOKED, CLOSE_STALLED,
};

pub(super) async fn accept_loop(
    links: Arc<Links>,
    revocation: Arc<Revocation>,
    peers: PeerSide,
    officers: OfficerSide,
) {
    let mut handlers = JoinSet::new();
    let mut shutdown = peers.base.shutdown.clone();
    loop {
        tokio::select! {
            incoming = links.endpoint().accept() => {
                let Some(incoming) = incoming else { break };
                // Many handshakes at once (a flood of Initial packets, maybe
                // from spoofed addresses): a new connection must first prove
                // it receives at its address (QUIC Retry, RFC 9000 §8.1.2)
                // before the relay spends a TLS handshake on it.
                let crowded = links.handshake_started();
                if crowded && !incoming.remote_address_validated() && incoming.may_retry() {
                    links.handshake_done();
                    peers.base.metrics.retries.inc();
                    if let Err(e) = incoming.retry() {
                        debug!(error = %e, "could not ask for address validation");
                    }
                    continue;
                }
                handlers.spawn(handle_connection(
                    links.clone(),
                    revocation.clone(),
                    peers.clone(),
                    officers.clone(),
                    incoming,
                ));
            }
            _ = shutdown.changed() => break,
            Some(_) = handlers.join_next(), if !handlers.is_empty() => {}
        }
    }
    // Stop new connections; let the handlers finish what they hold.
    links.endpoint().set_server_config(None);
    while handlers.join_next().await.is_some() {}
}

async fn handle_connection(
    links: Arc<Links>,
    revocation: Arc<Revocation>,
    peers: PeerSide,
    officers: OfficerSide,
    incoming: quinn::Incoming,
) {
    let base = &peers.base;
    let remote = incoming.remote_address();
    let handshake = incoming.await;
    links.handshake_done();
    let conn = match handshake {
        Ok(c) => c,
        Err(e) => {
            warn!(%remote, error = %e, "handshake failed");
            base.metrics.refused_connections.inc();
            return;
        }
    };
    let chain = conn
        .peer_identity()
        .and_then(|any| {
            any.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .map(|b| *b)
        .unwrap_or_default();
    let alpn = conn
        .handshake_data()
        .and_then(|any| any.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.protocol);
    let identity =
        match links
            .verifier()
            .identify(&chain, alpn.as_deref(), tls::unix_time(base.now()))
        {
            Ok(id) => id,
            Err(e) => {
                warn!(%remote, error = %e, "connection refused");
                base.metrics.refused_connections.inc();
                conn.close(CLOSE_REFUSED.into(), b"refused");
                return;
            }
        };
    match identity {
        Identity::Peer(peer) => {
            if let Err(e) = links.cas().check(&peer, base.now()) {
                warn!(%remote, %peer, error = %e, "connection refused");
                base.metrics.refused_connections.inc();
                conn.close(CLOSE_REFUSED.into(), b"refused");
                return;
            }
            if !links.claim_slot(&peer) {
                warn!(%remote, %peer, "connection refused: too many connections from this peer");
                base.metrics.refused_connections.inc();
                conn.close(CLOSE_REFUSED.into(), b"too many connections");
                return;
            }
            let serving = links.serving(&peer, &conn);
            // A roster put in force since the handshake may have removed
            // the peer; its connections were closed before this one was
            // tracked.
            if !links.is_member(&peer) {
                warn!(%remote, %peer, "connection refused: the roster in force does not list this authority");
                base.metrics.refused_connections.inc();
                conn.close(CLOSE_NOT_A_MEMBER.into(), b"not a member");
                drop(serving);
                links.release_slot(&peer);
                return;
            }
            // Nor may it have revoked the certificate (the connections
            // that presented it were closed before this one was tracked).
            if chain.first().is_some_and(|c| links.revokes(&peer, c)) {
                warn!(%remote, %peer, "connection refused: the roster in force revokes this node certificate");
                base.metrics.refused_connections.inc();
                conn.close(CLOSE_NODE_REVOKED.into(), b"node certificate revoked");
                drop(serving);
                links.release_slot(&peer);
                return;
            }
            debug!(%remote, %peer, "peer connected");
            peer::serve_peer(&peers, &conn, &peer).await;
            drop(serving);
            links.release_slot(&peer);
        }
        Identity::Officer(officer) => {
            if !links.claim_officer_slot(&officer.serial) {
                warn!(%remote, officer = %officer.name, serial = %officer.serial, "connection refused: too many connections from this officer certificate ([limits] max_connections_per_officer)");
                base.metrics.refused_connections.inc();
                conn.close(CLOSE_REFUSED.into(), b"too many connections");
                return;
            }
            let Some(registered) = revocation.register(&officer.serial, &officer.name, &conn)
            else {
                warn!(%remote, officer = %officer.name, serial = %officer.serial, "connection refused: the CRL in force revokes this certificate");
                base.metrics.refused_connections.inc();
                conn.close(CLOSE_REVOKED.into(), b"certificate revoked");
                links.release_officer_slot(&officer.serial);
                return;
            };
            debug!(%remote, officer = %officer.name, role = %officer.role, "officer connected");
            officer::serve_officer(&officers, &conn, &officer).await;
            drop(registered);
            links.release_officer_slot(&officer.serial);
        }
    }
}

/// Reads one frame, refusing a declared length over `max` before reading it.
/// The whole frame must arrive `within` that time: a peer or officer that
/// opens a stream and then sends nothing, or trickles its bytes, does not
/// hold the stream (and the memory of its payload) beyond it. A stream that
/// misses the deadline is stopped ([`CLOSE_STALLED`]).
pub(super) async fn read_frame(
    recv: &mut quinn::RecvStream,
    max: usize,
    within: Duration,
) -> Result<Vec<u8>, FrameReadError> {
    match tokio::time::timeout(within, read_frame_unbounded(recv, max)).await {
        Ok(read) => read,
        Err(_) => {
            let _ = recv.stop(CLOSE_STALLED.into());
            Err(FrameReadError::Io(format!(
                "no complete frame within {} s ([limits] read_timeout_secs): the stream was \
                 stopped",
                within.as_secs_f64()
            )))
        }
    }
}

async fn read_frame_unbounded(
    recv: &mut quinn::RecvStream,
    max: usize,
) -> Result<Vec<u8>, FrameReadError> {
    let mut prefix = [0u8; frame::PREFIX_LEN];
    recv.read_exact(&mut prefix)
        .await
        .map_err(|e| FrameReadError::Io(e.to_string()))?;
    let len = frame::payload_len(prefix, max).map_err(FrameReadError::TooLarge)?;
    let mut payload = vec![0u8; len];
    recv.read_exact(&mut payload)
        .await
        .map_err(|e| FrameReadError::Io(e.to_string()))?;
    Ok(payload)
}

/// Why a frame could not be read.
#[derive(Debug)]
pub(super) enum FrameReadError {
    /// The declared length is over the limit (the payload was not read).
    TooLarge(frame::FrameError),
    /// The stream failed, ended early, or missed the read deadline.
    Io(String),
}

pub(super) async fn write_frame(
    send: &mut quinn::SendStream,
    payload: &[u8],
) -> Result<(), String> {
    let framed = frame::encode(payload, frame::HARD_MAX_FRAME).map_err(|e| e.to_string())?;
    send.write_all(&framed).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())
}

/// Runs `handle` on every bidirectional stream the connection opens, until
/// it closes or the relay shuts down; then waits for the streams in flight.
pub(super) async fn serve_streams<F, Fut>(base: &Base, conn: &quinn::Connection, mut handle: F)
where
    F: FnMut(quinn::SendStream, quinn::RecvStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut streams = JoinSet::new();
    let mut shutdown = base.shutdown.clone();
    loop {
        tokio::select! {
            accepted = conn.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    streams.spawn(handle(send, recv));
                }
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
        }
    }
    while streams.join_next().await.is_some() {}
}
