//! Crash points: named code points where the crash suite aborts the relay.
//!
//! [`hit`] does nothing unless the crate is built with the `crashpoints`
//! feature (only `kurir-test-relay`, the crash suite's child relay, is).
//! With it, `KURIR_CRASHPOINT=NAME:N` in the environment makes the `N`th
//! call of `hit(NAME)` in the process call [`std::process::abort`]: no
//! destructors, no flush, as close to `kill -9` at that line as a process
//! gets. Without the variable every call is a no-op.
//!
//! The points, in the order a message meets them:
//!
//! | name | where |
//! |------|-------|
//! | `inbound.before_commit` | a parcel from a peer checked, before the store commit |
//! | `inbound.after_commit` | stored (durable), before the receipt is written to the stream |
//! | `outbound.receipt_received` | the sender holds a verified receipt, before storing it |
//! | `outbound.receipt_stored` | the sender stored the receipt |
//! | `store.before_flush` | the writer applied a batch (its groups synced to the commit journal, then applied to sled; a small group only synced), before its full flush if it takes one |
//! | `store.after_flush` | the batch is on disk, before its callers are answered |
//! | `store.before_apply` | a small group's callers answered from its synced journal record, before its writes are applied to sled |

/// Every crash point, for tests that visit them all.
pub const POINTS: [&str; 7] = [
    "inbound.before_commit",
    "inbound.after_commit",
    "outbound.receipt_received",
    "outbound.receipt_stored",
    "store.before_flush",
    "store.after_flush",
    "store.before_apply",
];

/// Whether this build has crash points (the `crashpoints` feature).
pub const ENABLED: bool = cfg!(feature = "crashpoints");

/// The environment variable that arms one crash point: `NAME:N`.
pub const ENV: &str = "KURIR_CRASHPOINT";

/// Aborts the process on the armed hit of `name`; otherwise does nothing.
#[cfg(not(feature = "crashpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Aborts the process on the armed hit of `name`; otherwise does nothing.
#[cfg(feature = "crashpoints")]
pub fn hit(name: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let armed = ARMED.get_or_init(|| {
        let value = std::env::var(ENV).ok()?;
        let (point, n) = value.rsplit_once(':')?;
        Some((point.to_owned(), n.parse().ok()?))
    });
    if let Some((point, n)) = armed
        && point == name
        && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        eprintln!("crash point {name}: hit {n}, aborting");
        std::process::abort();
    }
}
