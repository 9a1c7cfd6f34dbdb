//! Points in time and calendar dates.
//!
//! `proto` has no clock: every "now" comes from the caller as a [`Timestamp`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch, UTC. On the wire: a CBOR unsigned integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(self) -> u64 {
        self.0
    }

    /// This point plus `millis`, saturating at the end of time.
    pub fn plus_millis(self, millis: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(millis))
    }

    /// The UTC calendar date of this point.
    pub fn date(self) -> Date {
        let days = (self.0 / 86_400_000) as i64;
        Date::from_days_since_epoch(days)
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-28T13:54:10.123Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = self.date();
        let ms_of_day = self.0 % 86_400_000;
        let (h, m, s, ms) = (
            ms_of_day / 3_600_000,
            ms_of_day / 60_000 % 60,
            ms_of_day / 1000 % 60,
            ms_of_day % 1000,
        );
        write!(f, "{date}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
    }
}

/// Why a time was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid time {input:?}: expected RFC 3339 in UTC, YYYY-MM-DDTHH:MM:SS[.fff]Z, e.g. \
     2026-11-28T13:54:10.123Z"
)]
pub struct TimeError {
    /// The input, cut to 40 characters.
    pub input: String,
}

/// RFC 3339 in UTC, the form [`Timestamp`] displays: `YYYY-MM-DDTHH:MM:SS`,
/// an optional fraction (its first three digits are the milliseconds; `T`
/// and `Z` in either case), then `Z`. Days before 1970 are refused.
impl FromStr for Timestamp {
    type Err = TimeError;
    fn from_str(text: &str) -> Result<Timestamp, TimeError> {
        let bad = || TimeError {
            input: text.chars().take(40).collect(),
        };
        let (date, rest) = text.split_once(['T', 't']).ok_or_else(bad)?;
        let days = u64::try_from(Date::parse(date).map_err(|_| bad())?.days_since_epoch())
            .map_err(|_| bad())?;
        let rest = rest
            .strip_suffix('Z')
            .or_else(|| rest.strip_suffix('z'))
            .ok_or_else(bad)?;
        let (hms, frac) = match rest.split_once('.') {
            Some((hms, frac)) => (hms, Some(frac)),
            None => (rest, None),
        };
        let two = |p: &str| {
            (p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u64>().ok())
                .flatten()
        };
        let parts: Vec<u64> = hms
            .split(':')
            .map(two)
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        let [h, m, sec] = parts.as_slice() else {
            return Err(bad());
        };
        if *h > 23 || *m > 59 || *sec > 59 {
            return Err(bad());
        }
        let ms = match frac {
            None => 0,
            Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
                let three: String = f.chars().chain("00".chars()).take(3).collect();
                three.parse::<u64>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        Ok(Timestamp(
            days * 86_400_000 + ((h * 60 + m) * 60 + sec) * 1000 + ms,
        ))
    }
}

/// Why a date was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid date {input:?}: {reason} (expected YYYY-MM-DD, e.g. 1990-04-17)")]
pub struct DateError {
    /// The input, cut to 32 characters.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A calendar date (proleptic Gregorian), years 1 to 9999.
///
/// On the wire and as text: `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// 1970-01-01.
    pub const EPOCH: Date = Date {
        year: 1970,
        month: 1,
        day: 1,
    };

    /// Builds a date, checking that it exists.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Date, DateError> {
        let err = |reason| DateError {
            input: format!("{year:04}-{month:02}-{day:02}"),
            reason,
        };
        if !(1..=9999).contains(&year) {
            return Err(err("the year must be between 0001 and 9999"));
        }
        if !(1..=12).contains(&month) {
            return Err(err("the month must be between 01 and 12"));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(err("that day does not exist in that month"));
        }
        Ok(Date { year, month, day })
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Date, DateError> {
        let err = |reason| DateError {
            input: s.chars().take(32).collect(),
            reason,
        };
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err("wrong shape"));
        }
        let num = |r: std::ops::Range<usize>| -> Result<u16, DateError> {
            let part = &s[r];
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err("only digits may stand between the dashes"));
            }
            part.parse().map_err(|_| err("not a number"))
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        Date::new(y, m as u8, d as u8).map_err(|e| err(e.reason))
    }

    /// The year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The day of the month, 1 to 31.
    pub fn day(self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (negative before it).
    pub fn days_since_epoch(self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` days after 1970-01-01, clamped to years 1..=9999.
    pub fn from_days_since_epoch(days: i64) -> Date {
        // Howard Hinnant's civil_from_days.
        let z = days.clamp(-719_162, 2_932_896) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
        Date { year, month, day }
    }

    /// The date `days` later (or earlier, if negative).
    pub fn add_days(self, days: i64) -> Date {
        Date::from_days_since_epoch(self.days_since_epoch() + days)
    }

    /// ISO weekday: 1 = Monday … 7 = Sunday.
    pub fn iso_weekday(self) -> u8 {
        // 1970-01-01 was a Thursday (4).
        ((self.days_since_epoch() + 3).rem_euclid(7) + 1) as u8
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        _ => 28,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for Date {
    type Err = DateError;
    fn from_str(s: &str) -> Result<Date, DateError> {
        Date::parse(s)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        Date::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
impl proptest::arbitrary::Arbitrary for Date {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Date>;
    fn arbitrary_with((): ()) -> Self::Strategy {
        use proptest::strategy::Strategy;
        (-719_162i64..=2_932_896)
            .prop_map(Date::from_days_since_epoch)
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_they_display() {
        for ms in [0, 1, 999, 1_764_338_050_123, 253_402_300_799_999] {
            let t = Timestamp(ms);
            assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
        }
        let t: Timestamp = "2026-11-28t13:54:10.5z".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-28T13:54:10.500Z");
        let t: Timestamp = "2026-11-28T13:54:10.123456Z".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-28T13:54:10.123Z");
        assert_eq!(
            "2026-11-28T13:54:10Z"
                .parse::<Timestamp>()
                .unwrap()
                .to_string(),
            "2026-11-28T13:54:10.000Z"
        );
        for bad in [
            "2026-11-28",
            "2026-11-28T13:54:10",
            "2026-11-28T24:00:00Z",
            "2026-11-28T13:60:00Z",
            "2026-11-28T1:54:10Z",
            "2026-11-28T13:54:10.Z",
            "2026-11-28T13:54:10.1aZ",
            "2026-11-28T+1:54:10Z",
            "1969-12-31T23:59:59Z",
            "",
        ] {
            let err = bad.parse::<Timestamp>().unwrap_err();
            assert!(
                err.to_string().contains("YYYY-MM-DDTHH:MM:SS"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn dates_parse_and_check() {
        assert_eq!(Date::parse("2024-02-29").unwrap().to_string(), "2024-02-29");
        assert!(Date::parse("2023-02-29").is_err());
        assert!(Date::parse("1900-02-29").is_err());
        assert!(Date::parse("2000-02-29").is_ok());
        assert!(Date::parse("2026-13-01").is_err());
        assert!(Date::parse("2026-1-01").is_err());
        assert!(Date::parse("2026-+1-01").is_err());
        assert!(Date::parse("0000-01-01").is_err());
    }

    #[test]
    fn day_arithmetic() {
        let d = Date::parse("1970-01-01").unwrap();
        assert_eq!(d.days_since_epoch(), 0);
        assert_eq!(d.iso_weekday(), 4);
        let d = Date::parse("2026-11-28").unwrap();
        assert_eq!(d.iso_weekday(), 6, "a Saturday");
        assert_eq!(d.add_days(34).to_string(), "2027-01-01");
        assert_eq!(d.add_days(-365 - 366 - 365).to_string(), "2023-11-28");
        for days in [-719_162, -1, 0, 59, 60, 10_957, 2_932_896] {
            assert_eq!(Date::from_days_since_epoch(days).days_since_epoch(), days);
        }
    }

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_795_874_050_123).to_string(),
            "2026-11-28T13:54:10.123Z"
        );
    }
}
