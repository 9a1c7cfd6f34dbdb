//! The officer's side of kurir: the `kurir` command line and the library
//! under it, which connects to one's own relay over QUIC with the officer
//! certificate, sends [`Request`]s and reads [`Response`]s.
//!
//! # Layout
//!
//! - [`Client`]: one authenticated connection to the relay; one stream per
//!   request ([`Client::request`]), or a long-lived stream of arrivals
//!   ([`Client::subscribe`]). The demo (`kurir-demo`) and the test harness use it too.
//! - [`fetch`]: fetching a message and verifying it against the roster
//!   ([`Client::fetch_verified`]), for the CLI, the demo and the harness.
//! - [`cli`]: the command line (clap derive), with examples and exit codes in
//!   `--help`.
//! - [`commands`]: one module per group of commands (profile, send,
//!   readmission, transfer, messages, case, watch) and the shared
//!   [`commands::Session`] (profile, verified roster, connection).
//! - [`profile`]: the officer's profile file (TOML, unknown keys refused).
//! - [`files`]: person and document files (TOML or JSON, errors with file,
//!   field and line), attachments, saving received files safely, templates.
//! - [`output`]: tables for people, JSON Lines `{"type","data"}` for scripts.
//! - [`exit`]: the exit codes, in one place.
//!
//! `docs/CLI.md` is the officer's reference.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use kurir_certs::tls::{self, Credentials};
use kurir_proto::api::{Request, Response, Submission};
use kurir_proto::{AuthorityId, frame};

pub mod cli;
pub mod commands;
pub mod exit;
pub mod fetch;
pub mod files;
pub mod output;
pub mod profile;

/// Runs the `kurir` command line: parses the arguments, runs the command,
/// prints errors on stderr and returns the documented exit code.
pub fn main() -> std::process::ExitCode {
    use clap::Parser;
    let cli = cli::Cli::parse();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kurir: cannot start: {e}");
            return std::process::ExitCode::from(exit::Exit::Internal.code());
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            let code = exit::exit_of(&err);
            let message = format!("{err:#}");
            if json {
                eprintln!("{}", output::error_line(code.code(), &message));
            } else {
                // The message may carry text from the relay or a peer:
                // no control or bidi character reaches the terminal.
                eprintln!("kurir: {}", output::safe_multiline(&message));
            }
            std::process::ExitCode::from(code.code())
        }
    }
}

/// Largest response frame accepted (a fetched message with attachments).
const MAX_RESPONSE: usize = frame::HARD_MAX_FRAME;

/// Why a request failed before the relay could answer it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The officer's certificate, key or CA could not be used.
    #[error("{0}")]
    Tls(#[from] kurir_certs::TlsError),
    /// The connection failed (unreachable relay, refused certificate).
    #[error("cannot reach the relay at {addr}: {reason}")]
    Connect {
        /// The relay address.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The stream broke or the relay sent something that is not a response.
    #[error("talking to the relay: {0}")]
    Protocol(String),
}

/// A connection to one's own relay.
#[derive(Debug)]
pub struct Client {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
}

impl Client {
    /// Connects to the relay of `authority` at `addr`, presenting the
    /// officer's certificate and checking the relay's against `ca`.
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        authority: &AuthorityId,
        ca: &rustls::pki_types::CertificateDer<'static>,
        officer: &Credentials,
    ) -> Result<Client, ClientError> {
        let connect_err = |reason: String| ClientError::Connect { addr, reason };
        let tls = tls::officer_client_config(ca, authority, officer)?;
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|e| connect_err(e.to_string()))?;
        let bind: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| connect_err(e.to_string()))?;
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
        let conn = endpoint
            .connect(addr, server_name)
            .map_err(|e| connect_err(e.to_string()))?
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        Ok(Client { endpoint, conn })
    }

    /// Waits until the relay or the network closes the connection, and
    /// says why (e.g. `closed by peer: certificate revoked` when a new
    /// CRL revokes this officer's certificate).
    pub async fn closed(&self) -> String {
        self.conn.closed().await.to_string()
    }

    /// Connects with the files `kurir-certs officer issue` wrote to `dir`.
    pub async fn connect_with_dir(
        addr: SocketAddr,
        server_name: &str,
        authority: &AuthorityId,
        dir: &Path,
    ) -> Result<Client, ClientError> {
        let officer = Credentials::officer(dir)?;
        let ca =
            kurir_certs::authority::load_cert(&dir.join(kurir_certs::officer::officer_layout::CA))
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Self::connect(addr, server_name, authority, &ca, &officer).await
    }

    /// Sends one request and waits for its response.
    pub async fn request(&self, request: &Request) -> Result<Response, ClientError> {
        self.request_inner(request).await.map_err(|e| self.why(e))
    }

    /// Adds the connection's close reason (e.g. the TLS alert of a relay
    /// that refused the certificate) to a stream error.
    fn why(&self, e: ClientError) -> ClientError {
        match (e, self.conn.close_reason()) {
            (ClientError::Protocol(m), Some(reason)) => {
                ClientError::Protocol(format!("{m}: {reason}"))
            }
            (e, _) => e,
        }
    }

    async fn request_inner(&self, request: &Request) -> Result<Response, ClientError> {
        let mut recv = self.send_request(request).await?;
        let payload = read_frame(&mut recv).await?;
        Response::decode(&payload)
            .map_err(|e| ClientError::Protocol(format!("malformed response: {e}")))
    }

    /// Opens a stream, writes `request` on it and finishes the writing
    /// side; the answers come on the stream returned.
    async fn send_request(&self, request: &Request) -> Result<quinn::RecvStream, ClientError> {
        let proto = |e: String| ClientError::Protocol(e);
        let (mut send, recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| proto(e.to_string()))?;
        let bytes = request.encode().map_err(|e| proto(e.to_string()))?;
        let framed =
            frame::encode(&bytes, frame::HARD_MAX_FRAME).map_err(|e| proto(e.to_string()))?;
        send.write_all(&framed)
            .await
            .map_err(|e| proto(e.to_string()))?;
        send.finish().map_err(|e| proto(e.to_string()))?;
        Ok(recv)
    }

    /// Subscribes to arrivals: returns a stream to read [`Response::Event`]s from.
    pub async fn subscribe(&self) -> Result<Subscription, ClientError> {
        let proto = |e: String| ClientError::Protocol(e);
        let (mut send, recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| proto(e.to_string()))?;
        let bytes = Request::Subscribe
            .encode()
            .map_err(|e| proto(e.to_string()))?;
        let framed =
            frame::encode(&bytes, frame::HARD_MAX_FRAME).map_err(|e| proto(e.to_string()))?;
        send.write_all(&framed)
            .await
            .map_err(|e| proto(e.to_string()))?;
        let mut sub = Subscription {
            _send: send,
            recv,
            pending: None,
        };
        // Returns once the relay has the subscription in place, so nothing
        // that arrives after this call is missed.
        match sub.next().await? {
            Some(Response::Subscribed) => {}
            // A relay before the acknowledgement: its first event.
            Some(event @ Response::Event { .. }) => sub.pending = Some(event),
            Some(Response::Error { code, message }) => {
                return Err(proto(format!(
                    "the relay refused the subscription ({code:?}): {message}"
                )));
            }
            Some(other) => {
                return Err(proto(format!(
                    "unexpected answer to a subscription: {other:?}"
                )));
            }
            None => return Err(proto("the relay closed the subscription".into())),
        }
        Ok(sub)
    }

    /// Sends a [`Request::SubmitWait`]: the returned [`Answers`] give the
    /// submission's answer ([`Response::Submitted`] or an error), then, for
    /// a message the relay took, its status once every delivery is final
    /// or after `wait_ms`.
    pub async fn submit_wait(
        &self,
        submission: Submission,
        wait_ms: u64,
    ) -> Result<Answers, ClientError> {
        let request = Request::SubmitWait {
            submission,
            wait_ms,
        };
        match self.send_request(&request).await {
            Ok(recv) => Ok(Answers { recv }),
            Err(e) => Err(self.why(e)),
        }
    }

    /// Closes the connection.
    pub async fn close(self) {
        self.conn.close(0u32.into(), b"bye");
        self.endpoint.wait_idle().await;
    }
}

/// Arrivals after [`Client::subscribe`].
#[derive(Debug)]
pub struct Subscription {
    _send: quinn::SendStream,
    recv: quinn::RecvStream,
    /// An event read while waiting for the acknowledgement.
    pending: Option<Response>,
}

impl Subscription {
    /// The next event; `None` when the relay closed the stream.
    pub async fn next(&mut self) -> Result<Option<Response>, ClientError> {
        if let Some(event) = self.pending.take() {
            return Ok(Some(event));
        }
        next_response(&mut self.recv, "event").await
    }
}

/// The answers to [`Client::submit_wait`], in order.
#[derive(Debug)]
pub struct Answers {
    recv: quinn::RecvStream,
}

impl Answers {
    /// The next answer; `None` once the relay finished the stream (after
    /// a refusal, or after the status).
    pub async fn next(&mut self) -> Result<Option<Response>, ClientError> {
        next_response(&mut self.recv, "response").await
    }
}

/// The next frame of a stream that carries several answers, `what` naming
/// them in errors; `None` when the relay finished the stream.
async fn next_response(
    recv: &mut quinn::RecvStream,
    what: &str,
) -> Result<Option<Response>, ClientError> {
    let mut prefix = [0u8; frame::PREFIX_LEN];
    match recv.read_exact(&mut prefix).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(ClientError::Protocol(e.to_string())),
    }
    let len = frame::payload_len(prefix, MAX_RESPONSE)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let mut payload = vec![0u8; len];
    recv.read_exact(&mut payload)
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    Response::decode(&payload)
        .map(Some)
        .map_err(|e| ClientError::Protocol(format!("malformed {what}: {e}")))
}

async fn read_frame(recv: &mut quinn::RecvStream) -> Result<Vec<u8>, ClientError> {
    let proto = |e: String| ClientError::Protocol(e);
    let mut prefix = [0u8; frame::PREFIX_LEN];
    recv.read_exact(&mut prefix)
        .await
        .map_err(|e| proto(format!("no response: {e}")))?;
    let len = frame::payload_len(prefix, MAX_RESPONSE).map_err(|e| proto(e.to_string()))?;
    let mut payload = vec![0u8; len];
    recv.read_exact(&mut payload)
        .await
        .map_err(|e| proto(format!("truncated response: {e}")))?;
    Ok(payload)
}
