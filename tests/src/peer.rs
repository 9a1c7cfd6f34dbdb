//! Playing a peer relay: a raw peer connection ([`PeerLink`]), the
//! receiver-only federation and the checks of signed rejections.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use kurir_certs::Roster;
use kurir_certs::tls::Credentials;
use kurir_proto::{AuthorityId, ReceiptStatus, RejectCode, VerifiedReceipt, frame, open_receipt};

use crate::STEP_TIMEOUT;
use crate::harness::Harness;

/// Founds RS.MUP, BA.SPS and ME.UP and starts only BA.SPS: the test plays
/// the other relays itself.
#[allow(clippy::expect_used)]
pub async fn receiver_only() -> Harness {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS", "ME.UP"]).expect("founding a federation");
    h.start("BA.SPS").await.expect("starting BA.SPS");
    h
}

/// `bytes` (sent by the test as RS.MUP's relay) came back as a rejection
/// with `code` that verifies against the roster and is signed by BA.SPS;
/// BA.SPS recorded that very rejection and its inbox is empty.
#[allow(clippy::unwrap_used)]
pub fn assert_refused(h: &Harness, answer: &[u8], code: RejectCode) -> VerifiedReceipt {
    let (v, got) = open_rejection(h.roster(), answer).unwrap();
    assert_eq!(got, code, "{v:?}");
    assert_eq!(v.receipt.receiver.as_str(), "BA.SPS");
    assert_eq!(v.receipt.sender.as_str(), "RS.MUP", "the TLS peer");
    let key = kurir_proto::KeyLookup::lookup(h.roster(), &v.kid).unwrap();
    assert_eq!(key.authority.as_str(), "BA.SPS", "signed with BA.SPS's key");
    let store = h.node("BA.SPS").unwrap().store();
    let refusals = store.refusals().unwrap();
    let record = refusals
        .iter()
        .find(|r| r.receipt == answer)
        .unwrap_or_else(|| unreachable!("refusal not recorded: {refusals:?}"));
    assert_eq!(record.code, code.as_str());
    assert_eq!(record.from.as_str(), "RS.MUP");
    assert_eq!(record.msg_id, v.receipt.msg_id);
    assert!(store.inbox_all().unwrap().is_empty(), "nothing delivered");
    v
}

/// Verifies a signed rejection against the roster and returns it with its code.
pub fn open_rejection(roster: &Roster, bytes: &[u8]) -> Result<(VerifiedReceipt, RejectCode)> {
    let v = open_receipt(bytes, roster).context("the rejection does not verify")?;
    match &v.receipt.status {
        ReceiptStatus::Rejected { reason, .. } => {
            let code = *reason;
            Ok((v, code))
        }
        ReceiptStatus::Accepted => bail!("expected a rejection, got an acceptance: {v:?}"),
    }
}

/// A raw relay-to-relay connection: the test plays a peer relay, sending
/// parcels (or anything else) one frame per bidirectional stream and reading
/// the one frame that comes back.
#[derive(Debug)]
pub struct PeerLink {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
}

impl PeerLink {
    /// Connects to the relay of `to` at `addr` with `creds` (a node
    /// certificate), checking the relay's certificate against the roster.
    ///
    /// With TLS 1.3 the client finishes its handshake before the server has
    /// checked the client certificate, so a refused certificate may show up
    /// here or only on the first stream.
    pub async fn connect(
        roster: &Roster,
        creds: &Credentials,
        to: &AuthorityId,
        addr: SocketAddr,
    ) -> Result<PeerLink> {
        Self::connect_on(Self::bind()?, roster, creds, to, addr).await
    }

    /// A client endpoint on `127.0.0.1`, port chosen by the OS; bind first
    /// when the test needs its address before the handshake (to find the
    /// relay's log line about a refused handshake).
    pub fn bind() -> Result<quinn::Endpoint> {
        Ok(quinn::Endpoint::client((Ipv4Addr::LOCALHOST, 0).into())?)
    }

    /// [`PeerLink::connect`] from an endpoint made by [`PeerLink::bind`].
    pub async fn connect_on(
        mut endpoint: quinn::Endpoint,
        roster: &Roster,
        creds: &Credentials,
        to: &AuthorityId,
        addr: SocketAddr,
    ) -> Result<PeerLink> {
        let (tls, name, _port) = kurir_certs::tls::peer_client_config(roster, creds, to)?;
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
        let connecting = endpoint.connect(addr, &name.to_str())?;
        let conn = tokio::time::timeout(STEP_TIMEOUT, connecting)
            .await
            .map_err(|_| anyhow!("no handshake with {to} within {STEP_TIMEOUT:?}"))??;
        Ok(PeerLink { endpoint, conn })
    }

    /// Connects from `endpoint` to `addr` with a TLS configuration the test
    /// built or changed (see [`Harness::peer_tls`]).
    pub async fn connect_tls(
        mut endpoint: quinn::Endpoint,
        tls: rustls::ClientConfig,
        server_name: &str,
        addr: SocketAddr,
    ) -> Result<PeerLink> {
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
        let connecting = endpoint.connect(addr, server_name)?;
        let conn = tokio::time::timeout(STEP_TIMEOUT, connecting)
            .await
            .map_err(|_| anyhow!("no handshake with {addr} within {STEP_TIMEOUT:?}"))??;
        Ok(PeerLink { endpoint, conn })
    }

    /// The local address of this end (what the relay logs as `remote`).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.endpoint.local_addr()?)
    }

    /// The connection.
    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Sends `payload` as one frame on a new stream and returns the frame
    /// that comes back (a receipt or a signed rejection).
    pub async fn exchange(&self, payload: &[u8]) -> Result<Vec<u8>> {
        let framed = frame::encode(payload, frame::HARD_MAX_FRAME)?;
        self.exchange_raw(&framed, true).await
    }

    /// Sends only a frame prefix declaring `declared` payload bytes, never
    /// the payload, and keeps the stream open: a relay that waited for the
    /// payload would never answer.
    pub async fn exchange_prefix_only(&self, declared: u32) -> Result<Vec<u8>> {
        self.exchange_raw(&declared.to_be_bytes(), false).await
    }

    async fn exchange_raw(&self, bytes: &[u8], finish: bool) -> Result<Vec<u8>> {
        let work = async {
            let (mut send, mut recv) = self.conn.open_bi().await?;
            send.write_all(bytes).await?;
            if finish {
                send.finish()?;
            }
            let mut prefix = [0u8; frame::PREFIX_LEN];
            recv.read_exact(&mut prefix).await?;
            let len = frame::payload_len(prefix, frame::HARD_MAX_FRAME)?;
            let mut payload = vec![0u8; len];
            recv.read_exact(&mut payload).await?;
            drop(send);
            Ok::<_, anyhow::Error>(payload)
        };
        tokio::time::timeout(STEP_TIMEOUT, work)
            .await
            .map_err(|_| anyhow!("no answer within {STEP_TIMEOUT:?}"))?
    }

    /// Closes the connection and waits until the relay has been told.
    pub async fn close(self) {
        self.conn.close(0u32.into(), b"done");
        self.endpoint.wait_idle().await;
    }
}
