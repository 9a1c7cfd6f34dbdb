//! Sending to peers: the outbox loop polls the core's [`Outbox`] and spawns
//! one task per send (connect with a bounded timeout, one bidirectional
//! stream per parcel, verify the receipt), then persists each change.
//! Connections to peers are shared, with one dial per peer at a time;
//! [`peer_exchange`] carries the control requests (cosigning, proofs).
//!
//! [`Outbox`]: crate::core::delivery::Outbox

use std::sync::Arc;
use std::time::Duration;

use kurir_certs::tls;
use kurir_proto::audit::{Entry, PeerRequest, PeerResponse, Record, receipt_digest};
use kurir_proto::{AuthorityId, MessageId};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::{Shared, read_frame, write_frame};
use crate::core::delivery::{Delivery, DeliveryState};
use crate::core::inbound::{self, Expected};

/// How long a peer has to answer a parcel with a receipt.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest receipt accepted from a peer (receipts are a few hundred bytes).
pub(super) const MAX_RECEIPT: usize = 64 * 1024;
/// How long a connection attempt to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn outbox_loop(shared: Arc<Shared>) {
    let mut sends = JoinSet::new();
    let mut shutdown = shared.shutdown.clone();
    loop {
        let now = shared.now();
        let (orders, expired, wake_at) = {
            let Ok(mut outbox) = shared.outbox.lock() else {
                error!("outbox lock poisoned; stopping delivery");
                break;
            };
            let expired = outbox.handle_timeout(now);
            let mut orders = vec![];
            while let Some(order) = outbox.poll_send(now) {
                orders.push(order);
            }
            (orders, expired, outbox.next_wakeup())
        };
        for d in expired {
            warn!(msg_id = %d.msg_id, peer = %d.peer, "expired undelivered");
            shared.metrics.failed.inc();
            persist(&shared, d).await;
        }
        for order in orders {
            sends.spawn(send_one(
                shared.clone(),
                order.msg_id,
                order.peer,
                order.attempt,
            ));
        }
        let sleep = match wake_at {
            Some(t) => Duration::from_millis(t.0.saturating_sub(now.0).max(1)),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            Some(_) = sends.join_next(), if !sends.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    // Let sends on the wire finish (their outcome is persisted).
    while sends.join_next().await.is_some() {}
}

/// Stores a delivery's new state, with the audit entry a final state gets.
async fn persist(shared: &Shared, d: Delivery) {
    let now = shared.now();
    let (msg_id, peer) = (d.msg_id, d.peer.clone());
    let audit = match &d.state {
        DeliveryState::Delivered { receipt, .. } => vec![Entry::new(
            now,
            Record::Delivered {
                msg_id,
                peer,
                receipt_digest: receipt_digest(receipt),
            },
        )],
        // The state keeps the code as text (a RejectCode's name): one that
        // is not cannot be recorded, and is left out of the log, loudly.
        DeliveryState::Rejected { code, receipt, .. } => match code.parse() {
            Ok(reason) => vec![Entry::new(
                now,
                Record::Rejected {
                    msg_id,
                    peer,
                    receipt_digest: receipt_digest(receipt),
                    reason,
                },
            )],
            Err(()) => {
                error!(%msg_id, %peer, %code, "a rejection with an unknown reason code is not logged");
                vec![]
            }
        },
        DeliveryState::Expired { .. } => vec![Entry::new(now, Record::Expired { msg_id, peer })],
        _ => vec![],
    };
    let last = d.state.is_final();
    match shared.store.update_delivery(d.clone(), audit).await {
        Ok(_) if last => shared.settled.notify(d.msg_id),
        Ok(_) => {}
        Err(e) => {
            error!(msg_id = %d.msg_id, peer = %d.peer, error = %e, "cannot store a delivery state")
        }
    }
}

async fn send_one(shared: Arc<Shared>, msg_id: MessageId, peer: AuthorityId, attempt: u32) {
    let started = std::time::Instant::now();
    let result = attempt_delivery(&shared, msg_id, &peer).await;
    let now = shared.now();
    let change = {
        let Ok(mut outbox) = shared.outbox.lock() else {
            return;
        };
        match result {
            Ok(outcome) => outbox.on_outcome(msg_id, &peer, outcome, now),
            Err(e) => {
                warn!(%msg_id, %peer, attempt, error = %e, "delivery attempt failed");
                outbox.on_failure(msg_id, &peer, e, now)
            }
        }
    };
    if let Some(d) = change {
        let delivered = matches!(d.state, DeliveryState::Delivered { .. });
        match &d.state {
            DeliveryState::Delivered { .. } => {
                crate::crashpoint::hit("outbound.receipt_received");
                info!(%msg_id, %peer, attempt, "delivered, receipt verified");
                shared.metrics.delivered.inc();
                shared.metrics.latency.observe(started.elapsed());
            }
            DeliveryState::Rejected { code, .. } => {
                warn!(%msg_id, %peer, %code, "rejected by the recipient");
                shared.metrics.failed.inc();
            }
            DeliveryState::Expired { .. } => {
                warn!(%msg_id, %peer, "expired undelivered");
                shared.metrics.failed.inc();
            }
            _ => {}
        }
        persist(&shared, d).await;
        if delivered {
            crate::crashpoint::hit("outbound.receipt_stored");
        }
    }
    shared.wake.notify_one();
}

async fn attempt_delivery(
    shared: &Shared,
    msg_id: MessageId,
    peer: &AuthorityId,
) -> Result<crate::core::delivery::Outcome, String> {
    let bytes = shared
        .store
        .sent_parcel(msg_id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("message {msg_id} is not in the store, or its body was erased"))?;
    let envelope_digest = crate::store::envelope_of(&bytes)
        .map(kurir_proto::Digest::of_envelope)
        .ok_or_else(|| format!("the stored parcel of {msg_id} has no envelope"))?;
    let conn = connect(shared, peer).await?;
    let exchange = round_trip(&conn, &bytes, MAX_RECEIPT, "no receipt");
    let receipt = match tokio::time::timeout(RECEIPT_TIMEOUT, exchange).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            forget_connection(shared, peer, &conn).await;
            return Err(e);
        }
        Err(_) => {
            forget_connection(shared, peer, &conn).await;
            return Err(format!("no receipt within {} s", RECEIPT_TIMEOUT.as_secs()));
        }
    };
    let expected = Expected {
        msg_id,
        envelope_digest,
        me: &shared.me,
        peer,
    };
    inbound::check_receipt(&receipt, &*shared.roster, &expected)
}

/// One exchange on a stream of its own: writes `bytes` as one frame and
/// reads the answer (at most `max` bytes); `missing` starts the error when
/// no answer comes.
async fn round_trip(
    conn: &quinn::Connection,
    bytes: &[u8],
    max: usize,
    missing: &str,
) -> Result<Vec<u8>, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    write_frame(&mut send, bytes).await?;
    read_frame(&mut recv, max)
        .await
        .map_err(|e| format!("{missing}: {e:?}"))
}

/// The last connection attempt to one peer.
#[derive(Debug, Default)]
pub(super) struct Dial {
    /// When it failed, and why.
    failed: Option<(std::time::Instant, String)>,
}

/// The open connection to `peer`, or a new one. One attempt per peer at a
/// time: deliveries that find no connection wait for the attempt in progress
/// and share its outcome, instead of each opening a connection of its own
/// (a queue resumed after a restart would exceed the peer's per-peer
/// connection limit and have the surplus refused). The connection table is
/// not held while connecting, so a peer that does not answer never holds up
/// the others.
async fn connect(shared: &Shared, peer: &AuthorityId) -> Result<quinn::Connection, String> {
    if let Some(c) = open_connection(shared, peer).await {
        return Ok(c);
    }
    let dial = shared
        .dials
        .lock()
        .map_err(|_| "connection attempts lock poisoned".to_owned())?
        .entry(peer.clone())
        .or_default()
        .clone();
    let waiting_since = std::time::Instant::now();
    let mut dial = dial.lock().await;
    if let Some(c) = open_connection(shared, peer).await {
        return Ok(c);
    }
    if let Some((at, e)) = &dial.failed
        && *at >= waiting_since
    {
        return Err(e.clone());
    }
    let result = dial_peer(shared, peer).await;
    dial.failed = result
        .as_ref()
        .err()
        .map(|e| (std::time::Instant::now(), e.clone()));
    result
}

async fn open_connection(shared: &Shared, peer: &AuthorityId) -> Option<quinn::Connection> {
    let peers = shared.peers.lock().await;
    peers
        .get(peer)
        .filter(|c| c.close_reason().is_none())
        .cloned()
}

async fn dial_peer(shared: &Shared, peer: &AuthorityId) -> Result<quinn::Connection, String> {
    let (tls_config, name, port) =
        tls::peer_client_config(&shared.roster, &shared.credentials, peer)
            .map_err(|e| e.to_string())?;
    let quic =
        quinn::crypto::rustls::QuicClientConfig::try_from(tls_config).map_err(|e| e.to_string())?;
    let mut client = quinn::ClientConfig::new(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(10)));
    client.transport_config(Arc::new(transport));
    let host = name.to_str().into_owned();
    let local_v4 = shared
        .endpoint
        .local_addr()
        .map(|a| a.is_ipv4())
        .unwrap_or(true);
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .find(|a| a.is_ipv4() == local_v4)
        .ok_or_else(|| format!("{host} has no address of this relay's IP version"))?;
    let connecting = shared
        .endpoint
        .connect_with(client, addr, &host)
        .map_err(|e| e.to_string())?;
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| {
            format!(
                "cannot connect to {peer} at {host}:{port}: no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("cannot connect to {peer} at {host}:{port}: {e}"))?;
    shared.peers.lock().await.insert(peer.clone(), conn.clone());
    Ok(conn)
}

async fn forget_connection(shared: &Shared, peer: &AuthorityId, conn: &quinn::Connection) {
    let mut peers = shared.peers.lock().await;
    if peers
        .get(peer)
        .is_some_and(|c| c.stable_id() == conn.stable_id())
    {
        peers.remove(peer);
    }
}

/// Sends a control request to a peer on a stream of its own and reads the
/// answer (at most `max` bytes), within [`RECEIPT_TIMEOUT`].
pub(super) async fn peer_exchange(
    shared: &Shared,
    peer: &AuthorityId,
    request: &PeerRequest,
    max: usize,
) -> Result<PeerResponse, String> {
    let bytes = request.encode().map_err(|e| e.to_string())?;
    let conn = connect(shared, peer).await?;
    let exchange = round_trip(&conn, &bytes, max, "no answer");
    let answer = tokio::time::timeout(RECEIPT_TIMEOUT, exchange)
        .await
        .map_err(|_| "no answer in time".to_owned())??;
    PeerResponse::decode(&answer).map_err(|e| e.to_string())
}
