//! Micro benchmarks: seal and open an envelope, Merkle append and
//! checkpoint signing, Ed25519 signatures verified one by one and in batches
//! (as `kurir audit verify` does), one store commit with its audit entry
//! (alone and 64 sharing a group commit), with both durabilities.
//!
//! `cargo bench -p kurir-bench` (see docs/PERFORMANCE.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kurir_proto::audit::{Entry, Event, Record};
use kurir_proto::batch::{Batch, SignatureCheck, batched};
use kurir_proto::ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey, verify_batch};
use kurir_proto::message::{Handling, Message, MessageKind, OperationalNotice, Priority};
use kurir_proto::{
    AuthorityId, Checkpoint, CompactRange, Digest, Header, KeyRing, MessageId, OpenContext,
    PublicKey, SignedCheckpoint, Timestamp, open, seal,
};
use kurir_relay::core::delivery::{Delivery, DeliveryState};
use kurir_relay::store::{Durability, OutboundRecord, Store};

const T0: Timestamp = Timestamp(1_795_874_050_000);

fn id(s: &str) -> AuthorityId {
    AuthorityId::parse(s).unwrap()
}

fn notice(size: usize) -> Message {
    Message::OperationalNotice(OperationalNotice {
        subject: "kurir-bench".to_owned(),
        text: "x".repeat(size),
        priority: Priority::Normal,
        attachments: vec![],
    })
}

fn header(n: u64) -> Header {
    Header {
        id: MessageId::new_v7(T0.0 + n, [7; 10]),
        kind: MessageKind::OperationalNotice,
        from: id("RS.MUP"),
        to: vec![id("BA.SPS")],
        created_at: T0,
        expires_at: T0.plus_millis(86_400_000),
        case_id: None,
        in_reply_to: None,
        procedure: None,
        handling: Handling::H1,
        legal_basis: None,
        body_digest: Digest([0; 32]),
    }
}

fn envelope(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[42; 32]);
    let mut ring = KeyRing::new();
    ring.insert(PublicKey {
        authority: id("RS.MUP"),
        key: key.verifying_key(),
        valid_from: Timestamp(0),
        valid_until: None,
        revoked_at: None,
    });
    let me = id("BA.SPS");
    let ctx = OpenContext {
        me: &me,
        now: T0.plus_millis(1),
        max_parcel: 16 << 20,
    };
    let mut g = c.benchmark_group("envelope");
    for size in [1024usize, 1 << 20] {
        let message = notice(size);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("seal/{size}"), |b| {
            b.iter(|| seal(header(1), black_box(&message), [1; 32], &key).unwrap())
        });
        let bytes = seal(header(1), &message, [1; 32], &key).unwrap().to_bytes();
        g.bench_function(format!("open/{size}"), |b| {
            b.iter(|| open(black_box(&bytes), &ring, &ctx).unwrap())
        });
    }
    g.finish();
}

fn merkle(c: &mut Criterion) {
    let leaves: Vec<Digest> = (0..1024u32)
        .map(|i| kurir_proto::merkle::leaf_hash(&i.to_be_bytes()))
        .collect();
    let mut g = c.benchmark_group("merkle");
    g.throughput(Throughput::Elements(1));
    g.bench_function("append_to_1m", |b| {
        // A range of about a million leaves: the log of a busy year.
        let start = CompactRange::from_leaves(leaves.iter().cycle().take(1 << 20));
        b.iter_batched(
            || start.clone(),
            |mut r| r.append(black_box(leaves[3])),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("root_of_1m", |b| {
        let r = CompactRange::from_leaves(leaves.iter().cycle().take((1 << 20) - 1));
        b.iter(|| black_box(&r).root())
    });
    let key = SigningKey::from_bytes(&[9; 32]);
    g.bench_function("checkpoint_sign", |b| {
        let root = CompactRange::from_leaves(leaves.iter()).root();
        b.iter(|| {
            let cp = Checkpoint::new("kurir.example/RS.MUP", 1024, root).unwrap();
            SignedCheckpoint::sign(cp, "kurir.example/RS.MUP", &key).unwrap()
        })
    });
    g.finish();
}

/// `n` envelope signatures as an audit bundle holds them: the
/// `Sig_structure` of a sealed header, signed by one of four authorities.
fn envelope_signatures(n: usize) -> Vec<(VerifyingKey, Vec<u8>, Signature)> {
    let keys: Vec<SigningKey> = (1..=4u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect();
    (0..n)
        .map(|i| {
            let key = &keys[i % keys.len()];
            let parcel = seal(header(i as u64), &notice(64), [1; 32], key).unwrap();
            let tbs = kurir_proto::cose::sig_structure(&parcel.envelope).unwrap();
            let sig = key.sign(&tbs);
            (key.verifying_key(), tbs, sig)
        })
        .collect()
}

fn verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify");
    for n in [16usize, 64, 256] {
        let items = envelope_signatures(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("strict_x{n}"), |b| {
            b.iter(|| {
                for (key, m, sig) in black_box(&items) {
                    key.verify_strict(m, sig).unwrap();
                }
            })
        });
        // proto::batch: the per-item checks, then one verify_batch of n.
        g.bench_function(format!("batch_x{n}"), |b| {
            b.iter(|| {
                let mut batch = Batch::with_batch_size(n);
                for (i, (key, m, sig)) in black_box(&items).iter().enumerate() {
                    batch.push(i, *key, &m[..], *sig);
                }
                batch.verify().unwrap();
            })
        });
        if n == 64 {
            // verify_batch alone, without the per-item checks.
            let messages: Vec<&[u8]> = items.iter().map(|(_, m, _)| &m[..]).collect();
            let sigs: Vec<Signature> = items.iter().map(|(_, _, s)| *s).collect();
            let keys: Vec<VerifyingKey> = items.iter().map(|(k, _, _)| *k).collect();
            g.bench_function("dalek_batch_x64", |b| {
                b.iter(|| verify_batch(black_box(&messages), &sigs, &keys).unwrap())
            });
        }
        if n == 256 {
            // What `kurir audit verify` does: a verification that checks
            // each signature through a SignatureCheck, run by `batched`
            // (messages copied, batches of BATCH_SIZE).
            g.bench_function("batched_x256", |b| {
                b.iter(|| {
                    batched(|sigs: &dyn SignatureCheck| {
                        for (key, m, sig) in black_box(&items) {
                            sigs.check(key, m, sig)?;
                        }
                        Ok::<_, kurir_proto::ed25519_dalek::SignatureError>(())
                    })
                    .unwrap()
                })
            });
        }
    }
    g.finish();
}

/// The audit entry the relay appends in the same commit.
fn entry(event: Event, msg_id: MessageId) -> Vec<Entry> {
    let peer = id("BA.SPS");
    let record = match event {
        Event::Submitted => Record::Submitted {
            msg_id,
            envelope_digest: Digest([1; 32]),
            kind: MessageKind::OperationalNotice,
            to: vec![peer],
            case_id: None,
            officer: "0a1b2c3d".into(),
        },
        _ => Record::Delivered {
            msg_id,
            peer,
            receipt_digest: Digest([2; 32]),
        },
    };
    vec![Entry::new(T0, record)]
}

fn record(n: u64) -> (OutboundRecord, Vec<Delivery>) {
    // A real 1 KiB parcel: the store encrypts its body at rest.
    let key = SigningKey::from_bytes(&[5; 32]);
    let parcel = seal(header(n), &notice(1024), [1; 32], &key).unwrap();
    let msg_id = MessageId::new_v7(T0.0 + n, [7; 10]);
    let delivery = Delivery::queued(msg_id, id("BA.SPS"), T0.plus_millis(86_400_000));
    let record = OutboundRecord {
        msg_id,
        kind: MessageKind::OperationalNotice,
        to: vec![id("BA.SPS")],
        case_id: None,
        created_at: T0,
        expires_at: T0.plus_millis(86_400_000),
        submitted_by: "duty officer".to_owned(),
        parcel: parcel.to_bytes(),
        erased: None,
    };
    (record, vec![delivery])
}

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("store");
    g.sample_size(30);
    for (name, durability) in [
        ("power-loss", Durability::PowerLoss),
        ("process-crash", Durability::ProcessCrash),
    ] {
        // In the crate's directory, not /tmp: /tmp may be a RAM disk. The
        // data directory is one the store creates (private, 0700) inside
        // the temporary one, which the store would refuse as not private.
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let store = Store::open(&dir.path().join("data"), durability).unwrap();
        let n = AtomicU64::new(0);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("submit/{name}"), |b| {
            b.iter(|| {
                let (r, d) = record(n.fetch_add(1, Ordering::Relaxed));
                let audit = entry(Event::Submitted, r.msg_id);
                rt.block_on(store.submit(r, d, None, audit)).unwrap()
            })
        });
        g.bench_function(format!("update_delivery/{name}"), |b| {
            b.iter(|| {
                let (_, mut d) = record(n.fetch_add(1, Ordering::Relaxed));
                let mut d = d.remove(0);
                d.state = DeliveryState::Delivered {
                    at: T0,
                    receipt: vec![0xa5; 300],
                };
                let audit = entry(Event::Delivered, d.msg_id);
                rt.block_on(store.update_delivery(d, audit)).unwrap()
            })
        });
        // 64 callers at once: the writer's group commit shares one flush.
        g.throughput(Throughput::Elements(64));
        g.bench_function(format!("submit_64_concurrent/{name}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut tasks = tokio::task::JoinSet::new();
                    for _ in 0..64 {
                        let (r, d) = record(n.fetch_add(1, Ordering::Relaxed));
                        let s = store.clone();
                        let audit = entry(Event::Submitted, r.msg_id);
                        tasks.spawn(async move { s.submit(r, d, None, audit).await });
                    }
                    while let Some(done) = tasks.join_next().await {
                        done.unwrap().unwrap();
                    }
                })
            })
        });
        store.close().unwrap();
    }
    g.finish();
}

criterion_group!(benches, envelope, merkle, verify, store);
criterion_main!(benches);
