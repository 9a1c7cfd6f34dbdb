//! Expiry ahead, driven: the dates read at start (node certificate,
//! replaced when a renewed one is put in force; authority CA) and those of the roster in force (members' CAs, its
//! `issued_at`; replaced when a newer roster is put in force) and the message
//! keys' cover, the officer certificates this authority issued (`officers/`
//! of the authority directory, read again by the upkeep loop, those the CRL
//! in force revokes left out) and an earlier log key the relay still signs
//! with, as metrics gauges ([`ExpiryGauges`]), as the `/health/expiry` text, and as
//! the warnings [`crate::core::expiry`] says are due (logged by the upkeep
//! loop). Nothing here refuses or disconnects anything.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kurir_certs::Roster;
use kurir_certs::x509::CertInfo;
use kurir_proto::{AuthorityId, Timestamp};
use tracing::warn;

use crate::core::expiry::{Item, Level, Warnings, seconds_left};
use crate::core::keys::MessageKeys;
use crate::metrics::ExpiryGauges;

/// What is read from the authority at the moment: the message keys in
/// force and, while the relay signs with an earlier log key the roster
/// still allows, that key's `valid_until`.
pub(super) struct Live<'a> {
    pub(super) keys: &'a MessageKeys,
    pub(super) log_key_before: Option<Timestamp>,
}

/// An officer certificate this authority issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OfficerCert {
    serial: String,
    name: String,
    not_after: Timestamp,
}

/// The certificates in `dir` (`officers/<serial>.crt.pem`, as `kurir-certs
/// officer issue` keeps them) whose serial `revoked` does not hold. A
/// missing directory is no officer; a file that cannot be read is skipped
/// with a warning.
pub(super) fn read_officers(dir: &Path, revoked: &BTreeSet<String>) -> Vec<OfficerCert> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".crt.pem"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let info = kurir_certs::files::read_text(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                let mut certs = kurir_certs::x509::pem_certificates(&text)?;
                if certs.is_empty() {
                    return Err("no certificate in it".to_owned());
                }
                CertInfo::parse(&certs.swap_remove(0))
            });
        match info {
            Ok(info) if revoked.contains(&info.serial_hex()) => {}
            Ok(info) => out.push(OfficerCert {
                serial: info.serial_hex(),
                name: info.common_name.clone().unwrap_or_default(),
                not_after: info.not_after,
            }),
            Err(e) => warn!(file = %path.display(), error = %e,
                "cannot read an issued officer certificate; its expiry is not watched"),
        }
    }
    out
}

/// What expires when, and the warnings given.
pub(super) struct Expiry {
    /// Replaced when a renewed node certificate is put in force.
    node_certificate: Mutex<Option<Timestamp>>,
    authority_ca: Option<Timestamp>,
    roster: Mutex<RosterDates>,
    /// `officers/` of the authority directory.
    officers_dir: PathBuf,
    /// The officer certificates in it the CRL in force does not revoke.
    officers: Mutex<Vec<OfficerCert>>,
    warnings: Mutex<Warnings>,
}

/// The dates of the roster in force.
#[derive(Clone)]
struct RosterDates {
    member_cas: Vec<(AuthorityId, Timestamp)>,
    issued_at: Timestamp,
}

impl RosterDates {
    fn of(roster: &Roster) -> RosterDates {
        RosterDates {
            member_cas: roster
                .members()
                .iter()
                .filter_map(|m| Some((m.id.clone(), not_after(&m.tls_ca)?)))
                .collect(),
            issued_at: roster.body().issued_at,
        }
    }
}

fn not_after(der: &[u8]) -> Option<Timestamp> {
    CertInfo::parse(der).ok().map(|i| i.not_after)
}

/// The end of the newest message key valid at `now`, and whether another
/// held key takes over when it ends (or it has no end).
fn message_key(keys: &MessageKeys, now: Timestamp) -> Option<(Option<Timestamp>, bool)> {
    let windows = keys.windows();
    let current = windows
        .iter()
        .find(|w| w.valid_from <= now && w.valid_until.is_none_or(|u| now < u))?;
    let next = match current.valid_until {
        None => true,
        Some(end) => windows
            .iter()
            .any(|w| w.valid_from <= end && w.valid_until.is_none_or(|u| end < u)),
    };
    Some((current.valid_until, next))
}

impl Expiry {
    /// `node` and `ca` are DER certificates; `officers_dir` is read now
    /// (leaving out the serials `revoked`) and again on
    /// [`Expiry::refresh_officers`].
    pub(super) fn new(
        node: Option<&[u8]>,
        ca: &[u8],
        roster: &Roster,
        officers_dir: PathBuf,
        revoked: &BTreeSet<String>,
    ) -> Expiry {
        let officers = read_officers(&officers_dir, revoked);
        Expiry {
            node_certificate: Mutex::new(node.and_then(not_after)),
            authority_ca: not_after(ca),
            roster: Mutex::new(RosterDates::of(roster)),
            officers_dir,
            officers: Mutex::new(officers),
            warnings: Mutex::new(Warnings::default()),
        }
    }

    /// Reads the issued officer certificates again, leaving out the
    /// serials `revoked` (the CRL in force).
    pub(super) fn refresh_officers(&self, revoked: &BTreeSet<String>) {
        let officers = read_officers(&self.officers_dir, revoked);
        match self.officers.lock() {
            Ok(mut slot) => *slot = officers,
            Err(poisoned) => *poisoned.into_inner() = officers,
        }
    }

    fn officers(&self) -> Vec<OfficerCert> {
        match self.officers.lock() {
            Ok(o) => o.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Takes the dates of a newer roster put in force.
    pub(super) fn set_roster(&self, roster: &Roster) {
        let dates = RosterDates::of(roster);
        match self.roster.lock() {
            Ok(mut slot) => *slot = dates,
            Err(poisoned) => *poisoned.into_inner() = dates,
        }
    }

    /// Takes the end of a renewed node certificate put in force.
    pub(super) fn set_node_certificate(&self, not_after: Timestamp) {
        match self.node_certificate.lock() {
            Ok(mut slot) => *slot = Some(not_after),
            Err(poisoned) => *poisoned.into_inner() = Some(not_after),
        }
    }

    fn node_certificate(&self) -> Option<Timestamp> {
        match self.node_certificate.lock() {
            Ok(t) => *t,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    fn roster_dates(&self) -> RosterDates {
        match self.roster.lock() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Every item with its end.
    fn items(&self, live: &Live<'_>, now: Timestamp) -> Vec<(Item, Timestamp)> {
        let keys = live.keys;
        let mut items = Vec::new();
        if let Some(t) = self.node_certificate() {
            items.push((Item::NodeCertificate, t));
        }
        if let Some(t) = self.authority_ca {
            items.push((Item::AuthorityCa, t));
        }
        if let Some(t) = keys.last_valid_until(now) {
            items.push((Item::MessageKeys, t));
        }
        for (m, t) in self.roster_dates().member_cas {
            items.push((Item::MemberCa(m), t));
        }
        if let Some(t) = live.log_key_before {
            items.push((Item::LogKeyBefore, t));
        }
        for o in self.officers() {
            items.push((
                Item::OfficerCertificate {
                    serial: o.serial,
                    name: o.name,
                },
                o.not_after,
            ));
        }
        items
    }

    /// Logs the warnings due at `now` (once per threshold per item).
    pub(super) fn warn_due(&self, live: &Live<'_>, now: Timestamp) {
        let items = self.items(live, now);
        let Ok(mut warnings) = self.warnings.lock() else {
            return;
        };
        for w in warnings.due(&items, now) {
            let days = match w.level {
                Level::Within(d) => d.to_string(),
                Level::Expired => "expired".to_owned(),
            };
            warn!(item = %w.item, expires = %w.at, within_days = %days, "{w}");
        }
    }

    /// The gauges at `now`, for `/metrics`.
    pub(super) fn gauges(&self, live: &Live<'_>, now: Timestamp) -> ExpiryGauges {
        let key = message_key(live.keys, now);
        let dates = self.roster_dates();
        let items = [
            ("node_certificate", self.node_certificate()),
            ("authority_ca", self.authority_ca),
            ("message_key", key.and_then(|(end, _)| end)),
            ("log_key_before", live.log_key_before),
        ];
        ExpiryGauges {
            items: items
                .into_iter()
                .filter_map(|(name, at)| Some((name, seconds_left(at?, now))))
                .collect(),
            message_key_next: key.is_some_and(|(_, next)| next),
            member_cas: dates
                .member_cas
                .iter()
                .map(|(m, at)| (m.clone(), seconds_left(*at, now)))
                .collect(),
            roster_age: -seconds_left(dates.issued_at, now),
            officer_certs: self
                .officers()
                .into_iter()
                .map(|o| (o.serial, o.name, seconds_left(o.not_after, now)))
                .collect(),
        }
    }

    /// The `/health/expiry` text: one line per item, `ITEM EXPIRES DAYS_LEFT`.
    pub(super) fn detail(&self, live: &Live<'_>, now: Timestamp) -> String {
        let keys = live.keys;
        let mut out = String::new();
        let day = 24 * 60 * 60;
        let line = |out: &mut String, name: String, at: Timestamp| {
            let _ = writeln!(out, "{name} {at} {}", seconds_left(at, now).div_euclid(day));
        };
        if let Some(t) = self.node_certificate() {
            line(&mut out, "node_certificate".into(), t);
        }
        if let Some(t) = self.authority_ca {
            line(&mut out, "authority_ca".into(), t);
        }
        match message_key(keys, now) {
            Some((Some(t), _)) => line(&mut out, "message_key".into(), t),
            Some((None, _)) => {
                let _ = writeln!(out, "message_key never -");
            }
            None => {
                let _ = writeln!(out, "message_key none_valid -");
            }
        }
        if let Some(t) = live.log_key_before {
            line(&mut out, "log_key_before".into(), t);
        }
        let dates = self.roster_dates();
        for (m, t) in &dates.member_cas {
            line(&mut out, format!("member_ca:{m}"), *t);
        }
        for o in self.officers() {
            line(
                &mut out,
                format!("officer_certificate:{}", o.serial),
                o.not_after,
            );
        }
        let _ = writeln!(
            out,
            "roster_issued {} {}",
            dates.issued_at,
            (-seconds_left(dates.issued_at, now)).div_euclid(day)
        );
        out
    }
}
