//! File handling: permissions and no silent overwrite.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use kurir_certs::authority::{self, Authority, InitParams};
use kurir_certs::files::{self, Overwrite};
use kurir_certs::{FileError, PkiError, keys};
use kurir_proto::AuthorityId;

use crate::common::{self, now, roster_key};

#[test]
fn private_keys_are_written_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let rs = common::init(tmp.path(), "RS.MUP");
    for f in [
        authority::layout::CA_KEY,
        authority::layout::NODE_KEY,
        authority::layout::LOG_KEY,
    ] {
        let mode = fs::metadata(rs.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let a = Authority::open(&rs).unwrap();
    assert_eq!(a.message_keys().unwrap().len(), 1);
}

#[test]
fn key_file_readable_by_others_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("roster.key");
    keys::write_secret_key(&path, &roster_key(1), Overwrite::Refuse).unwrap();
    assert!(keys::read_secret_key(&path).is_ok());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let err = keys::read_secret_key(&path).unwrap_err();
    assert!(
        matches!(err, FileError::TooOpen { mode: 0o644, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("roster.key") && msg.contains("chmod 600"),
        "{msg}"
    );

    // The CA key too, when issuing.
    let rs = common::init(tmp.path(), "RS.MUP");
    let ca_key = rs.join(authority::layout::CA_KEY);
    fs::set_permissions(&ca_key, fs::Permissions::from_mode(0o640)).unwrap();
    let a = Authority::open(&rs).unwrap();
    let err = a.issuer(now()).unwrap_err();
    assert!(
        matches!(err, PkiError::File(FileError::TooOpen { .. })),
        "{err}"
    );
}

#[test]
fn existing_output_not_overwritten_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let rs = common::init(tmp.path(), "RS.MUP");
    let before = fs::read(rs.join(authority::layout::CA_KEY)).unwrap();
    let params = InitParams {
        id: AuthorityId::parse("RS.MUP").unwrap(),
        name: "again".into(),
        relay_host: "relay.rs.example".into(),
        relay_port: 7443,
        ca_days: 10,
        node_days: 10,
        key_days: kurir_certs::authority::DEFAULT_KEY_DAYS,
        now: now(),
        overwrite: Overwrite::Refuse,
    };
    let err = authority::init(&rs, &params).unwrap_err();
    assert!(
        matches!(err, PkiError::File(FileError::Exists { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(
        fs::read(rs.join(authority::layout::CA_KEY)).unwrap(),
        before
    );
    // With --force it is replaced, still 0600.
    authority::init(
        &rs,
        &InitParams {
            overwrite: Overwrite::Replace,
            ..params
        },
    )
    .unwrap();
    assert_ne!(
        fs::read(rs.join(authority::layout::CA_KEY)).unwrap(),
        before
    );
    let mode = fs::metadata(rs.join(authority::layout::CA_KEY))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A single file.
    let p = tmp.path().join("x");
    files::write_secret(&p, b"1", Overwrite::Refuse).unwrap();
    assert!(matches!(
        files::write_secret(&p, b"2", Overwrite::Refuse),
        Err(FileError::Exists { .. })
    ));
    assert_eq!(fs::read(&p).unwrap(), b"1");
}

#[test]
fn missing_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Authority::open(&tmp.path().join("nowhere")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("nowhere/member.json") && msg.contains("cannot read"),
        "{msg}"
    );
}

#[test]
fn malformed_authority_id_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["rs.mup", "RSMUP", "R.MUP", "RS.M", "RS.MUP-1"] {
        assert!(AuthorityId::parse(bad).is_err(), "{bad}");
    }
    // A member.json with a malformed id.
    let rs = common::init(tmp.path(), "RS.MUP");
    let path = rs.join(authority::layout::MEMBER);
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("\"RS.MUP\"", "\"rs.mup\"");
    fs::write(&path, text).unwrap();
    let err = kurir_certs::roster::member_from_file(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("member.json") && err.contains("id: invalid authority id"),
        "{err}"
    );
}

#[test]
fn expired_or_not_yet_valid_ca_refused_when_issuing() {
    let tmp = tempfile::tempdir().unwrap();
    let rs = common::init(tmp.path(), "RS.MUP");
    let a = Authority::open(&rs).unwrap();
    for at in [
        kurir_proto::Timestamp(now().0 + 4000 * common::DAY),
        kurir_proto::Timestamp(now().0 - 2 * common::DAY),
    ] {
        let err = a.issuer(at).unwrap_err();
        assert!(matches!(err, PkiError::CertificateTime { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("ca.crt.pem: certificate is not valid at"),
            "{msg}"
        );
    }
}
