//! Playing a member's relay as a server: [`HostileWitness`] listens on the
//! port the roster names for a member, with its node certificate, and
//! answers each control request (a cosigning request, a proof request) as
//! the test decides. Parcels get no answer.

use std::sync::Arc;

use anyhow::{Context, Result};
use kurir_certs::tls::{self, Credentials, FederationVerifier, OfficerTrust};
use kurir_proto::audit::{PeerRequest, PeerResponse};
use kurir_proto::frame;
use tokio::task::JoinSet;

use crate::harness::Harness;

/// How the test answers a request.
pub type Answerer = Arc<dyn Fn(&PeerRequest) -> PeerResponse + Send + Sync>;

/// The largest request read (a checkpoint note and a consistency proof).
const MAX_REQUEST: usize = 1024 * 1024;

/// A member's relay played by the test: it accepts peers' connections and
/// answers their control requests with [`Answerer`].
#[derive(Debug)]
pub struct HostileWitness {
    endpoint: quinn::Endpoint,
    tasks: tokio::task::JoinHandle<()>,
}

impl HostileWitness {
    /// Listens as `who` (its pre-bound socket, its node certificate and the
    /// federation's verifier of peers) and answers with `answer`.
    pub fn start(h: &mut Harness, who: &str, answer: Answerer) -> Result<HostileWitness> {
        let socket = h.take_socket(who)?;
        Self::start_on(h, who, socket, answer)
    }

    /// [`HostileWitness::start`] in place of a relay of `who` that ran and
    /// was stopped: binds the address the roster names, trying for a few
    /// seconds while the stopped relay's port is released.
    pub async fn start_after_stop(
        h: &mut Harness,
        who: &str,
        answer: Answerer,
    ) -> Result<HostileWitness> {
        let addr = h.addr(who)?;
        let deadline = std::time::Instant::now() + crate::RELEASE_TIMEOUT;
        let socket = loop {
            match std::net::UdpSocket::bind(addr) {
                Ok(s) => break s,
                Err(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(crate::POLL).await;
                }
                Err(e) => return Err(e).with_context(|| format!("binding {addr}")),
            }
        };
        Self::start_on(h, who, socket, answer)
    }

    fn start_on(
        h: &Harness,
        who: &str,
        socket: std::net::UdpSocket,
        answer: Answerer,
    ) -> Result<HostileWitness> {
        let dir = h.authority_dir(who)?.to_owned();
        let creds = Credentials::node(&dir).context("node credentials")?;
        let officers = OfficerTrust::load(&dir).context("officer trust")?;
        let verifier = FederationVerifier::new(h.roster(), &officers)?;
        let server_tls = tls::server_config(verifier, &creds)?;
        let server = quinn::ServerConfig::with_crypto(Arc::new(
            quinn::crypto::rustls::QuicServerConfig::try_from(server_tls)?,
        ));
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server),
            socket,
            Arc::new(quinn::TokioRuntime),
        )?;
        let accepting = endpoint.clone();
        let tasks = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Some(incoming) = accepting.accept().await {
                let answer = answer.clone();
                conns.spawn(async move {
                    let Ok(conn) = incoming.await else { return };
                    let mut streams = JoinSet::new();
                    while let Ok((send, recv)) = conn.accept_bi().await {
                        streams.spawn(serve(send, recv, answer.clone()));
                    }
                    streams.shutdown().await;
                });
            }
            conns.shutdown().await;
        });
        Ok(HostileWitness { endpoint, tasks })
    }

    /// Stops listening and waits until its tasks are done.
    pub async fn close(self) {
        self.endpoint.close(0u32.into(), b"done");
        self.endpoint.wait_idle().await;
        let _ = self.tasks.await;
    }
}

/// Reads one frame; answers it when it is a control request.
async fn serve(mut send: quinn::SendStream, mut recv: quinn::RecvStream, answer: Answerer) {
    let mut prefix = [0u8; frame::PREFIX_LEN];
    if recv.read_exact(&mut prefix).await.is_err() {
        return;
    }
    let Ok(len) = frame::payload_len(prefix, MAX_REQUEST) else {
        return;
    };
    let mut payload = vec![0u8; len];
    if recv.read_exact(&mut payload).await.is_err() {
        return;
    }
    let Ok(request) = PeerRequest::decode(&payload) else {
        return;
    };
    let Ok(bytes) = answer(&request).encode() else {
        return;
    };
    let Ok(framed) = frame::encode(&bytes, frame::HARD_MAX_FRAME) else {
        return;
    };
    if send.write_all(&framed).await.is_ok() {
        let _ = send.finish();
        let _ = send.stopped().await;
    }
}
