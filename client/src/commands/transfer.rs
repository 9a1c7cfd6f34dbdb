//! `kurir transfer propose|confirm`.

use anyhow::Result;
use kurir_proto::Timestamp;
use kurir_proto::message::{
    Escort, HandoverConfirmation, Message, MessageKind, TransferArrangement,
};

use super::case::{answered, ensure_open, lookup};
use super::readmission::{send_in_case, transport};
use super::{Ctx, Session, case_id, date, now};
use crate::cli::{ConfirmArgs, ProposeArgs, TransferCmd};
use crate::exit::usage;

/// `kurir transfer ...`
pub async fn run(ctx: &Ctx, s: &Session, cmd: TransferCmd) -> Result<()> {
    match cmd {
        TransferCmd::Propose(a) => propose(ctx, s, a).await,
        TransferCmd::Confirm(a) => confirm(ctx, s, a).await,
    }
}

/// Parses `NAME|ROLE|ORGANISATION`.
pub fn escort(s: &str) -> Result<Escort> {
    let parts: Vec<&str> = s.split('|').map(str::trim).collect();
    match parts.as_slice() {
        [name, role, org] if !name.is_empty() => Ok(Escort {
            name: (*name).to_owned(),
            role: (*role).to_owned(),
            organisation: (*org).to_owned(),
        }),
        _ => Err(usage(format!(
            "--escort {s:?}: expected \"NAME|ROLE|ORGANISATION\", e.g. \
             \"Marko Markovic|inspector|RS.MUP\""
        ))),
    }
}

/// Parses `now` or an RFC 3339 UTC time `YYYY-MM-DDTHH:MM[:SS]Z`.
pub fn instant(s: &str) -> Result<Timestamp> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(now());
    }
    let bad = || {
        usage(format!(
            "--at {s:?}: expected \"now\" or a UTC time like 2026-12-10T09:45:00Z"
        ))
    };
    let body = s.strip_suffix('Z').ok_or_else(bad)?;
    let (d, t) = body.split_once('T').ok_or_else(bad)?;
    let day = kurir_proto::Date::parse(d).map_err(|_| bad())?;
    let nums: Vec<u64> = t
        .split(':')
        .map(|p| p.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let (h, m, sec) = match nums.as_slice() {
        [h, m] => (*h, *m, 0),
        [h, m, s] => (*h, *m, *s),
        _ => return Err(bad()),
    };
    if h > 23 || m > 59 || sec > 59 {
        return Err(bad());
    }
    let days = u64::try_from(day.days_since_epoch()).map_err(|_| bad())?;
    Ok(Timestamp(
        days * 86_400_000 + h * 3_600_000 + m * 60_000 + sec * 1000,
    ))
}

async fn propose(ctx: &Ctx, s: &Session, a: ProposeArgs) -> Result<()> {
    let case = case_id(&a.target.case)?;
    let escorts = a
        .escort
        .iter()
        .map(|e| escort(e))
        .collect::<Result<Vec<_>>>()?;
    let arrangement = TransferArrangement {
        date: date(&a.date, "--date")?,
        time: a.time,
        border_crossing: a.crossing,
        transport: transport(a.transport),
        transport_details: a.transport_details,
        escorts,
    };
    // Check the arrangement before asking the relay anything.
    let message = Message::TransferArrangement(arrangement);
    message.validate().map_err(|e| usage(e.to_string()))?;
    let info = lookup(s, &case).await?;
    ensure_open(&info)?;
    let in_reply_to = answered(
        &info,
        a.target.in_reply_to.as_deref(),
        MessageKind::ReadmissionReply,
    )?;
    send_in_case(ctx, s, &info, message, in_reply_to, a.target.wait.secs).await
}

async fn confirm(ctx: &Ctx, s: &Session, a: ConfirmArgs) -> Result<()> {
    let case = case_id(&a.target.case)?;
    let handed_over_at = instant(&a.at)?;
    let info = lookup(s, &case).await?;
    ensure_open(&info)?;
    let in_reply_to = answered(
        &info,
        a.target.in_reply_to.as_deref(),
        MessageKind::TransferArrangement,
    )?;
    let message = Message::HandoverConfirmation(HandoverConfirmation {
        handed_over_at,
        place: a.place,
        received_by: a.received_by,
        remarks: a.remarks,
    });
    send_in_case(ctx, s, &info, message, in_reply_to, a.target.wait.secs).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handover_times_and_escorts_parse() {
        assert_eq!(
            instant("2026-11-28T13:54:10Z").unwrap(),
            Timestamp(1_795_874_050_000)
        );
        assert_eq!(
            instant("2026-11-28T13:54Z").unwrap(),
            Timestamp(1_795_874_040_000)
        );
        assert!(instant("2026-11-28 13:54").is_err());
        assert!(instant("2026-11-28T24:00Z").is_err());
        let e = escort("Marko Markovic | inspector | RS.MUP").unwrap();
        assert_eq!(e.role, "inspector");
        assert!(escort("Marko").is_err());
    }
}
