//! Signed notes, checkpoints and cosignatures: the examples of the C2SP
//! specs, round trips, a pinned snapshot, and tampering.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::SigningKey;
use kurir_proto::Digest;
use kurir_proto::checkpoint::{
    Checkpoint, CheckpointError, MAX_NOTE_LEN, MAX_SIGNATURES, Note, NoteVerifier, SignatureType,
    SignedCheckpoint, cosignature_message, key_id,
};
use kurir_proto::merkle::{self, ProofError};
use proptest::prelude::*;

const LOG: &str = "kurir.rs.mup/audit";
const WITNESS: &str = "kurir.me.up/witness";
const WITNESS2: &str = "kurir.ba.sps/witness";
const TIME: u64 = 1_795_874_050;

fn log_key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}
fn witness_key() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}
fn witness2_key() -> SigningKey {
    SigningKey::from_bytes(&[3; 32])
}
fn log_verifier() -> NoteVerifier {
    NoteVerifier::ed25519(LOG, log_key().verifying_key()).unwrap()
}
fn witness_verifier() -> NoteVerifier {
    NoteVerifier::cosigner(WITNESS, witness_key().verifying_key()).unwrap()
}
fn witness2_verifier() -> NoteVerifier {
    NoteVerifier::cosigner(WITNESS2, witness2_key().verifying_key()).unwrap()
}

fn leaves(n: u8) -> Vec<Digest> {
    (0..n).map(|i| merkle::leaf_hash(&[i])).collect()
}

fn checkpoint(n: u8) -> Checkpoint {
    Checkpoint::new(LOG, u64::from(n), merkle::root(&leaves(n))).unwrap()
}

/// The checkpoint of 4 leaves signed by the log and cosigned by one witness.
fn signed() -> SignedCheckpoint {
    let mut s = SignedCheckpoint::sign(checkpoint(4), LOG, &log_key()).unwrap();
    let c = s.cosign(WITNESS, &witness_key(), TIME).unwrap();
    s.add_signature(c).unwrap();
    s
}

// ---------------------------------------------------------------- the specs

/// signed-note.md §Verifier keys, "Example": the vkey and the note it
/// verifies, verbatim.
const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

#[test]
fn spec_example_note_verifies() {
    let vkey = NoteVerifier::parse(SPEC_VKEY).unwrap();
    assert_eq!(vkey.name(), "example.com/foo");
    assert_eq!(vkey.key_id(), 0x530d903a);
    assert_eq!(vkey.kind(), SignatureType::Ed25519);
    assert_eq!(vkey.to_string(), SPEC_VKEY);

    let note = Note::parse(SPEC_NOTE.as_bytes()).unwrap();
    assert_eq!(note.text(), "This is an example message.\n");
    assert_eq!(note.signatures().len(), 1);
    assert_eq!(note.signatures()[0].key_id(), 0x530d903a);
    let signed = note.verify(std::slice::from_ref(&vkey)).unwrap();
    assert_eq!(signed, vec![&vkey]);
    assert_eq!(note.to_string(), SPEC_NOTE);

    // One changed character of the text.
    let tampered = SPEC_NOTE.replacen("example", "exemple", 1);
    let note = Note::parse(tampered.as_bytes()).unwrap();
    assert_eq!(
        note.verify(std::slice::from_ref(&vkey)),
        Err(CheckpointError::BadSignature {
            name: "example.com/foo".into(),
            key_id: 0x530d903a
        })
    );
}

/// signed-note.md's opening example: the text holds a blank line of its
/// own; the signatures start after the *last* blank line.
#[test]
fn spec_poem_splits_at_the_last_blank_line() {
    let poem = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n\u{2014} quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
    let note = Note::parse(poem.as_bytes()).unwrap();
    assert_eq!(
        note.text(),
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
    );
    assert_eq!(note.signatures()[0].name(), "quasimodo.example/salvatore");
    assert_eq!(note.signatures()[0].key_id(), 0x367ba04b);
    assert_eq!(note.to_string(), poem);
    // Its key is not given: no known key signed it.
    assert!(matches!(
        note.verify(&[log_verifier()]),
        Err(CheckpointError::NoKnownSignature { .. })
    ));
}

/// tlog-checkpoint.md and tlog-cosignature.md: the example checkpoint with a
/// log signature and a witness cosignature (no keys are given, so only the
/// format is checked), and the example cosigned message.
#[test]
fn spec_example_checkpoint_and_cosignature() {
    let text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
    let s = SignedCheckpoint::parse(text.as_bytes()).unwrap();
    let c = s.checkpoint();
    assert_eq!(c.origin(), "example.com/behind-the-sofa");
    assert_eq!(c.size(), 20852163);
    assert_eq!(
        BASE64.encode(c.root().as_bytes()),
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    );
    assert!(c.extensions().is_empty());
    assert_eq!(s.to_string(), text);

    let sigs = s.signatures();
    assert_eq!(sigs.len(), 2);
    assert_eq!(sigs[0].signature().len(), 64);
    // The cosignature: key id, then the 8-byte timestamp of the example
    // message, then 64 bytes of Ed25519 signature.
    assert_eq!(sigs[1].name(), "witness.example.com/w1");
    assert_eq!(sigs[1].key_id(), 0x8d66cf3f);
    assert_eq!(sigs[1].signature().len(), 72);
    let time = u64::from_be_bytes(sigs[1].signature()[..8].try_into().unwrap());
    assert_eq!(time, 1679315147);

    assert_eq!(
        cosignature_message(time, s.note().text()),
        "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    );
}

// ------------------------------------------------------------ round trips

#[test]
fn sign_parse_verify_round_trip() {
    let mut s = signed();
    let c2 = s.cosign(WITNESS2, &witness2_key(), TIME + 5).unwrap();
    s.add_signature(c2).unwrap();

    let text = s.to_string();
    let parsed = SignedCheckpoint::parse(text.as_bytes()).unwrap();
    assert_eq!(parsed, s);
    assert_eq!(parsed.to_string(), text);
    assert_eq!(parsed.checkpoint(), &checkpoint(4));

    parsed.verify(&log_verifier()).unwrap();
    assert_eq!(
        parsed.verify_cosignature(&witness_verifier()).unwrap(),
        TIME
    );
    assert_eq!(
        parsed.verify_cosignature(&witness2_verifier()).unwrap(),
        TIME + 5
    );
    let known = [witness2_verifier(), log_verifier(), witness_verifier()];
    let signers: Vec<&str> = parsed
        .verify_known(&known)
        .unwrap()
        .iter()
        .map(|v| v.name())
        .collect();
    assert_eq!(signers, [LOG, WITNESS, WITNESS2]);
}

#[test]
fn checkpoint_text_is_exact() {
    let c = Checkpoint::new("example.com/log42", 0, merkle::EMPTY_ROOT)
        .unwrap()
        .with_extension("ext one")
        .unwrap();
    let text = "example.com/log42\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next one\n";
    assert_eq!(c.to_string(), text);
    assert_eq!(Checkpoint::parse(text).unwrap(), c);
    assert_eq!(c.extensions(), ["ext one"]);
}

#[test]
fn vkeys_round_trip() {
    for v in [log_verifier(), witness_verifier()] {
        let text = v.to_string();
        assert_eq!(NoteVerifier::parse(&text).unwrap(), v);
        let material = BASE64.decode(text.rsplit('+').next().unwrap()).unwrap();
        assert_eq!(material.len(), 33);
        assert_eq!(material[0], v.kind().byte());
        assert_eq!(&material[1..], v.key().as_bytes());
    }
    assert_eq!(
        log_verifier().key_id(),
        key_id(LOG, SignatureType::Ed25519, &log_key().verifying_key())
    );
}

/// The signed checkpoint of the 4 leaves 0x00..0x03 with the keys
/// `[1; 32]` (log) and `[2; 32]` (cosigner at 1795874050), byte for byte.
/// Ed25519 is deterministic, so this pins the whole encoding. The same
/// text was checked with Python's `cryptography` package during
/// development (key ids, vkeys, both signatures).
#[test]
fn snapshot() {
    let expected = concat!(
        "kurir.rs.mup/audit\n",
        "4\n",
        "m81RJAr0AFFo8DMSG6hb5abtTw5qX6wmIGZym4+/3ss=\n",
        "\n",
        "\u{2014} kurir.rs.mup/audit SSCwLKCkJmbKgZt8wEHT6sjBA6UmtvGSGqhSVTfmyKc2PnH703fmq2kqhQNOm2cqacB8jueh92KfOHKS6tebduX2cgA=\n",
        "\u{2014} kurir.me.up/witness H6pbvwAAAABrCt0CzzB6BEj9R07M/NTmp1VfsD5ERIZpuudsqjz1iMYeBRqeA/NHiTZKF9MdyoIkZtNiBTRZ63YRV/zfwcebgeoQDQ==\n",
    );
    assert_eq!(signed().to_string(), expected);
    assert_eq!(
        log_verifier().to_string(),
        "kurir.rs.mup/audit+4920b02c+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c"
    );
    assert_eq!(
        witness_verifier().to_string(),
        "kurir.me.up/witness+1faa5bbf+BIE5dw6ofRdfVqNUZsNMfszLjYqRtO43ol32D1uPybOU"
    );
    let parsed = SignedCheckpoint::parse(expected.as_bytes()).unwrap();
    parsed.verify(&log_verifier()).unwrap();
    assert_eq!(
        parsed.verify_cosignature(&witness_verifier()).unwrap(),
        TIME
    );
}

// ---------------------------------------------------------------- tampering

fn replace_body(s: &SignedCheckpoint, from: &str, to: &str) -> SignedCheckpoint {
    let text = s.to_string();
    let (body, sigs) = text.split_once("\n\n").unwrap();
    let body = body.replacen(from, to, 1);
    SignedCheckpoint::parse(format!("{body}\n\n{sigs}").as_bytes()).unwrap()
}

#[test]
fn tampered_body_is_refused() {
    let s = signed();
    let c = s.checkpoint().clone();
    let bad_log = CheckpointError::BadSignature {
        name: LOG.into(),
        key_id: log_verifier().key_id(),
    };
    let bad_witness = CheckpointError::BadSignature {
        name: WITNESS.into(),
        key_id: witness_verifier().key_id(),
    };
    let other_root = BASE64.encode(merkle::root(&leaves(5)).as_bytes());
    let root = BASE64.encode(c.root().as_bytes());
    for (from, to) in [
        ("\n4\n", "\n5\n"),
        (root.as_str(), other_root.as_str()),
        ("kurir.rs.mup/audit", "kurir.rs.mup/audit2"),
    ] {
        let t = replace_body(&s, from, to);
        assert_ne!(t.checkpoint(), &c);
        assert_eq!(t.verify(&log_verifier()), Err(bad_log.clone()), "{from}");
        assert_eq!(
            t.verify_cosignature(&witness_verifier()),
            Err(bad_witness.clone())
        );
        assert_eq!(
            t.verify_known(&[log_verifier(), witness_verifier()]),
            Err(bad_log.clone())
        );
    }
    // An added extension line.
    let text = s.to_string().replacen("\n\n", "\nextra\n\n", 1);
    let t = SignedCheckpoint::parse(text.as_bytes()).unwrap();
    assert_eq!(t.checkpoint().extensions(), ["extra"]);
    assert_eq!(t.verify(&log_verifier()), Err(bad_log));
}

#[test]
fn tampered_signatures_are_refused() {
    let s = signed();
    let text = s.to_string();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with('\u{2014}'))
    {
        let (head, b64) = line.rsplit_once(' ').unwrap();
        let mut bytes = BASE64.decode(b64).unwrap();
        // A flipped bit in the signature (past the key id), then in the
        // cosignature's timestamp.
        for at in [bytes.len() - 1, 4 + 7] {
            bytes[at] ^= 1;
            let line2 = format!("{head} {}", BASE64.encode(&bytes));
            bytes[at] ^= 1;
            let t = SignedCheckpoint::parse(text.replace(line, &line2).as_bytes()).unwrap();
            let known = [log_verifier(), witness_verifier()];
            let result = t.verify_known(&known);
            assert!(
                matches!(result, Err(CheckpointError::BadSignature { .. })),
                "line {i} byte {at}: {result:?}"
            );
        }
    }
}

#[test]
fn unknown_signatures_are_ignored_and_do_not_count() {
    let s = SignedCheckpoint::sign(checkpoint(3), LOG, &log_key()).unwrap();
    // A stranger's signature under the log's name: a different key id, so
    // it is ignored, and the log itself did not sign.
    let stranger = SigningKey::from_bytes(&[9; 32]);
    let fake = SignedCheckpoint::sign(checkpoint(3), LOG, &stranger).unwrap();
    assert_eq!(
        fake.verify(&log_verifier()),
        Err(CheckpointError::MissingSignature {
            name: LOG.into(),
            key_id: log_verifier().key_id()
        })
    );
    assert!(matches!(
        fake.verify_known(&[log_verifier(), witness_verifier()]),
        Err(CheckpointError::NoKnownSignature { .. })
    ));
    // The same key id under another name: ignored as well.
    let line = s.signatures()[0]
        .to_string()
        .replace(LOG, "kurir.rs.mup/other");
    let text = format!("{}\n{line}", s.note().text());
    let renamed = SignedCheckpoint::parse(text.as_bytes()).unwrap();
    assert!(matches!(
        renamed.verify(&log_verifier()),
        Err(CheckpointError::MissingSignature { .. })
    ));
    // Unknown lines beside a valid log signature change nothing.
    let mut with_unknown = s.clone();
    let c = with_unknown
        .cosign("stranger.example/w", &stranger, TIME)
        .unwrap();
    with_unknown.add_signature(c).unwrap();
    let reparsed = SignedCheckpoint::parse(with_unknown.to_string().as_bytes()).unwrap();
    reparsed.verify(&log_verifier()).unwrap();
    assert_eq!(
        reparsed
            .verify_known(&[log_verifier(), witness_verifier()])
            .unwrap()
            .len(),
        1
    );
    // A cosigner that did not cosign.
    assert!(matches!(
        reparsed.verify_cosignature(&witness_verifier()),
        Err(CheckpointError::MissingSignature { .. })
    ));
}

#[test]
fn malformed_notes_are_refused() {
    let good = signed().to_string();
    let cases: Vec<(String, &str)> = vec![
        (
            good.trim_end_matches('\n').to_owned(),
            "MissingFinalNewline",
        ),
        (good.replacen("\n\n", "\n", 1), "MissingSignatureSeparator"),
        (format!("{good}\n"), "NoSignatures"),
        (good.replace('\n', "\r\n"), "ControlCharacter"),
        (good.replacen("kurir", "kur\tir", 1), "ControlCharacter"),
        (good.replacen('\u{2014}', "-", 1), "MalformedSignatureLine"),
        (
            good.replacen(
                "\u{2014} kurir.rs.mup/audit ",
                "\u{2014} kurir.rs.mup/audit  ",
                1,
            ),
            "MalformedSignatureLine",
        ),
        (
            good.replacen(
                "\u{2014} kurir.rs.mup/audit ",
                "\u{2014} kurir.rs.mup/audit",
                1,
            ),
            "MalformedSignatureLine",
        ),
        (
            good.replacen(
                "\u{2014} kurir.rs.mup/audit ",
                "\u{2014} kurir+rs/audit ",
                1,
            ),
            "InvalidKeyName",
        ),
        (
            good.replacen("\u{2014} kurir.rs.mup/audit ", "\u{2014}  ", 1),
            "InvalidKeyName",
        ),
        (
            good.replacen("=\n\u{2014}", "\n\u{2014}", 1),
            "MalformedSignatureLine",
        ),
        (
            format!("{}\n\u{2014} a AAAAAA==\n", signed().note().text()),
            "MalformedSignatureLine",
        ),
        // The body is not a checkpoint.
        (good.replacen("\n4\n", "\n04\n", 1), "MalformedCheckpoint"),
        (good.replacen("\n4\n", "\n\n", 1), "MalformedCheckpoint"),
        (good.replacen("\n\n", "\n\n\n", 1), "MalformedCheckpoint"),
        (good.replacen(LOG, "", 1), "MalformedCheckpoint"),
    ];
    for (text, want) in cases {
        let err = SignedCheckpoint::parse(text.as_bytes()).unwrap_err();
        let got = format!("{err:?}");
        assert!(got.starts_with(want), "{text:?}\nwant {want}, got {got}");
    }
    assert!(matches!(
        SignedCheckpoint::parse(b"\xff\n\n\xe2\x80\x94 a AAAAAAA=\n"),
        Err(CheckpointError::NotUtf8 { offset: 0 })
    ));
    let huge = format!("{}{good}", "x".repeat(MAX_NOTE_LEN));
    assert!(matches!(
        SignedCheckpoint::parse(huge.as_bytes()),
        Err(CheckpointError::TooLarge { .. })
    ));
}

#[test]
fn duplicate_and_excess_signatures_are_refused() {
    let s = signed();
    let text = s.to_string();
    let line = s.signatures()[0].to_string();
    let doubled = format!("{text}{line}");
    assert_eq!(
        SignedCheckpoint::parse(doubled.as_bytes()),
        Err(CheckpointError::DuplicateSignature {
            name: LOG.into(),
            key_id: log_verifier().key_id()
        })
    );
    let mut s2 = s.clone();
    assert!(matches!(
        s2.add_signature(s.signatures()[1].clone()),
        Err(CheckpointError::DuplicateSignature { .. })
    ));

    // Up to MAX_SIGNATURES lines (at least the 16 the spec requires) are
    // accepted, one more is not.
    const _: () = assert!(MAX_SIGNATURES >= 16);
    let body = s.note().text().to_owned();
    let many = |n: usize| {
        let mut t = format!("{body}\n");
        for i in 0..n {
            t.push_str(&format!("\u{2014} w{i}.example AAAAAAA=\n"));
        }
        t
    };
    let ok = SignedCheckpoint::parse(many(MAX_SIGNATURES).as_bytes()).unwrap();
    assert_eq!(ok.signatures().len(), MAX_SIGNATURES);
    assert_eq!(
        SignedCheckpoint::parse(many(MAX_SIGNATURES + 1).as_bytes()),
        Err(CheckpointError::TooManySignatures {
            count: MAX_SIGNATURES + 1,
            max: MAX_SIGNATURES
        })
    );
}

#[test]
fn malformed_checkpoint_bodies_are_refused() {
    let root = BASE64.encode([7u8; 32]);
    let ok = format!("o\n1\n{root}\n");
    Checkpoint::parse(&ok).unwrap();
    for bad in [
        format!("o\n1\n{root}"),                           // no final newline
        "o\n1\n".to_owned(),                               // no root
        format!("\n1\n{root}\n"),                          // empty origin
        format!("o\n01\n{root}\n"),                        // leading zero
        format!("o\n-1\n{root}\n"),                        // sign
        format!("o\n 1\n{root}\n"),                        // space
        format!("o\n18446744073709551616\n{root}\n"),      // 2^64
        format!("o\n1\n{}\n", BASE64.encode([7u8; 31])),   // short root
        format!("o\n1\n{}\n", BASE64.encode([7u8; 33])),   // long root
        format!("o\n1\n{}\n", root.trim_end_matches('=')), // no padding
        format!("o\n1\n{root}\n\n"),                       // empty extension line
        format!("o\n1\n{root}\r\n"),                       // CR
    ] {
        assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
    }
    // Non-canonical base64 (non-zero trailing bits) is refused.
    let mut noncanon = root.clone().into_bytes();
    let i = noncanon.len() - 2;
    noncanon[i] = if noncanon[i] == b'c' { b'd' } else { b'c' };
    let noncanon = String::from_utf8(noncanon).unwrap();
    if BASE64.decode(&noncanon).is_err() {
        assert!(Checkpoint::parse(&format!("o\n1\n{noncanon}\n")).is_err());
    }
    assert!(Checkpoint::new("", 1, merkle::EMPTY_ROOT).is_err());
    assert!(Checkpoint::new("a\nb", 1, merkle::EMPTY_ROOT).is_err());
    assert!(
        Checkpoint::new("a", 1, merkle::EMPTY_ROOT)
            .unwrap()
            .with_extension("")
            .is_err()
    );
}

#[test]
fn vkeys_are_checked() {
    let good = log_verifier().to_string();
    let (name, rest) = good.split_once('+').unwrap();
    let (id, key) = rest.split_once('+').unwrap();
    let cases = [
        (format!("{name}+{id}"), "InvalidVerifierKey"),
        (format!("{name}+{id}+{key}+x"), "InvalidVerifierKey"),
        (
            format!("{name}+{}+{key}", id.to_uppercase()),
            "InvalidVerifierKey",
        ),
        (format!("{name}+0{id}+{key}"), "InvalidVerifierKey"),
        (format!("{name}+00000000+{key}"), "KeyIdMismatch"),
        (format!("other.example+{id}+{key}"), "KeyIdMismatch"),
        (format!("+{id}+{key}"), "InvalidKeyName"),
        (format!("{name}+{id}+{}", &key[1..]), "InvalidVerifierKey"),
        (
            format!(
                "{name}+{id}+{}",
                BASE64.encode([&[0x02u8][..], &[0; 32]].concat())
            ),
            "UnsupportedSignatureType",
        ),
        (
            format!("{name}+{id}+{}", BASE64.encode([0x01u8; 32])),
            "InvalidVerifierKey",
        ),
    ];
    for (text, want) in cases {
        let err = NoteVerifier::parse(&text).unwrap_err();
        let got = format!("{err:?}");
        assert!(got.starts_with(want), "{text}\nwant {want}, got {got}");
    }
}

#[test]
fn cosignature_timestamps() {
    let s = signed();
    assert_eq!(
        s.cosign(WITNESS, &witness_key(), 1 << 63),
        Err(CheckpointError::TimestampOutOfRange(1 << 63))
    );
    s.cosign(WITNESS, &witness_key(), (1 << 63) - 1).unwrap();

    // A line whose timestamp has the top bit set is refused as such.
    let line = s.signatures()[1].to_string();
    let (head, b64) = line.trim_end().rsplit_once(' ').unwrap();
    let mut bytes = BASE64.decode(b64).unwrap();
    bytes[4] |= 0x80;
    let text = s.to_string().replace(
        line.trim_end(),
        &format!("{head} {}", BASE64.encode(&bytes)),
    );
    let t = SignedCheckpoint::parse(text.as_bytes()).unwrap();
    assert!(matches!(
        t.verify_cosignature(&witness_verifier()),
        Err(CheckpointError::TimestampOutOfRange(_))
    ));

    // A cosignature is not a log signature and vice versa: the key ids
    // differ by type, so the lines do not match.
    let as_log = NoteVerifier::ed25519(WITNESS, witness_key().verifying_key()).unwrap();
    assert!(matches!(
        s.verify(&as_log),
        Err(CheckpointError::MissingSignature { .. })
    ));
    let as_cosigner = NoteVerifier::cosigner(LOG, log_key().verifying_key()).unwrap();
    assert!(matches!(
        s.verify_cosignature(&as_cosigner),
        Err(CheckpointError::MissingSignature { .. })
    ));
}

#[test]
fn checkpoints_are_checked_for_consistency() {
    let all = leaves(9);
    let old = checkpoint(4);
    let new = Checkpoint::new(LOG, 9, merkle::root(&all)).unwrap();
    let proof = merkle::consistency_proof(&all, 4, 9).unwrap();
    old.verify_consistency(&new, &proof).unwrap();

    let forked = Checkpoint::new(LOG, 9, merkle::root(&leaves(10)[1..])).unwrap();
    assert!(matches!(
        old.verify_consistency(&forked, &proof),
        Err(CheckpointError::Inconsistent {
            old_size: 4,
            new_size: 9,
            source: ProofError::NewRootMismatch { .. }
        })
    ));
    let other_log = Checkpoint::new("kurir.me.up/audit", 9, merkle::root(&all)).unwrap();
    assert!(matches!(
        old.verify_consistency(&other_log, &proof),
        Err(CheckpointError::OriginMismatch { .. })
    ));
    assert!(matches!(
        new.verify_consistency(&old, &proof),
        Err(CheckpointError::Inconsistent {
            source: ProofError::OldSizeExceedsNew { .. },
            ..
        })
    ));
}

proptest! {
    #[test]
    fn checkpoints_round_trip(
        origin in "[a-z0-9./-]{1,40}",
        size: u64,
        root: [u8; 32],
        extensions in proptest::collection::vec("[ -~]{1,30}", 0..3),
        seed: [u8; 32],
        time in 0u64..(1 << 63),
    ) {
        let mut c = Checkpoint::new(&origin, size, Digest(root)).unwrap();
        for e in &extensions {
            c = c.with_extension(e).unwrap();
        }
        prop_assert_eq!(Checkpoint::parse(&c.to_string()).unwrap(), c.clone());

        let key = SigningKey::from_bytes(&seed);
        let mut s = SignedCheckpoint::sign(c, &origin, &key).unwrap();
        let cosig = s.cosign(WITNESS, &witness_key(), time).unwrap();
        s.add_signature(cosig).unwrap();
        let parsed = SignedCheckpoint::parse(s.to_string().as_bytes()).unwrap();
        prop_assert_eq!(&parsed, &s);
        let log = NoteVerifier::ed25519(&origin, key.verifying_key()).unwrap();
        prop_assert!(parsed.verify(&log).is_ok());
        prop_assert_eq!(parsed.verify_cosignature(&witness_verifier()).unwrap(), time);
    }

    #[test]
    fn parsing_arbitrary_text_does_not_panic(text in "\\PC{0,200}", bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = SignedCheckpoint::parse(text.as_bytes());
        let _ = SignedCheckpoint::parse(&bytes);
        let _ = NoteVerifier::parse(&text);
        let _ = Checkpoint::parse(&text);
    }
}
