//! Fetching a message and verifying it against the roster, independently of
//! the relay: the one implementation the CLI (`kurir show`, replies), the
//! demo and the test harness share.

use kurir_certs::Roster;
use kurir_proto::api::{ErasedBody, Request, Response, Summary};
use kurir_proto::message::Message;
use kurir_proto::{Digest, Header, KeyId, MessageId, OpenError, Parcel, verify, verify_envelope};

use crate::{Client, ClientError};

/// A fetched message whose signature (and body, unless erased) was checked
/// against the roster.
#[derive(Debug)]
pub struct Fetched {
    /// The relay's summary.
    pub summary: Summary,
    /// The signed header, its signature verified against the roster.
    pub header: Header,
    /// The key that signed it.
    pub kid: KeyId,
    /// The envelope digest.
    pub envelope_digest: Digest,
    /// The body, its digest checked; `None` once erased, or when only the
    /// envelope was asked for.
    pub message: Option<Message>,
    /// Only the envelope was asked for and sent.
    pub envelope_only: bool,
    /// When and why the body was erased.
    pub erased: Option<ErasedBody>,
    /// The receipt this relay issued (received messages).
    pub receipt: Option<Vec<u8>>,
}

/// Why a message could not be fetched and verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request did not get an answer.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The relay answered with something other than the message (an
    /// error response: not found, forbidden, ...).
    #[error("the relay answered without the message: {0:?}")]
    Refused(Box<Response>),
    /// The relay sent bytes that are not a parcel.
    #[error("the relay sent a damaged parcel for {msg_id}: {source}")]
    Damaged {
        /// The message asked for.
        msg_id: MessageId,
        /// What is wrong with the bytes.
        source: OpenError,
    },
    /// The message does not verify against the roster: do not act on it.
    #[error("message {msg_id} does NOT verify against the roster: {source}")]
    DoesNotVerify {
        /// The message asked for.
        msg_id: MessageId,
        /// The check that failed.
        source: OpenError,
    },
}

impl Client {
    /// Fetches `msg_id` and verifies it against `roster`: the whole parcel
    /// (signature, body digest, body), or the envelope alone once the body
    /// was erased. Every body fetch is a read the relay logs; a role or
    /// handling level that does not allow it is [`FetchError::Refused`].
    pub async fn fetch_verified(
        &self,
        roster: &Roster,
        msg_id: MessageId,
    ) -> Result<Fetched, FetchError> {
        self.fetch_checked(roster, msg_id, false).await
    }

    /// Fetches the envelope of `msg_id` alone (open to every role, no read
    /// of the body) and verifies its signature against `roster`.
    pub async fn fetch_envelope_verified(
        &self,
        roster: &Roster,
        msg_id: MessageId,
    ) -> Result<Fetched, FetchError> {
        self.fetch_checked(roster, msg_id, true).await
    }

    async fn fetch_checked(
        &self,
        roster: &Roster,
        msg_id: MessageId,
        envelope_only: bool,
    ) -> Result<Fetched, FetchError> {
        let request = Request::Fetch {
            msg_id,
            envelope_only,
        };
        let (summary, parcel, receipt, erased, only) = match self.request(&request).await? {
            Response::Message {
                summary,
                parcel,
                receipt,
                erased,
                envelope_only,
            } => (summary, parcel, receipt, erased, envelope_only),
            other => return Err(FetchError::Refused(Box::new(other))),
        };
        let does_not_verify = |source| FetchError::DoesNotVerify { msg_id, source };
        if erased.is_some() || only || envelope_only {
            let env = verify_envelope(&parcel, roster).map_err(does_not_verify)?;
            return Ok(Fetched {
                summary,
                header: env.header,
                kid: env.kid,
                envelope_digest: env.envelope_digest,
                message: None,
                envelope_only: only || envelope_only,
                erased,
                receipt,
            });
        }
        let parcel =
            Parcel::from_bytes(&parcel).map_err(|source| FetchError::Damaged { msg_id, source })?;
        let verified = verify(parcel, roster).map_err(does_not_verify)?;
        Ok(Fetched {
            summary,
            header: verified.header,
            kid: verified.kid,
            envelope_digest: verified.envelope_digest,
            message: Some(verified.message),
            envelope_only: false,
            erased: None,
            receipt,
        })
    }
}
