//! The relay's metrics, in the OpenMetrics text format, and the HTTP
//! endpoint that serves them with the health checks.
//!
//! [`Metrics`] holds what the tasks count as they go (counters, failures by
//! peer and reason, the delivery-latency histogram) in a
//! [`prometheus_client`] registry. What is read at the moment of a scrape
//! (queue depth and age per peer, the store's health, the integrity alarm,
//! what expires when) comes in a [`Scrape`] and is encoded from a registry
//! built for that scrape, so a peer whose queue emptied or a value that
//! changed is never shown stale. `docs/OPERATIONS.md` ("Monitoring") lists
//! every metric with its type, labels and meaning.
//!
//! # Layout
//!
//! - this file: [`Metrics`], [`Scrape`], [`ExpiryGauges`], the failure
//!   reasons and the encoding;
//! - [`http`]: `GET /metrics`, `/health` and `/health/expiry` on hyper
//!   (HTTP/1.1 with keep-alive), bounded and shut down with the relay.

use kurir_proto::{AuthorityId, RejectCode, Timestamp};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::core::delivery::QueueStat;
use crate::store::{CommitCounts, StoreHealth};

pub mod http;

/// Delivery latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// The content type of `/metrics`: OpenMetrics text 1.0.0, which Prometheus
/// asks for first and parses.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why a delivery attempt failed without a final answer; it is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptFailure {
    /// The parcel could not be read from the store.
    Store,
    /// No connection to the peer (unreachable, handshake, TLS).
    Connect,
    /// The stream failed or the answer was unreadable or too large.
    Exchange,
    /// No answer within the receipt timeout.
    Timeout,
    /// An answer that does not verify (signature, ids, digest).
    BadReceipt,
    /// The peer refused it for now (a transient rejection code).
    RejectedForNow(RejectCode),
}

impl AttemptFailure {
    /// The `reason` label, and the `code` label (empty but for rejections).
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            AttemptFailure::Store => ("store", ""),
            AttemptFailure::Connect => ("connect", ""),
            AttemptFailure::Exchange => ("exchange", ""),
            AttemptFailure::Timeout => ("timeout", ""),
            AttemptFailure::BadReceipt => ("bad_receipt", ""),
            AttemptFailure::RejectedForNow(code) => ("rejected", code.as_str()),
        }
    }
}

/// Why a delivery failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalFailure<'a> {
    /// Not delivered before the message expired.
    Expired,
    /// The peer refused it with a signed rejection carrying this code.
    Rejected(&'a str),
    /// The roster in force no longer lists the peer.
    NotAMember,
}

/// The labels of the failure counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    peer: String,
    reason: String,
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ItemLabel {
    item: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MemberLabel {
    member: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OfficerLabel {
    serial: String,
    name: String,
}

/// The relay's counters and histogram, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Messages submitted by officers.
    pub submitted: Counter,
    /// Deliveries confirmed by a verified receipt.
    pub delivered: Counter,
    /// Deliveries rejected or expired (also counted by peer and reason).
    pub failed: Counter,
    /// Delivery attempts that read their parcel from the store (it was not
    /// kept in memory since its submission).
    pub parcel_reads: Counter,
    /// Messages received and stored.
    pub received: Counter,
    /// Duplicate deliveries answered with the original receipt.
    pub duplicates: Counter,
    /// Parcels refused with a signed rejection.
    pub refused_parcels: Counter,
    /// Parcels refused `id_conflict`: a message id received before from
    /// another sender or with another envelope (an alarm).
    pub id_conflicts: Counter,
    /// Connections refused (handshake, identity, limits).
    pub refused_connections: Counter,
    /// Rosters from peers refused (forged, older, or another roster of
    /// the same version), and peers holding another roster of our version:
    /// an alarm.
    pub roster_alarms: Counter,
    /// New connections asked to prove their address first (QUIC Retry),
    /// while many handshakes were in progress.
    pub retries: Counter,
    /// Peers' cosignatures showed this relay's audit log was rolled back.
    pub integrity_alarms: Counter,
    /// New work (submissions, parcels) refused: free space below the reserve.
    pub refused_low_space: Counter,
    /// Time from sending a parcel to holding its verified receipt, seconds.
    pub latency: Histogram,
    failures: Family<FailureLabels, Counter>,
    attempt_failures: Family<FailureLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let r = &mut registry;
        let submitted = counter(r, "kurir_submitted", "Messages submitted by officers");
        let delivered = counter(
            r,
            "kurir_delivered",
            "Deliveries confirmed by a verified receipt",
        );
        let failed = counter(
            r,
            "kurir_failed",
            "Deliveries rejected by the recipient or expired (by peer and reason: kurir_delivery_failures)",
        );
        let parcel_reads = counter(
            r,
            "kurir_parcel_reads",
            "Delivery attempts that read their parcel from the store (not kept in memory since its submission)",
        );
        let received = counter(r, "kurir_received", "Messages received and stored");
        let duplicates = counter(
            r,
            "kurir_duplicates",
            "Duplicate deliveries answered with the original receipt",
        );
        let refused_parcels = counter(
            r,
            "kurir_refused_parcels",
            "Parcels refused with a signed rejection",
        );
        let id_conflicts = counter(
            r,
            "kurir_id_conflicts",
            "Message ids claimed by a second sender or envelope (refused id_conflict)",
        );
        let refused_connections = counter(r, "kurir_refused_connections", "Connections refused");
        let roster_alarms = counter(
            r,
            "kurir_roster_alarms",
            "Rosters from peers refused (forged, older, conflicting) and peers holding another roster of our version",
        );
        let retries = counter(
            r,
            "kurir_retries",
            "New connections asked to prove their address first (QUIC Retry)",
        );
        let integrity_alarms = counter(
            r,
            "kurir_integrity_alarms",
            "Peers showed that this relay's audit log was rolled back",
        );
        let refused_low_space = counter(
            r,
            "kurir_refused_low_space",
            "New work refused because free space is below the store's reserve",
        );
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "kurir_delivery_failures",
            "Deliveries that failed for good, by peer and reason (expired; rejected, with the code)",
            failures.clone(),
        );
        let attempt_failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "kurir_delivery_attempt_failures",
            "Delivery attempts that failed and will be retried, by peer and reason \
             (store, connect, exchange, timeout, bad_receipt; rejected, with the transient code)",
            attempt_failures.clone(),
        );
        let latency = Histogram::new(BUCKETS);
        registry.register_with_unit(
            "kurir_delivery_latency",
            "From sending a parcel to holding its verified receipt",
            Unit::Seconds,
            latency.clone(),
        );
        Metrics {
            registry,
            submitted,
            delivered,
            failed,
            parcel_reads,
            received,
            duplicates,
            refused_parcels,
            id_conflicts,
            refused_connections,
            roster_alarms,
            retries,
            integrity_alarms,
            refused_low_space,
            latency,
            failures,
            attempt_failures,
        }
    }

    /// A delivery to `peer` failed for good: counted in `kurir_failed` and
    /// by peer and reason.
    pub fn delivery_failed(&self, peer: &AuthorityId, why: FinalFailure<'_>) {
        self.failed.inc();
        let (reason, code) = match why {
            FinalFailure::Expired => ("expired", ""),
            FinalFailure::Rejected(code) => ("rejected", code),
            FinalFailure::NotAMember => ("not_a_member", ""),
        };
        self.failures
            .get_or_create(&FailureLabels {
                peer: peer.to_string(),
                reason: reason.to_owned(),
                code: code.to_owned(),
            })
            .inc();
    }

    /// A delivery attempt to `peer` failed and will be retried.
    pub fn attempt_failed(&self, peer: &AuthorityId, why: AttemptFailure) {
        let (reason, code) = why.labels();
        self.attempt_failures
            .get_or_create(&FailureLabels {
                peer: peer.to_string(),
                reason: reason.to_owned(),
                code: code.to_owned(),
            })
            .inc();
    }

    /// The whole `/metrics` text: the counters, then what `scrape` read,
    /// then `# EOF`.
    pub fn render(&self, scrape: &Scrape) -> String {
        let mut out = String::new();
        // Writing to a String does not fail; an encoder error (a metric
        // that cannot be encoded) leaves what was written before it.
        let encoded = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &scrape.registry()))
            .and_then(|()| encode_eof(&mut out));
        if let Err(e) = encoded {
            tracing::error!(error = %e, "the metrics could not be encoded");
        }
        out
    }
}

/// What expires when, in seconds from the scrape (negative: expired).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpiryGauges {
    /// `node_certificate`, `authority_ca`, `message_key` (the newest valid
    /// one), each where it has an end.
    pub items: Vec<(&'static str, i64)>,
    /// A held key takes over when the newest valid message key ends (or it
    /// has no end).
    pub message_key_next: bool,
    /// The CA certificate the roster lists for each member.
    pub member_cas: Vec<(AuthorityId, i64)>,
    /// Seconds since the roster in force was issued.
    pub roster_age: i64,
    /// The officer certificates this authority issued that the CRL in
    /// force does not revoke: (serial, officer name, seconds left).
    pub officer_certs: Vec<(String, String, i64)>,
}

/// What is read at the moment of a scrape.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The moment of the scrape (the relay's clock).
    pub now: Timestamp,
    /// Open deliveries per peer.
    pub queues: Vec<QueueStat>,
    /// The store's health.
    pub storage: StoreHealth,
    /// The store's group commits and the sled rows they wrote, since the
    /// relay started.
    pub commits: CommitCounts,
    /// Peers' cosignatures showed this relay's audit log was rolled back.
    pub integrity_alarm: bool,
    /// What expires when.
    pub expiry: ExpiryGauges,
}

impl Scrape {
    /// A registry of this scrape's values.
    fn registry(&self) -> Registry {
        let mut r = Registry::default();
        let (low, stuck, health) = match self.storage {
            StoreHealth::Ok => (0, 0, 0),
            StoreHealth::Degraded(_) => (1, 0, 1),
            StoreHealth::Unhealthy(_) => (0, 1, 2),
        };
        r.register(
            "kurir_storage_health",
            "The store's health as /health reports it: 0 ok, 1 degraded (free space below the \
             reserve, new work refused), 2 unhealthy (a commit did not complete within its bound)",
            ConstGauge::new(health),
        );
        r.register(
            "kurir_storage_low_space",
            "1 while free space is below the reserve (new work refused)",
            ConstGauge::new(low),
        );
        r.register(
            "kurir_storage_not_responding",
            "1 while a commit has not completed within its bound",
            ConstGauge::new(stuck),
        );
        r.register(
            "kurir_store_commits",
            "Group commits the store made since the relay started (each one journal record and \
             fdatasync, or one transaction and a full flush)",
            ConstCounter::new(self.commits.commits),
        );
        r.register(
            "kurir_store_rows",
            "Database rows (inserts and removals) those group commits wrote, audit entries and \
             each group's number included: per message, what it costs the database",
            ConstCounter::new(self.commits.rows),
        );
        r.register(
            "kurir_integrity_alarm",
            "1 while peers' cosignatures show that this relay's audit log was rolled back",
            ConstGauge::new(i64::from(self.integrity_alarm)),
        );
        let depth = Family::<PeerLabel, Gauge>::default();
        let age = Family::<PeerLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        for q in &self.queues {
            let peer = PeerLabel {
                peer: q.peer.to_string(),
            };
            depth
                .get_or_create(&peer)
                .set(i64::try_from(q.depth).unwrap_or(i64::MAX));
            age.get_or_create(&peer)
                .set(q.oldest_age_millis(self.now) as f64 / 1000.0);
        }
        r.register(
            "kurir_queue_depth",
            "Deliveries not yet final (queued, sending or retrying), per recipient",
            depth,
        );
        r.register_with_unit(
            "kurir_queue_oldest_age",
            "How long the oldest delivery not yet final has waited since it was submitted, per recipient",
            Unit::Seconds,
            age,
        );
        let items = Family::<ItemLabel, Gauge>::default();
        for (item, left) in &self.expiry.items {
            items
                .get_or_create(&ItemLabel {
                    item: (*item).to_owned(),
                })
                .set(*left);
        }
        r.register_with_unit(
            "kurir_expiry",
            "Seconds until it expires (negative: expired): node_certificate, authority_ca, \
             message_key (the newest valid one), log_key_before (an earlier log key the relay \
             still signs with)",
            Unit::Seconds,
            items,
        );
        r.register(
            "kurir_message_key_next",
            "1 if a held key takes over when the newest valid message key ends (or it has no \
             end), 0 if not or none is valid",
            ConstGauge::new(i64::from(self.expiry.message_key_next)),
        );
        let members = Family::<MemberLabel, Gauge>::default();
        for (member, left) in &self.expiry.member_cas {
            members
                .get_or_create(&MemberLabel {
                    member: member.to_string(),
                })
                .set(*left);
        }
        r.register_with_unit(
            "kurir_member_ca_expiry",
            "Seconds until the CA certificate the roster lists for a member expires (negative: \
             expired, its connections are refused)",
            Unit::Seconds,
            members,
        );
        let officers = Family::<OfficerLabel, Gauge>::default();
        for (serial, name, left) in &self.expiry.officer_certs {
            officers
                .get_or_create(&OfficerLabel {
                    serial: serial.clone(),
                    name: name.clone(),
                })
                .set(*left);
        }
        r.register_with_unit(
            "kurir_officer_cert_expiry",
            "Seconds until an officer certificate this authority issued expires (negative: \
             expired), for each one the CRL in force does not revoke",
            Unit::Seconds,
            officers,
        );
        r.register_with_unit(
            "kurir_roster_age",
            "Seconds since the roster in force was issued",
            Unit::Seconds,
            ConstGauge::new(self.expiry.roster_age),
        );
        r
    }
}

#[cfg(test)]
mod tests;
