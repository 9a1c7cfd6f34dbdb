//! `--mode federation`: N relays on loopback, idle and then exchanging
//! notices all-to-all.
//!
//! Founds N authorities `XA.R01` … (one roster, signed as the demo signs
//! it), starts each relay as a child process, and connects one officer per
//! relay. Then:
//!
//! 1. **Settle** for two checkpoint intervals (the start's own checkpoint
//!    and its cosigning are not idle cost).
//! 2. **Idle** for `idle` seconds while nobody sends: per relay, the CPU
//!    seconds, the audit entries and data-dir bytes added, the
//!    `peer_checkpoint` entries (checkpoints of peers it cosigned:
//!    cosignatures served), its own new checkpoints and the cosignature
//!    lines its checkpoints gained (cosignatures obtained).
//! 3. **All-to-all**: every relay's officer sends `messages` notices, the
//!    k-th to the (k mod (N−1))-th other member after itself, with
//!    `window` in flight, and follows each until its relay holds the
//!    receiver's signed receipt (`delivered`); every `verify_every`-th
//!    receipt is also verified against the roster here. Messages/s and CPU
//!    over the sending; the counts over it and two checkpoint intervals
//!    more (the traffic's checkpoints are signed and cosigned after it).
//!
//! The counts come from each relay's audit export (an auditor's
//! connection, `AuditExport`), taken at the start and end of each phase
//! (the export writes no entry); the CPU from `/proc`, read just before
//! and after each phase, outside the exports.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kurir_certs::Roster;
use kurir_client::Client;
use kurir_proto::AuthorityId;
use kurir_proto::api::{Request, Response};
use kurir_proto::audit::{Bundle, Entry, Event};
use kurir_proto::checkpoint::Note;
use serde::Serialize;

use crate::load::{Bed, BedConfig, authority, body_of, deliver, dir_size};
use crate::procs::RelayProc;

/// How long one message may take before the run is called failed.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(120);

/// What a federation run does.
#[derive(Debug, Clone)]
pub(crate) struct FedSpec {
    /// Relays (at least 2).
    pub(crate) relays: usize,
    /// Notices each relay sends.
    pub(crate) messages: usize,
    /// Body size in bytes.
    pub(crate) size: usize,
    /// Requests in flight per relay (at most 48: one officer connection).
    pub(crate) window: usize,
    /// Seconds of the idle phase.
    pub(crate) idle: Duration,
    /// The relays' `audit.checkpoint_secs`.
    pub(crate) checkpoint_secs: u64,
    /// The relays' `storage.durability`.
    pub(crate) durability: String,
    /// Verify every Nth receipt in the load generator (0: none).
    pub(crate) verify_every: usize,
    /// Keep the federation directory.
    pub(crate) keep: bool,
}

/// Counts of one relay's audit log and data dir at one moment.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct LogCounts {
    /// Audit entries.
    pub(crate) entries: u64,
    /// `peer_checkpoint` entries: peers' checkpoints this relay cosigned.
    pub(crate) cosigned_for_peers: u64,
    /// This relay's own signed checkpoints.
    pub(crate) checkpoints: u64,
    /// Cosignature lines (signatures other than its own) on its checkpoints.
    pub(crate) cosignatures_held: u64,
    /// Bytes in the data directory.
    pub(crate) data_bytes: u64,
}

impl LogCounts {
    fn minus(self, before: LogCounts) -> LogCounts {
        LogCounts {
            entries: self.entries.saturating_sub(before.entries),
            cosigned_for_peers: self
                .cosigned_for_peers
                .saturating_sub(before.cosigned_for_peers),
            checkpoints: self.checkpoints.saturating_sub(before.checkpoints),
            cosignatures_held: self
                .cosignatures_held
                .saturating_sub(before.cosignatures_held),
            // The data dir may shrink (sled compacts): the signed growth
            // is in [`FedRelay`].
            data_bytes: self.data_bytes.saturating_sub(before.data_bytes),
        }
    }
}

/// One relay's figures.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FedRelay {
    pub(crate) authority: String,
    /// CPU seconds during the idle phase.
    pub(crate) idle_cpu_secs: f64,
    /// What the idle phase added.
    pub(crate) idle: LogCounts,
    /// Data-dir growth during the idle phase, signed (sled may compact).
    pub(crate) idle_data_bytes: i64,
    /// CPU seconds during the all-to-all phase.
    pub(crate) busy_cpu_secs: f64,
    /// CPU seconds in the two checkpoint intervals after the last
    /// delivery (signing and cosigning the traffic's checkpoints).
    pub(crate) tail_cpu_secs: f64,
    /// What the all-to-all phase and those two intervals added.
    pub(crate) busy: LogCounts,
    /// Data-dir growth during the all-to-all phase, signed.
    pub(crate) busy_data_bytes: i64,
    /// Notices this relay's officer sent (all delivered).
    pub(crate) sent: usize,
    /// Peak RSS, MiB.
    pub(crate) peak_rss_mib: f64,
}

/// What a federation run measured (`federation` line in `--json`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FedResult {
    pub(crate) relays: usize,
    pub(crate) messages_per_relay: usize,
    pub(crate) body_bytes: usize,
    pub(crate) window: usize,
    pub(crate) checkpoint_secs: u64,
    pub(crate) idle_secs: f64,
    /// Messages sent and followed to a stored receipt, all relays.
    pub(crate) delivered: usize,
    /// Receipts verified against the roster by the load generator.
    pub(crate) receipts_verified: usize,
    pub(crate) busy_secs: f64,
    pub(crate) msgs_per_sec: f64,
    /// CPU of all relays during the all-to-all phase, per message, ms.
    pub(crate) cpu_ms_per_msg: f64,
    /// Per relay, averaged over the relays, extrapolated to one hour from
    /// the idle phase: CPU seconds, audit entries, data-dir bytes,
    /// cosignatures served (`peer_checkpoint` entries).
    pub(crate) idle_cpu_secs_per_relay_hour: f64,
    pub(crate) idle_entries_per_relay_hour: f64,
    pub(crate) idle_data_bytes_per_relay_hour: f64,
    pub(crate) idle_cosigned_per_relay_hour: f64,
    /// During the all-to-all phase and the two checkpoint intervals after
    /// it, averaged over the relays: checkpoints signed, cosignatures served
    /// and held.
    pub(crate) busy_checkpoints_per_relay: f64,
    pub(crate) busy_cosigned_per_relay: f64,
    pub(crate) busy_cosignatures_held_per_relay: f64,
    pub(crate) per_relay: Vec<FedRelay>,
}

/// The member ids of a federation of `n`: `XA.R01`, `XA.R02`, ….
pub(crate) fn member_ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("XA.R{i:02}")).collect()
}

/// The audit counts of one relay, from its audit export.
async fn counts(auditor: &Client, bed: &Bed, who: &str) -> Result<LogCounts> {
    let bundle = match auditor.request(&Request::AuditExport).await? {
        Response::AuditBundle { bundle } => bundle,
        other => bail!("{who}: audit export failed: {other:?}"),
    };
    let bundle =
        Bundle::decode(&bundle).with_context(|| format!("{who}: unreadable audit bundle"))?;
    let mut c = LogCounts {
        entries: bundle.entries.len() as u64,
        checkpoints: bundle.checkpoints.len() as u64,
        data_bytes: dir_size(&bed.data_dir(who)),
        ..LogCounts::default()
    };
    for e in &bundle.entries {
        let e = Entry::decode(&e.0).with_context(|| format!("{who}: unreadable entry"))?;
        c.cosigned_for_peers += u64::from(e.event == Event::PeerCheckpoint);
    }
    for n in &bundle.checkpoints {
        let note = Note::parse(&n.0).with_context(|| format!("{who}: unreadable checkpoint"))?;
        // The first line is the relay's own signature.
        c.cosignatures_held += note.signatures().len().saturating_sub(1) as u64;
    }
    Ok(c)
}

async fn all_counts(auditors: &[Client], bed: &Bed, ids: &[String]) -> Result<Vec<LogCounts>> {
    let mut out = Vec::with_capacity(ids.len());
    for (a, id) in auditors.iter().zip(ids) {
        out.push(counts(a, bed, id).await?);
    }
    Ok(out)
}

fn cpu_all(procs: &[RelayProc]) -> Result<Vec<f64>> {
    procs.iter().map(RelayProc::cpu_secs).collect()
}

/// One relay's sending: `count` notices round the other members.
struct Sender {
    officer: Client,
    me: usize,
    members: Vec<AuthorityId>,
    body: Vec<u8>,
    roster: Roster,
    verify_every: usize,
}

impl Sender {
    /// Sends notice `k` and waits until it is delivered; true if its
    /// receipt was verified here.
    async fn one(&self, k: usize) -> Result<bool> {
        let n = self.members.len();
        let to = &self.members[(self.me + 1 + k % (n - 1)) % n];
        let followed = deliver(&self.officer, &self.body, to, MESSAGE_TIMEOUT).await?;
        let verify = self.verify_every > 0 && k.is_multiple_of(self.verify_every);
        if verify {
            followed.check_receipt(&self.roster, to)?;
        }
        Ok(verify)
    }
}

/// Every relay sends `count` with `window` in flight; returns (delivered,
/// verified).
async fn all_to_all(
    senders: Vec<Arc<Sender>>,
    count: usize,
    window: usize,
) -> Result<(usize, usize)> {
    let mut workers = tokio::task::JoinSet::new();
    for s in senders {
        let next = Arc::new(AtomicUsize::new(0));
        for _ in 0..window.max(1) {
            let (s, next) = (s.clone(), next.clone());
            workers.spawn(async move {
                let (mut done, mut verified) = (0, 0);
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= count {
                        return Ok::<_, anyhow::Error>((done, verified));
                    }
                    verified += usize::from(s.one(k).await?);
                    done += 1;
                }
            });
        }
    }
    let (mut delivered, mut verified) = (0, 0);
    while let Some(r) = workers.join_next().await {
        let (d, v) = r??;
        delivered += d;
        verified += v;
    }
    Ok((delivered, verified))
}

fn signed_bytes(after: u64, before: u64) -> i64 {
    i64::try_from(after).unwrap_or(i64::MAX) - i64::try_from(before).unwrap_or(i64::MAX)
}

/// One federation run on a fresh federation of `spec.relays`.
pub(crate) async fn run(spec: &FedSpec) -> Result<FedResult> {
    if spec.relays < 2 {
        bail!("a federation needs at least 2 relays, not {}", spec.relays);
    }
    if !(1..=48).contains(&spec.window) {
        bail!(
            "-w {} per relay: 1 to 48 (one officer connection per relay)",
            spec.window
        );
    }
    let body = body_of(spec.size)?;
    let ids = member_ids(spec.relays);
    let members: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), format!("Relay {}", i + 1)))
        .collect();
    let config = BedConfig {
        durability: spec.durability.clone(),
        max_parcel: kurir_proto::DEFAULT_MAX_PARCEL.max(body.len() + (1 << 20)),
        relay_in_flight: None,
        checkpoint_secs: Some(spec.checkpoint_secs),
    };
    let bed = Bed::found_members(&members, &config, spec.keep)?;
    let mut procs = Vec::with_capacity(ids.len());
    for id in &ids {
        procs.push(bed.start(id)?);
    }
    let mut officers = Vec::with_capacity(ids.len());
    let mut auditors = Vec::with_capacity(ids.len());
    for id in &ids {
        officers.push(bed.officer(id).await?);
        auditors.push(bed.auditor(id).await?);
    }
    tokio::time::sleep(Duration::from_secs(2 * spec.checkpoint_secs)).await;

    // Idle.
    let c0 = all_counts(&auditors, &bed, &ids).await?;
    let cpu0 = cpu_all(&procs)?;
    let idle_started = Instant::now();
    tokio::time::sleep(spec.idle).await;
    let cpu1 = cpu_all(&procs)?;
    let idle_secs = idle_started.elapsed().as_secs_f64();
    let c1 = all_counts(&auditors, &bed, &ids).await?;

    // All-to-all.
    let members_ids = ids
        .iter()
        .map(|i| authority(i))
        .collect::<Result<Vec<_>>>()?;
    let senders: Vec<_> = officers
        .into_iter()
        .enumerate()
        .map(|(me, officer)| {
            Arc::new(Sender {
                officer,
                me,
                members: members_ids.clone(),
                body: body.clone(),
                roster: bed.roster.clone(),
                verify_every: spec.verify_every,
            })
        })
        .collect();
    let cpu1b = cpu_all(&procs)?;
    let busy_started = Instant::now();
    let (delivered, verified) = all_to_all(senders, spec.messages, spec.window).await?;
    let busy_secs = busy_started.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
    let cpu2 = cpu_all(&procs)?;
    // The checkpoints of the traffic are signed and cosigned after it.
    tokio::time::sleep(Duration::from_secs(2 * spec.checkpoint_secs)).await;
    let cpu3 = cpu_all(&procs)?;
    let c2 = all_counts(&auditors, &bed, &ids).await?;

    let mut per_relay = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        per_relay.push(FedRelay {
            authority: id.clone(),
            idle_cpu_secs: cpu1[i] - cpu0[i],
            idle: c1[i].minus(c0[i]),
            idle_data_bytes: signed_bytes(c1[i].data_bytes, c0[i].data_bytes),
            busy_cpu_secs: cpu2[i] - cpu1b[i],
            tail_cpu_secs: cpu3[i] - cpu2[i],
            busy: c2[i].minus(c1[i]),
            busy_data_bytes: signed_bytes(c2[i].data_bytes, c1[i].data_bytes),
            sent: spec.messages,
            peak_rss_mib: procs[i].memory()?.peak_rss_mib,
        });
    }
    for a in auditors {
        a.close().await;
    }
    for p in procs {
        p.stop()?;
    }
    let n = spec.relays as f64;
    let hour = 3600.0 / idle_secs.max(f64::MIN_POSITIVE);
    let mean = |f: &dyn Fn(&FedRelay) -> f64| per_relay.iter().map(f).sum::<f64>() / n;
    let busy_cpu: f64 = per_relay.iter().map(|r| r.busy_cpu_secs).sum();
    Ok(FedResult {
        relays: spec.relays,
        messages_per_relay: spec.messages,
        body_bytes: body.len(),
        window: spec.window,
        checkpoint_secs: spec.checkpoint_secs,
        idle_secs,
        delivered,
        receipts_verified: verified,
        busy_secs,
        msgs_per_sec: delivered as f64 / busy_secs,
        cpu_ms_per_msg: busy_cpu * 1000.0 / delivered.max(1) as f64,
        idle_cpu_secs_per_relay_hour: mean(&|r| r.idle_cpu_secs) * hour,
        idle_entries_per_relay_hour: mean(&|r| r.idle.entries as f64) * hour,
        idle_data_bytes_per_relay_hour: mean(&|r| r.idle_data_bytes as f64) * hour,
        idle_cosigned_per_relay_hour: mean(&|r| r.idle.cosigned_for_peers as f64) * hour,
        busy_checkpoints_per_relay: mean(&|r| r.busy.checkpoints as f64),
        busy_cosigned_per_relay: mean(&|r| r.busy.cosigned_for_peers as f64),
        busy_cosignatures_held_per_relay: mean(&|r| r.busy.cosignatures_held as f64),
        per_relay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_are_authority_ids() {
        let ids = member_ids(16);
        assert_eq!((ids[0].as_str(), ids[15].as_str()), ("XA.R01", "XA.R16"));
        for id in &ids {
            authority(id).unwrap();
        }
    }

    #[test]
    fn growth_is_counted_per_field() {
        let before = LogCounts {
            entries: 10,
            cosigned_for_peers: 2,
            checkpoints: 1,
            cosignatures_held: 3,
            data_bytes: 100,
        };
        let after = LogCounts {
            entries: 15,
            cosigned_for_peers: 4,
            checkpoints: 2,
            cosignatures_held: 6,
            data_bytes: 90,
        };
        let d = after.minus(before);
        assert_eq!(
            (
                d.entries,
                d.cosigned_for_peers,
                d.checkpoints,
                d.cosignatures_held
            ),
            (5, 2, 1, 3)
        );
        assert_eq!(signed_bytes(90, 100), -10);
    }
}
