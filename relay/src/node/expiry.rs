//! Expiry ahead, driven: the dates read at start (node certificate,
//! replaced when a renewed one is put in force; authority CA) and those of the roster in force (members' CAs, its
//! `issued_at`; replaced when a newer roster is put in force) and the message
//! keys' cover, as metrics gauges ([`ExpiryGauges`]), as the `/health/expiry` text, and as
//! the warnings [`crate::core::expiry`] says are due (logged by the upkeep
//! loop). Nothing here refuses or disconnects anything.

use std::fmt::Write as _;
use std::sync::Mutex;

use kurir_certs::Roster;
use kurir_certs::x509::CertInfo;
use kurir_proto::{AuthorityId, Timestamp};
use tracing::warn;

use crate::core::expiry::{Item, Level, Warnings, seconds_left};
use crate::core::keys::MessageKeys;
use crate::metrics::ExpiryGauges;

/// What expires when, and the warnings given.
pub(super) struct Expiry {
    /// Replaced when a renewed node certificate is put in force.
    node_certificate: Mutex<Option<Timestamp>>,
    authority_ca: Option<Timestamp>,
    roster: Mutex<RosterDates>,
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
    /// `node` and `ca` are DER certificates.
    pub(super) fn new(node: Option<&[u8]>, ca: &[u8], roster: &Roster) -> Expiry {
        Expiry {
            node_certificate: Mutex::new(node.and_then(not_after)),
            authority_ca: not_after(ca),
            roster: Mutex::new(RosterDates::of(roster)),
            warnings: Mutex::new(Warnings::default()),
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
    fn items(&self, keys: &MessageKeys, now: Timestamp) -> Vec<(Item, Timestamp)> {
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
        items
    }

    /// Logs the warnings due at `now` (once per threshold per item).
    pub(super) fn warn_due(&self, keys: &MessageKeys, now: Timestamp) {
        let items = self.items(keys, now);
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
    pub(super) fn gauges(&self, keys: &MessageKeys, now: Timestamp) -> ExpiryGauges {
        let key = message_key(keys, now);
        let dates = self.roster_dates();
        let items = [
            ("node_certificate", self.node_certificate()),
            ("authority_ca", self.authority_ca),
            ("message_key", key.and_then(|(end, _)| end)),
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
        }
    }

    /// The `/health/expiry` text: one line per item, `ITEM EXPIRES DAYS_LEFT`.
    pub(super) fn detail(&self, keys: &MessageKeys, now: Timestamp) -> String {
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
        let dates = self.roster_dates();
        for (m, t) in &dates.member_cas {
            line(&mut out, format!("member_ca:{m}"), *t);
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
