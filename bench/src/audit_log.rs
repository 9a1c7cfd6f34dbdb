//! `--mode audit`: audit-log appends per second with checkpointing on.
//!
//! Opens a relay store in a temporary directory (the relay's own store
//! code: group commit, flush and fsync as configured), appends M entries,
//! one per commit as the relay's events do, from W concurrent writers,
//! while a checkpoint is signed every `--checkpoint-ms`. Then proves
//! inclusion of entries spread over the log against the newest checkpoint,
//! as a relay does when a peer asks for the proofs of its receipts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kurir_proto::audit::{Entry, Record};
use kurir_proto::checkpoint::SignedCheckpoint;
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::{MessageId, Timestamp};
use kurir_relay::core::pacing::Cover;
use kurir_relay::store::{Durability, Store};
use serde::Serialize;

use crate::load::Percentiles;

/// What one audit run measured.
#[derive(Debug, Serialize)]
pub(crate) struct AuditResult {
    /// Entries appended (after the warm-up).
    pub entries: usize,
    /// Concurrent writers.
    pub window: usize,
    /// The store's durability.
    pub durability: String,
    /// Entries per second.
    pub entries_per_sec: f64,
    /// Commit latency (submit to durable), milliseconds.
    pub commit_ms: Percentiles,
    /// The checkpoint interval.
    pub checkpoint_ms: u64,
    /// Checkpoints signed during the run.
    pub checkpoints: u64,
    /// Time to sign and store one checkpoint (through the writer), ms.
    pub checkpoint_sign_ms: Percentiles,
    /// Inclusion proofs computed per second against the newest checkpoint.
    pub proofs_per_sec: f64,
}

/// Runs one measurement.
pub(crate) async fn run(
    entries: usize,
    window: usize,
    durability: &str,
    checkpoint_every: Duration,
) -> Result<AuditResult> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let durability_mode = match durability {
        "process-crash" => Durability::ProcessCrash,
        _ => Durability::PowerLoss,
    };
    // A directory of its own in it: the store refuses a data directory
    // others may read, and the temporary one is made with the umask's mode.
    let store =
        Store::open(&dir.path().join("data"), durability_mode).context("cannot open the store")?;
    let key = SigningKey::from_bytes(&[7; 32]);
    let origin = "kurir/RS.MUP".to_owned();

    // Checkpoints on a timer, as the relay's checkpoint loop does.
    let stop = Arc::new(AtomicBool::new(false));
    let signer = {
        let (store, stop, key, origin) = (store.clone(), stop.clone(), key.clone(), origin.clone());
        tokio::spawn(async move {
            let mut signed = 0u64;
            let mut took = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(checkpoint_every).await;
                let started = Instant::now();
                if let Ok(Some(_)) = store
                    .checkpoint(origin.clone(), key.clone(), Cover::Anything)
                    .await
                {
                    signed += 1;
                    took.push(started.elapsed());
                }
            }
            (signed, took)
        })
    };

    let next = Arc::new(AtomicU64::new(0));
    let total = entries as u64;
    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..window {
        let (store, next) = (store.clone(), next.clone());
        writers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let entry = Entry::new(
                    Timestamp(1_795_874_050_000 + n),
                    Record::Read {
                        msg_id: MessageId::new_v7(1_795_874_050_000 + n, [w as u8; 10]),
                        officer: "0a1b2c3d".into(),
                    },
                );
                let t = Instant::now();
                store.audit(vec![entry]).await?;
                latencies.push(t.elapsed());
            }
        });
    }
    let mut latencies = Vec::with_capacity(entries);
    while let Some(done) = writers.join_next().await {
        latencies.extend(done.context("a writer panicked")??);
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (checkpoints, mut sign_times) = signer.await.context("the checkpoint signer panicked")?;

    // A final checkpoint over everything, then proofs spread over the log.
    store
        .checkpoint(origin, key, Cover::Anything)
        .await
        .context("cannot sign the final checkpoint")?;
    let note = store
        .last_checkpoint()?
        .context("no checkpoint was signed")?;
    let size = SignedCheckpoint::parse(&note)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .checkpoint()
        .size();
    let indexes: Vec<u64> = (0..1000u64).map(|i| i * size / 1000).collect();
    let proving = Instant::now();
    let proofs = store.inclusion_proofs(&indexes, size)?;
    let proofs_per_sec = proofs.len() as f64 / proving.elapsed().as_secs_f64();
    // The proofs are real: check one against the checkpoint's root.
    if let (Some((index, path)), Ok(signed)) = (proofs.first(), SignedCheckpoint::parse(&note)) {
        let leaf = kurir_proto::merkle::leaf_hash(
            store
                .log_entries()?
                .get(*index as usize)
                .context("the proven entry is missing")?,
        );
        kurir_proto::merkle::verify_inclusion(
            &leaf,
            *index,
            size,
            path,
            signed.checkpoint().root(),
        )
        .map_err(|e| anyhow::anyhow!("an inclusion proof does not verify: {e}"))?;
    }
    store.close()?;
    Ok(AuditResult {
        entries,
        window,
        durability: durability.to_owned(),
        entries_per_sec: entries as f64 / elapsed.as_secs_f64(),
        commit_ms: Percentiles::of(&mut latencies),
        checkpoint_ms: checkpoint_every.as_millis() as u64,
        checkpoints,
        checkpoint_sign_ms: Percentiles::of(&mut sign_times),
        proofs_per_sec,
    })
}
