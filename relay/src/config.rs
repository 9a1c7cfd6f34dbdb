//! `relay.toml`: the relay's configuration, parsed strictly.
//!
//! Unknown keys are refused, and every error names the file and the key.
//! `docs/CONFIG.md` documents each key; `relay/relay.example.toml` is a
//! complete example.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use kurir_proto::{AuthorityId, DEFAULT_MAX_PARCEL};
use serde::Deserialize;

pub use crate::core::access::ReadPolicy;
use crate::core::deadline::{Agreement, Agreements};
use crate::core::delivery::RetryPolicy;
pub use crate::core::retention::Retention;
use crate::store::Durability;

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, or a value of the wrong type.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key and line.
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("invalid config file {path}: key `{key}`: {reason}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    identity: Identity,
    network: Network,
    roster: RosterSection,
    storage: Storage,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    retry: Retry,
    #[serde(default)]
    messages: Messages,
    #[serde(default)]
    logging: Logging,
    #[serde(default)]
    metrics: Metrics,
    #[serde(default)]
    audit: Audit,
    #[serde(default)]
    retention: RetentionSection,
    #[serde(default)]
    agreements: AgreementsSection,
    #[serde(default)]
    holidays: std::collections::HashMap<String, Vec<kurir_proto::Date>>,
    #[serde(default)]
    reads: ReadsSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadsSection {
    /// Kind → the roles that read its H2 bodies.
    #[serde(default)]
    h2: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionSection {
    received_days: Option<u16>,
    sent_days: Option<u16>,
    #[serde(default)]
    kinds: std::collections::HashMap<String, u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Audit {
    checkpoint_secs: u64,
}

impl Default for Audit {
    fn default() -> Self {
        Audit { checkpoint_secs: 5 }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgreementsSection {
    #[serde(default)]
    default: Agreement,
    #[serde(default)]
    pair: Vec<PairSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PairSection {
    between: Vec<String>,
    #[serde(default)]
    terms: Agreement,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    authority: String,
    authority_dir: PathBuf,
    #[serde(default = "default_crl_check_secs")]
    crl_check_secs: u64,
}

fn default_crl_check_secs() -> u64 {
    30
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Network {
    listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RosterSection {
    path: PathBuf,
    #[serde(default = "default_roster_check_secs")]
    check_secs: u64,
}

fn default_roster_check_secs() -> u64 {
    30
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Storage {
    data_dir: PathBuf,
    #[serde(default)]
    durability: Durability,
    #[serde(default = "default_min_free_mb")]
    min_free_mb: u64,
    #[serde(default = "default_flush_timeout_secs")]
    flush_timeout_secs: u64,
}

fn default_min_free_mb() -> u64 {
    crate::store::DEFAULT_MIN_FREE_MB
}

fn default_flush_timeout_secs() -> u64 {
    crate::store::DEFAULT_FLUSH_TIMEOUT.as_secs()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Limits {
    max_parcel_bytes: usize,
    max_streams_per_connection: u32,
    max_connections_per_peer: usize,
    max_connections_per_officer: usize,
    max_clock_skew_secs: u64,
    read_timeout_secs: u64,
    handshakes_before_retry: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_parcel_bytes: DEFAULT_MAX_PARCEL,
            max_streams_per_connection: 64,
            max_connections_per_peer: 4,
            max_connections_per_officer: 16,
            max_clock_skew_secs: 300,
            read_timeout_secs: 30,
            handshakes_before_retry: 64,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Retry {
    initial_secs: u64,
    max_secs: u64,
    max_in_flight_per_peer: usize,
}

impl Default for Retry {
    fn default() -> Self {
        let p = RetryPolicy::default();
        Retry {
            initial_secs: p.initial_ms / 1000,
            max_secs: p.max_ms / 1000,
            max_in_flight_per_peer: p.max_in_flight_per_peer,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Messages {
    default_expiry_days: u64,
    sign_in_batches: bool,
}

impl Default for Messages {
    fn default() -> Self {
        Messages {
            default_expiry_days: 30,
            sign_in_batches: true,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Logging {
    format: LogFormat,
    level: String,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metrics {
    listen: Option<String>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// This relay's authority.
    pub authority: AuthorityId,
    /// The authority directory made by `kurir-certs authority init` (the
    /// relay reads the node certificate and key, message keys, CA and CRL).
    pub authority_dir: PathBuf,
    /// How often the relay checks whether the CRL file changed (`[identity]
    /// crl_check_secs`); SIGHUP reads it at once.
    pub crl_check: std::time::Duration,
    /// UDP address for QUIC, peers and officers alike.
    pub listen: SocketAddr,
    /// The signed roster file.
    pub roster_path: PathBuf,
    /// How often the roster file is checked for a newer roster (`[roster]
    /// check_secs`); SIGHUP reads it at once.
    pub roster_check: std::time::Duration,
    /// Where the database lives.
    pub data_dir: PathBuf,
    /// How far a commit goes before it is acknowledged.
    pub durability: Durability,
    /// Free space (bytes) on the data dir's filesystem below which new
    /// work is refused (`[storage] min_free_mb`).
    pub min_free_bytes: u64,
    /// How long a commit may take before storage counts as not responding.
    pub flush_timeout: std::time::Duration,
    /// Largest parcel accepted or submitted, in bytes.
    pub max_parcel_bytes: usize,
    /// Concurrent streams one connection may open.
    pub max_streams_per_connection: u32,
    /// Concurrent connections one peer authority may hold.
    pub max_connections_per_peer: usize,
    /// Concurrent connections one officer certificate may hold.
    pub max_connections_per_officer: usize,
    /// How long a peer or officer may take to send one whole frame on a
    /// stream it opened (a parcel, a request) before the stream is stopped.
    pub read_timeout: std::time::Duration,
    /// Handshakes in progress above which a new connection must first
    /// prove its address with a QUIC Retry (0: always).
    pub handshakes_before_retry: usize,
    /// How far in the future `created_at` may be, in ms.
    pub max_clock_skew_ms: u64,
    /// Retry and in-flight limits.
    pub retry: RetryPolicy,
    /// Expiry of submitted messages that do not set one, in ms.
    pub default_expiry_ms: u64,
    /// Whether the envelopes of submissions that share a group commit are
    /// signed together (PROTOCOL.md §6.1); `false`: each alone.
    pub sign_in_batches: bool,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (`tracing` env-filter syntax).
    pub log_level: String,
    /// Where to serve Prometheus metrics and `/health`, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Readmission time limits per pair of authorities, and public holidays.
    pub agreements: Agreements,
    /// How often a checkpoint of the audit log is signed (when it grew), in ms.
    pub checkpoint_interval_ms: u64,
    /// When message bodies are erased.
    pub retention: Retention,
    /// Who reads H2 bodies (`[reads]`; [`crate::core::access`]).
    pub reads: ReadPolicy,
}

const DAY_MS: u64 = 86_400_000;

impl RelayConfig {
    /// Reads and checks a config file. Relative paths in it are taken
    /// relative to the file's directory.
    pub fn load(path: &Path) -> Result<RelayConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Checks config text; `path` is used in errors and to resolve relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<RelayConfig, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let value = |key, reason: String| ConfigError::Value {
            path: path.to_owned(),
            key,
            reason,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };

        let authority = AuthorityId::parse(&file.identity.authority)
            .map_err(|e| value("identity.authority", e.to_string()))?;
        let listen = file.network.listen.parse().map_err(|_| {
            value(
                "network.listen",
                format!(
                    "{:?} is not an address with a port, e.g. \"0.0.0.0:7443\"",
                    file.network.listen
                ),
            )
        })?;
        let metrics_listen = file
            .metrics
            .listen
            .map(|s| {
                s.parse().map_err(|_| {
                    value(
                        "metrics.listen",
                        format!("{s:?} is not an address with a port, e.g. \"127.0.0.1:9464\""),
                    )
                })
            })
            .transpose()?;
        let l = &file.limits;
        if l.max_parcel_bytes == 0 || l.max_parcel_bytes > kurir_proto::frame::HARD_MAX_FRAME {
            return Err(value(
                "limits.max_parcel_bytes",
                format!(
                    "must be between 1 and {} (64 MiB)",
                    kurir_proto::frame::HARD_MAX_FRAME
                ),
            ));
        }
        if l.max_streams_per_connection == 0 {
            return Err(value(
                "limits.max_streams_per_connection",
                "must be at least 1".into(),
            ));
        }
        if l.max_connections_per_peer == 0 {
            return Err(value(
                "limits.max_connections_per_peer",
                "must be at least 1".into(),
            ));
        }
        if l.max_connections_per_officer == 0 {
            return Err(value(
                "limits.max_connections_per_officer",
                "must be at least 1".into(),
            ));
        }
        if l.read_timeout_secs == 0 || l.read_timeout_secs > 3600 {
            return Err(value(
                "limits.read_timeout_secs",
                "must be between 1 and 3600".into(),
            ));
        }
        let r = &file.retry;
        if r.initial_secs == 0 || r.max_secs < r.initial_secs {
            return Err(value(
                "retry.max_secs",
                "retry.initial_secs must be at least 1 and retry.max_secs at least as large".into(),
            ));
        }
        if r.max_in_flight_per_peer == 0 {
            return Err(value(
                "retry.max_in_flight_per_peer",
                "must be at least 1".into(),
            ));
        }
        if file.messages.default_expiry_days == 0 || file.messages.default_expiry_days > 3650 {
            return Err(value(
                "messages.default_expiry_days",
                "must be between 1 and 3650".into(),
            ));
        }
        if tracing_subscriber_level_ok(&file.logging.level).is_err() {
            return Err(value(
                "logging.level",
                format!(
                    "{:?} is not a log filter such as \"info\" or \"kurir_relay=debug,info\"",
                    file.logging.level
                ),
            ));
        }
        let mut agreements = Agreements {
            default: file.agreements.default,
            ..Agreements::default()
        };
        for (i, pair) in file.agreements.pair.into_iter().enumerate() {
            let ids = pair
                .between
                .iter()
                .map(|s| AuthorityId::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| value("agreements.pair.between", format!("entry {}: {e}", i + 1)))?;
            let [a, b] = <[AuthorityId; 2]>::try_from(ids).map_err(|_| {
                value(
                    "agreements.pair.between",
                    format!("entry {}: name exactly two authorities", i + 1),
                )
            })?;
            let key = if a <= b { (a, b) } else { (b, a) };
            if agreements.pairs.insert(key, pair.terms).is_some() {
                return Err(value(
                    "agreements.pair.between",
                    format!("entry {}: this pair already has an agreement", i + 1),
                ));
            }
        }
        for (country, days) in file.holidays {
            if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(value(
                    "holidays",
                    format!("{country:?} is not an ISO 3166-1 alpha-2 country code such as \"RS\""),
                ));
            }
            agreements
                .holidays
                .insert(country, days.into_iter().collect());
        }
        let st = &file.storage;
        if st.min_free_mb > 1024 * 1024 {
            return Err(value(
                "storage.min_free_mb",
                "must be at most 1048576 (1 TiB); 0 turns the reserve off".into(),
            ));
        }
        if st.flush_timeout_secs == 0 || st.flush_timeout_secs > 3600 {
            return Err(value(
                "storage.flush_timeout_secs",
                "must be between 1 and 3600".into(),
            ));
        }
        if file.identity.crl_check_secs == 0 || file.identity.crl_check_secs > 3600 {
            return Err(value(
                "identity.crl_check_secs",
                "must be between 1 and 3600 seconds (a revoked officer is refused within this \
                 time)"
                    .into(),
            ));
        }
        if file.roster.check_secs == 0 || file.roster.check_secs > 3600 {
            return Err(value(
                "roster.check_secs",
                "must be between 1 and 3600 seconds (a roster put in the file is taken within \
                 this time)"
                    .into(),
            ));
        }
        if file.audit.checkpoint_secs == 0 || file.audit.checkpoint_secs > 3600 {
            return Err(value(
                "audit.checkpoint_secs",
                "must be between 1 and 3600".into(),
            ));
        }
        let mut retention = Retention {
            received_days: file.retention.received_days,
            sent_days: file.retention.sent_days,
            ..Retention::default()
        };
        for (kind, days) in file.retention.kinds {
            let k = kind
                .parse()
                .map_err(|e: kurir_proto::message::UnknownKind| {
                    value("retention.kinds", e.to_string())
                })?;
            retention.kinds.insert(k, days);
        }
        let reads = read_policy(file.reads).map_err(|reason| value("reads.h2", reason))?;
        Ok(RelayConfig {
            reads,
            retention,
            checkpoint_interval_ms: file.audit.checkpoint_secs * 1000,
            agreements,
            authority,
            authority_dir: resolve(&file.identity.authority_dir),
            crl_check: std::time::Duration::from_secs(file.identity.crl_check_secs),
            listen,
            roster_path: resolve(&file.roster.path),
            roster_check: std::time::Duration::from_secs(file.roster.check_secs),
            data_dir: resolve(&file.storage.data_dir),
            durability: file.storage.durability,
            min_free_bytes: file.storage.min_free_mb * 1024 * 1024,
            flush_timeout: std::time::Duration::from_secs(file.storage.flush_timeout_secs),
            max_parcel_bytes: l.max_parcel_bytes,
            max_streams_per_connection: l.max_streams_per_connection,
            max_connections_per_peer: l.max_connections_per_peer,
            max_connections_per_officer: l.max_connections_per_officer,
            read_timeout: std::time::Duration::from_secs(l.read_timeout_secs),
            handshakes_before_retry: l.handshakes_before_retry,
            max_clock_skew_ms: l.max_clock_skew_secs.saturating_mul(1000),
            retry: RetryPolicy {
                initial_ms: r.initial_secs.saturating_mul(1000),
                max_ms: r.max_secs.saturating_mul(1000),
                max_in_flight_per_peer: r.max_in_flight_per_peer,
            },
            default_expiry_ms: file.messages.default_expiry_days.saturating_mul(DAY_MS),
            sign_in_batches: file.messages.sign_in_batches,
            log_format: file.logging.format,
            log_level: file.logging.level,
            metrics_listen,
        })
    }
}

/// `[reads.h2]`: every kind a message kind, every role a role, no role
/// twice.
fn read_policy(section: ReadsSection) -> Result<ReadPolicy, String> {
    let mut policy = ReadPolicy::default();
    for (kind, roles) in section.h2 {
        let k: kurir_proto::MessageKind = kind
            .parse()
            .map_err(|e: kurir_proto::message::UnknownKind| e.to_string())?;
        let mut set = std::collections::BTreeSet::new();
        for role in roles {
            let r: kurir_proto::Role = role.parse().map_err(|e| format!("{kind:?}: {e}"))?;
            if !set.insert(r) {
                return Err(format!("{kind:?}: the role {r} is named twice"));
            }
        }
        policy.h2.insert(k, set);
    }
    Ok(policy)
}

/// A log filter is a comma-separated list of `level` or `target=level`.
fn tracing_subscriber_level_ok(filter: &str) -> Result<(), ()> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let ok = !filter.trim().is_empty()
        && filter.split(',').all(|part| {
            let level = part.rsplit('=').next().unwrap_or_default().trim();
            LEVELS.contains(&level.to_ascii_lowercase().as_str())
        });
    if ok { Ok(()) } else { Err(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[identity]
authority = "RS.MUP"
authority_dir = "authority"

[network]
listen = "127.0.0.1:7443"

[roster]
path = "/etc/kurir/roster.cbor"

[storage]
data_dir = "data"
"#;

    fn parse(text: &str) -> Result<RelayConfig, ConfigError> {
        RelayConfig::parse(text, Path::new("/etc/kurir/relay.toml"))
    }

    #[test]
    fn minimal_config_gets_defaults_and_resolves_paths() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.authority.as_str(), "RS.MUP");
        assert_eq!(c.authority_dir, Path::new("/etc/kurir/authority"));
        assert_eq!(c.data_dir, Path::new("/etc/kurir/data"));
        assert_eq!(c.roster_path, Path::new("/etc/kurir/roster.cbor"));
        assert_eq!(c.durability, Durability::PowerLoss);
        assert_eq!(c.max_parcel_bytes, DEFAULT_MAX_PARCEL);
        assert_eq!(c.retry, RetryPolicy::default());
        assert_eq!(c.default_expiry_ms, 30 * DAY_MS);
        assert_eq!(c.metrics_listen, None);
        assert_eq!(c.min_free_bytes, 256 * 1024 * 1024);
        assert_eq!(c.flush_timeout, std::time::Duration::from_secs(30));
        assert_eq!(c.read_timeout, std::time::Duration::from_secs(30));
        assert_eq!(c.max_connections_per_officer, 16);
        assert_eq!(c.handshakes_before_retry, 64);
        assert!(c.sign_in_batches);
        let c = parse(&format!("{MINIMAL}\n[messages]\nsign_in_batches = false\n")).unwrap();
        assert!(!c.sign_in_batches);
    }

    #[test]
    fn connection_and_stream_bounds() {
        let c = parse(&format!(
            "{MINIMAL}\n[limits]\nread_timeout_secs = 2\nmax_connections_per_officer = 3\n\
             handshakes_before_retry = 0\n"
        ))
        .unwrap();
        assert_eq!(c.read_timeout, std::time::Duration::from_secs(2));
        assert_eq!(c.max_connections_per_officer, 3);
        assert_eq!(c.handshakes_before_retry, 0);
        for bad in [
            "read_timeout_secs = 0",
            "read_timeout_secs = 3601",
            "max_connections_per_officer = 0",
        ] {
            let err = parse(&format!("{MINIMAL}\n[limits]\n{bad}\n")).unwrap_err();
            let key = bad.split(' ').next().unwrap();
            assert!(err.to_string().contains(&format!("limits.{key}")), "{err}");
        }
    }

    #[test]
    fn storage_reserve_and_flush_bound() {
        let c = parse(&MINIMAL.replace(
            "data_dir = \"data\"",
            "data_dir = \"data\"\nmin_free_mb = 0\nflush_timeout_secs = 2",
        ))
        .unwrap();
        assert_eq!(c.min_free_bytes, 0);
        assert_eq!(c.flush_timeout, std::time::Duration::from_secs(2));
        let err = parse(&MINIMAL.replace(
            "data_dir = \"data\"",
            "data_dir = \"data\"\nflush_timeout_secs = 0",
        ))
        .unwrap_err();
        assert!(
            err.to_string().contains("storage.flush_timeout_secs"),
            "{err}"
        );
    }

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../relay.example.toml");
        let c = RelayConfig::parse(text, Path::new("relay.example.toml")).unwrap();
        assert!(c.metrics_listen.is_some());
    }

    #[test]
    fn agreements_and_holidays() {
        let text = format!(
            "{MINIMAL}\n[agreements.default]\nreply_days_standard = 12\n\n\
             [[agreements.pair]]\nbetween = [\"RS.MUP\", \"BA.SPS\"]\n\
             [agreements.pair.terms]\nreply_working_days_accelerated = 3\n\n\
             [holidays]\nBA = [\"2027-03-01\"]\n"
        );
        let c = parse(&text).unwrap();
        let (rs, ba, me) = (
            AuthorityId::parse("RS.MUP").unwrap(),
            AuthorityId::parse("BA.SPS").unwrap(),
            AuthorityId::parse("ME.UP").unwrap(),
        );
        assert_eq!(c.agreements.default.reply_days_standard, 12);
        let pair = c.agreements.between(&ba, &rs);
        assert_eq!(pair.reply_working_days_accelerated, 3);
        assert_eq!(
            pair.reply_days_standard, 10,
            "unset terms take the built-in default"
        );
        assert_eq!(c.agreements.between(&rs, &me).reply_days_standard, 12);
        assert!(
            !c.agreements
                .is_working_day("BA", kurir_proto::Date::parse("2027-03-01").unwrap())
        );

        let err = parse(&format!(
            "{MINIMAL}\n[[agreements.pair]]\nbetween = [\"RS.MUP\"]\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("agreements.pair.between"), "{err}");
        let err = parse(&format!("{MINIMAL}\n[holidays]\nSerbia = []\n")).unwrap_err();
        assert!(err.to_string().contains("holidays"), "{err}");
        let err = parse(&format!("{MINIMAL}\n[holidays]\nRS = [\"2027-02-30\"]\n")).unwrap_err();
        assert!(err.to_string().contains("2027-02-30"), "{err}");
    }

    #[test]
    fn retention_rules() {
        use kurir_proto::message::MessageKind;
        let c = parse(&format!(
            "{MINIMAL}\n[retention]\nreceived_days = 90\n[retention.kinds]\n\"operational-notice\" = 30\n"
        ))
        .unwrap();
        let r = &c.retention;
        assert_eq!(
            r.days_for(MessageKind::OperationalNotice, true).unwrap().0,
            30
        );
        assert_eq!(
            r.days_for(MessageKind::ReadmissionRequest, true).unwrap().0,
            90
        );
        assert_eq!(
            r.days_for(MessageKind::ReadmissionRequest, false),
            None,
            "sent: kept"
        );
        assert!(
            parse(MINIMAL)
                .unwrap()
                .retention
                .days_for(MessageKind::OperationalNotice, true)
                .is_none()
        );
        let err = parse(&format!("{MINIMAL}\n[retention.kinds]\nnotice = 3\n")).unwrap_err();
        assert!(err.to_string().contains("retention.kinds"), "{err}");
    }

    #[test]
    fn reads_h2_per_kind() {
        use kurir_proto::{MessageKind, Role};
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.reads, ReadPolicy::default());
        assert_eq!(
            c.reads.h2_roles(MessageKind::ReadmissionRequest),
            [Role::Officer].into()
        );
        let c = parse(&format!(
            "{MINIMAL}\n[reads.h2]\n\"readmission-request\" = [\"officer\", \"admin\"]\n\
             \"operational-notice\" = []\n"
        ))
        .unwrap();
        assert_eq!(
            c.reads.h2_roles(MessageKind::ReadmissionRequest),
            [Role::Officer, Role::Admin].into()
        );
        assert!(c.reads.h2_roles(MessageKind::OperationalNotice).is_empty());
        for (bad, says) in [
            ("notice = [\"officer\"]", "notice"),
            ("\"operational-notice\" = [\"root\"]", "root"),
            (
                "\"operational-notice\" = [\"officer\", \"officer\"]",
                "named twice",
            ),
        ] {
            let err = parse(&format!("{MINIMAL}\n[reads.h2]\n{bad}\n")).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("reads.h2") && msg.contains(says), "{msg}");
        }
        let err = parse(&format!("{MINIMAL}\n[reads]\nh3 = 1\n")).unwrap_err();
        assert!(err.to_string().contains("h3"), "{err}");
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let err = parse(&format!("{MINIMAL}\n[limits]\nmax_parcel_byte = 5\n")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/etc/kurir/relay.toml"), "{msg}");
        assert!(msg.contains("max_parcel_byte"), "{msg}");

        let err = parse(&MINIMAL.replace("RS.MUP", "serbia")).unwrap_err();
        assert!(err.to_string().contains("identity.authority"), "{err}");

        let err = parse(&MINIMAL.replace("127.0.0.1:7443", "localhost")).unwrap_err();
        assert!(err.to_string().contains("network.listen"), "{err}");

        let err = parse(&format!(
            "{MINIMAL}\n[retry]\ninitial_secs = 10\nmax_secs = 5\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("retry.max_secs"), "{err}");

        let err = parse(&format!("{MINIMAL}\n[logging]\nlevel = \"loud\"\n")).unwrap_err();
        assert!(err.to_string().contains("logging.level"), "{err}");

        let err = parse(&MINIMAL.replace("[storage]", "[storag]")).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");

        let err = RelayConfig::load(Path::new("/nonexistent/relay.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/relay.toml"), "{err}");
    }
}
