use std::collections::HashMap;

use kurir_proto::MessageId;

use super::*;

const NOW: Timestamp = Timestamp(1_795_874_050_000);

/// The exposition parsed: each sample's series (name and labels as
/// written) to its value, and each family's declared type. Fails on a
/// sample line that does not parse, a sample of a family with no `# TYPE`,
/// or a text that does not end with `# EOF`.
fn parse(text: &str) -> (HashMap<String, f64>, HashMap<String, String>) {
    assert!(text.ends_with("# EOF\n"), "no EOF marker:\n{text}");
    let mut samples = HashMap::new();
    let mut types = HashMap::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let (family, kind) = t.split_once(' ').unwrap();
            types.insert(family.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
        let name = series.split('{').next().unwrap();
        let family = types
            .keys()
            .filter(|f| name.starts_with(f.as_str()))
            .max_by_key(|f| f.len())
            .unwrap_or_else(|| panic!("{line}: no # TYPE before it"));
        let suffix = &name[family.len()..];
        assert!(
            ["", "_total", "_bucket", "_sum", "_count", "_created"].contains(&suffix),
            "{line}: not a sample of {family}"
        );
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "{series} twice"
        );
    }
    (samples, types)
}

fn peer(s: &str) -> AuthorityId {
    AuthorityId::parse(s).unwrap()
}

fn scrape(storage: StoreHealth) -> Scrape {
    Scrape {
        now: NOW,
        queues: vec![
            QueueStat {
                peer: peer("ME.UP"),
                depth: 3,
                // Submitted 90.5 s before the scrape.
                oldest: MessageId::new_v7(NOW.0 - 90_500, [1; 10]),
            },
            QueueStat {
                peer: peer("RS.MUP"),
                depth: 1,
                oldest: MessageId::new_v7(NOW.0, [2; 10]),
            },
        ],
        storage,
        commits: CommitCounts {
            commits: 12,
            rows: 40,
        },
        integrity_alarm: false,
        expiry: ExpiryGauges {
            items: vec![
                ("node_certificate", 86_400),
                ("message_key", -5),
                ("log_key_before", 7_200),
            ],
            message_key_next: true,
            member_cas: vec![(peer("ME.UP"), 600)],
            roster_age: 3_600,
            officer_certs: vec![("0a1b".into(), "duty officer".into(), 2_592_000)],
        },
    }
}

/// Every name the text format 0.0.4 endpoint had is still there, with the
/// type it had, so dashboards and alerts keep working.
#[test]
fn every_earlier_metric_keeps_its_name_and_type() {
    let m = Metrics::new();
    let (samples, types) = parse(&m.render(&scrape(StoreHealth::Ok)));
    for counter in [
        "kurir_submitted",
        "kurir_delivered",
        "kurir_failed",
        "kurir_received",
        "kurir_duplicates",
        "kurir_refused_parcels",
        "kurir_id_conflicts",
        "kurir_refused_connections",
        "kurir_retries",
        "kurir_integrity_alarms",
        "kurir_refused_low_space",
    ] {
        assert_eq!(types[counter], "counter", "{counter}");
        assert_eq!(samples[&format!("{counter}_total")], 0.0, "{counter}");
    }
    for counter in ["kurir_store_commits", "kurir_store_rows"] {
        assert_eq!(types[counter], "counter", "{counter}");
    }
    for gauge in [
        "kurir_storage_low_space",
        "kurir_storage_not_responding",
        "kurir_queue_depth",
        "kurir_expiry_seconds",
        "kurir_message_key_next",
        "kurir_member_ca_expiry_seconds",
        "kurir_roster_age_seconds",
    ] {
        assert_eq!(types[gauge], "gauge", "{gauge}");
    }
    assert_eq!(types["kurir_delivery_latency_seconds"], "histogram");
}

#[test]
fn counters_failures_and_histogram_carry_their_values() {
    let m = Metrics::new();
    m.submitted.inc();
    m.delivered.inc();
    m.delivered.inc();
    m.latency.observe(0.020);
    m.latency.observe(2.0);
    let me = peer("ME.UP");
    m.delivery_failed(&me, FinalFailure::Expired);
    m.delivery_failed(&me, FinalFailure::Rejected("kind_not_allowed"));
    m.delivery_failed(&me, FinalFailure::Rejected("kind_not_allowed"));
    m.attempt_failed(&me, AttemptFailure::Connect);
    m.attempt_failed(&me, AttemptFailure::RejectedForNow(RejectCode::RateLimited));
    let (s, types) = parse(&m.render(&scrape(StoreHealth::Ok)));
    assert_eq!(s["kurir_submitted_total"], 1.0);
    assert_eq!(s["kurir_delivered_total"], 2.0);
    assert_eq!(s["kurir_failed_total"], 3.0, "every final failure");
    assert_eq!(types["kurir_delivery_failures"], "counter");
    assert_eq!(
        s[r#"kurir_delivery_failures_total{peer="ME.UP",reason="expired",code=""}"#],
        1.0
    );
    assert_eq!(
        s[r#"kurir_delivery_failures_total{peer="ME.UP",reason="rejected",code="kind_not_allowed"}"#],
        2.0
    );
    assert_eq!(
        s[r#"kurir_delivery_attempt_failures_total{peer="ME.UP",reason="connect",code=""}"#],
        1.0
    );
    assert_eq!(
        s[r#"kurir_delivery_attempt_failures_total{peer="ME.UP",reason="rejected",code="rate_limited"}"#],
        1.0
    );
    // Buckets are cumulative: 20 ms is in every bucket from 25 ms, 2 s from 5 s.
    let bucket = |le: &str| s[&format!("kurir_delivery_latency_seconds_bucket{{le=\"{le}\"}}")];
    assert_eq!(bucket("0.01"), 0.0);
    assert_eq!(bucket("0.025"), 1.0);
    assert_eq!(bucket("1.0"), 1.0);
    assert_eq!(bucket("5.0"), 2.0);
    assert_eq!(bucket("+Inf"), 2.0);
    assert_eq!(s["kurir_delivery_latency_seconds_count"], 2.0);
    assert!((s["kurir_delivery_latency_seconds_sum"] - 2.02).abs() < 1e-9);
}

#[test]
fn scrape_values_queues_storage_alarm_and_expiry() {
    let m = Metrics::new();
    let mut at = scrape(StoreHealth::Ok);
    at.integrity_alarm = true;
    let (s, _) = parse(&m.render(&at));
    assert_eq!(s[r#"kurir_queue_depth{peer="ME.UP"}"#], 3.0);
    assert_eq!(s[r#"kurir_queue_depth{peer="RS.MUP"}"#], 1.0);
    assert_eq!(s[r#"kurir_queue_oldest_age_seconds{peer="ME.UP"}"#], 90.5);
    assert_eq!(s[r#"kurir_queue_oldest_age_seconds{peer="RS.MUP"}"#], 0.0);
    assert_eq!(s["kurir_integrity_alarm"], 1.0);
    assert_eq!(s["kurir_store_commits_total"], 12.0);
    assert_eq!(s["kurir_store_rows_total"], 40.0);
    assert_eq!(
        s[r#"kurir_expiry_seconds{item="node_certificate"}"#],
        86_400.0
    );
    assert_eq!(s[r#"kurir_expiry_seconds{item="message_key"}"#], -5.0);
    assert!(!s.contains_key(r#"kurir_expiry_seconds{item="authority_ca"}"#));
    assert_eq!(s["kurir_message_key_next"], 1.0);
    assert_eq!(
        s[r#"kurir_member_ca_expiry_seconds{member="ME.UP"}"#],
        600.0
    );
    assert_eq!(s["kurir_roster_age_seconds"], 3_600.0);
    assert_eq!(s[r#"kurir_expiry_seconds{item="log_key_before"}"#], 7_200.0);
    assert_eq!(
        s[r#"kurir_officer_cert_expiry_seconds{serial="0a1b",name="duty officer"}"#],
        2_592_000.0
    );

    for (health, code, low, stuck) in [
        (StoreHealth::Ok, 0.0, 0.0, 0.0),
        (StoreHealth::Degraded("low".into()), 1.0, 1.0, 0.0),
        (StoreHealth::Unhealthy("stuck".into()), 2.0, 0.0, 1.0),
    ] {
        let (s, _) = parse(&m.render(&scrape(health.clone())));
        assert_eq!(s["kurir_storage_health"], code, "{health:?}");
        assert_eq!(s["kurir_storage_low_space"], low, "{health:?}");
        assert_eq!(s["kurir_storage_not_responding"], stuck, "{health:?}");
        assert_eq!(s["kurir_integrity_alarm"], 0.0);
    }

    // A peer whose queue emptied is gone from the next scrape.
    let mut later = scrape(StoreHealth::Ok);
    later.queues.truncate(1);
    let (s, _) = parse(&m.render(&later));
    assert!(!s.contains_key(r#"kurir_queue_depth{peer="RS.MUP"}"#));
    assert!(!s.contains_key(r#"kurir_queue_oldest_age_seconds{peer="RS.MUP"}"#));
}

/// Units are declared where a name ends in one, as OpenMetrics requires.
#[test]
fn seconds_are_declared_as_the_unit() {
    let text = Metrics::new().render(&scrape(StoreHealth::Ok));
    for family in [
        "kurir_delivery_latency_seconds",
        "kurir_queue_oldest_age_seconds",
        "kurir_expiry_seconds",
        "kurir_member_ca_expiry_seconds",
        "kurir_officer_cert_expiry_seconds",
        "kurir_roster_age_seconds",
    ] {
        assert!(
            text.contains(&format!("\n# UNIT {family} seconds\n")),
            "{family}:\n{text}"
        );
    }
}

/// The encoder ends each help text with a period of its own: ours carry
/// none, so none ends with two.
#[test]
fn help_texts_end_in_one_period() {
    let text = Metrics::new().render(&scrape(StoreHealth::Ok));
    let helps: Vec<&str> = text.lines().filter(|l| l.starts_with("# HELP ")).collect();
    assert!(helps.len() >= 20, "{text}");
    for help in helps {
        assert!(help.ends_with('.') && !help.ends_with(".."), "{help}");
    }
}
