//! Real TLS 1.3 handshakes in memory (rustls client and server connections
//! pumping bytes into each other; no sockets).

use std::path::Path;
use std::sync::Arc;

use kurir_certs::authority::{self, Authority};
use kurir_certs::files::Overwrite;
use kurir_certs::officer::{self, Role};
use kurir_certs::tls::{
    self, ALPN_OFFICER, ALPN_PEER, Credentials, FederationVerifier, Identity, OfficerTrust,
};
use kurir_certs::x509::{self, URI_AUTHORITY};
use kurir_certs::{Roster, TlsError};
use kurir_proto::{AuthorityId, Timestamp};
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

use crate::common::{self, DAY, now};

fn id(s: &str) -> AuthorityId {
    AuthorityId::parse(s).unwrap()
}

/// Runs a handshake to completion; returns the server side on success.
fn handshake(
    client: ClientConfig,
    server: ServerConfig,
    name: ServerName<'static>,
) -> Result<ServerConnection, rustls::Error> {
    handshake_pair(client, server, name).map(|(_, s)| s)
}

/// Runs a handshake to completion; returns both sides on success.
fn handshake_pair(
    client: ClientConfig,
    server: ServerConfig,
    name: ServerName<'static>,
) -> Result<(ClientConnection, ServerConnection), rustls::Error> {
    let mut c = ClientConnection::new(Arc::new(client), name)?;
    let mut s = ServerConnection::new(Arc::new(server))?;
    for _ in 0..20 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            s.read_tls(&mut &buf[..]).unwrap();
            s.process_new_packets()?;
        }
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            c.read_tls(&mut &buf[..]).unwrap();
            c.process_new_packets()?;
        }
        if !c.is_handshaking() && !s.is_handshaking() && !c.wants_write() && !s.wants_write() {
            return Ok((c, s));
        }
    }
    panic!("handshake did not finish");
}

struct Setup {
    _tmp: tempfile::TempDir,
    tmp_path: std::path::PathBuf,
    rs: std::path::PathBuf,
    ba: std::path::PathBuf,
    roster: Roster,
    verifier: Arc<FederationVerifier>,
    server: ServerConfig,
}

/// RS.MUP's relay (the server) with a roster of RS.MUP and BA.SPS.
fn setup() -> Setup {
    let f = common::federation();
    let roster = Roster::verify(&f.roster.encode().unwrap(), now()).unwrap();
    let verifier = FederationVerifier::new(&roster, &OfficerTrust::load(&f.rs).unwrap()).unwrap();
    let server = tls::server_config(verifier.clone(), &Credentials::node(&f.rs).unwrap()).unwrap();
    let tmp_path = f._tmp.path().to_owned();
    Setup {
        _tmp: f._tmp,
        tmp_path,
        rs: f.rs,
        ba: f.ba,
        roster,
        verifier,
        server,
    }
}

fn peer_client(s: &Setup, creds: &Credentials) -> (ClientConfig, ServerName<'static>) {
    let (config, name, port) = tls::peer_client_config(&s.roster, creds, &id("RS.MUP")).unwrap();
    assert_eq!(port, 7443);
    (config, name)
}

fn officer_client(s: &Setup, creds: &Credentials) -> ClientConfig {
    let ca = Authority::open(&s.rs).unwrap().ca_cert().unwrap();
    tls::officer_client_config(&ca, &id("RS.MUP"), creds).unwrap()
}

fn identify(s: &Setup, conn: &ServerConnection) -> Result<Identity, TlsError> {
    s.verifier.identify(
        conn.peer_certificates().unwrap(),
        conn.alpn_protocol(),
        UnixTime::now(),
    )
}

/// A node-style certificate signed by `issuer_dir`'s CA with any claim.
fn forged_node(
    issuer_dir: &Path,
    uri: &str,
    host: &str,
    from: Timestamp,
    days: u64,
) -> Credentials {
    let issuer = Authority::open(issuer_dir).unwrap().issuer(now()).unwrap();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(vec![host.to_owned()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, host);
    p.subject_alt_names
        .push(SanType::URI(uri.to_owned().try_into().unwrap()));
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.use_authority_key_identifier_extension = true;
    p.not_before = x509::to_offset(from);
    p.not_after = x509::to_offset(from.plus_millis(days * DAY));
    let cert = p.signed_by(&key, &issuer).unwrap();
    Credentials::from_der(
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// Checks that the handshake failed with a message containing `expect`
/// (case-insensitive); kurir's own error is unwrapped from rustls's.
fn refused(result: Result<ServerConnection, rustls::Error>, expect: &str) {
    let e = match result {
        Ok(_) => panic!("handshake succeeded, expected refusal ({expect})"),
        Err(e) => e,
    };
    let msg = match &e {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            match other.0.downcast_ref::<TlsError>() {
                Some(t) => t.to_string(),
                None => e.to_string(),
            }
        }
        _ => e.to_string(),
    };
    assert!(
        msg.to_lowercase().contains(&expect.to_lowercase()),
        "expected {expect:?} in: {msg}"
    );
}

#[test]
fn member_relay_accepted_and_identified() {
    let s = setup();
    let ba = Credentials::node(&s.ba).unwrap();
    let (client, name) = peer_client(&s, &ba);
    assert_eq!(name, ServerName::try_from("relay.rs.example").unwrap());
    let conn = handshake(client, s.server.clone(), name).unwrap();
    assert_eq!(conn.alpn_protocol(), Some(ALPN_PEER));
    assert_eq!(identify(&s, &conn).unwrap(), Identity::Peer(id("BA.SPS")));
}

#[test]
fn unknown_ca_refused() {
    let s = setup();
    // ME.UP is not in the roster: its node certificate is refused ...
    let me = common::init(&s.tmp_path, "ME.UP");
    let (client, name) = peer_client(&s, &Credentials::node(&me).unwrap());
    refused(
        handshake(client, s.server.clone(), name),
        "not a member of the current roster",
    );
    // ... and so is a certificate from its CA that claims to be BA.SPS.
    let forged = forged_node(
        &me,
        &format!("{URI_AUTHORITY}BA.SPS"),
        "relay.ba.example",
        now(),
        30,
    );
    let (client, name) = peer_client(&s, &forged);
    refused(
        handshake(client, s.server.clone(), name),
        "relay BA.SPS refused",
    );
}

#[test]
fn other_authoritys_certificate_claiming_this_one_refused() {
    let s = setup();
    // BA.SPS's CA issues a certificate that claims to be RS.MUP.
    let forged = forged_node(
        &s.ba,
        &format!("{URI_AUTHORITY}RS.MUP"),
        "relay.rs.example",
        now(),
        30,
    );
    let (client, name) = peer_client(&s, &forged);
    refused(
        handshake(client, s.server.clone(), name),
        "must chain to the CA the roster lists for RS.MUP",
    );
    // identify() refuses the same chain even outside a handshake.
    let err = s
        .verifier
        .identify(&forged.chain, Some(ALPN_PEER), UnixTime::now())
        .unwrap_err();
    assert!(matches!(err, TlsError::Refused { .. }), "{err}");
}

#[test]
fn expired_and_not_yet_valid_certificates_refused() {
    let s = setup();
    let expired = forged_node(
        &s.ba,
        &format!("{URI_AUTHORITY}BA.SPS"),
        "relay.ba.example",
        Timestamp(now().0 - 60 * DAY),
        30,
    );
    let (client, name) = peer_client(&s, &expired);
    refused(handshake(client, s.server.clone(), name), "expired");
    let future = forged_node(
        &s.ba,
        &format!("{URI_AUTHORITY}BA.SPS"),
        "relay.ba.example",
        Timestamp(now().0 + 10 * DAY),
        30,
    );
    let (client, name) = peer_client(&s, &future);
    refused(handshake(client, s.server.clone(), name), "not valid yet");
    // An authority whose node certificate (from `authority init`) ran out.
    let old = common::init_at(&s.tmp_path, "MK.MVR", Timestamp(now().0 - 400 * DAY), 30);
    let err = authority::check_time(
        &old.join(authority::layout::NODE_CERT),
        &Credentials::node(&old).unwrap().chain[0],
        now(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("node.crt.pem: certificate is not valid"),
        "{err}"
    );
}

#[test]
fn officer_accepted_with_role_then_refused_after_revocation() {
    let tmp = tempfile::tempdir().unwrap();
    let s = setup();
    let rs = Authority::open(&s.rs).unwrap();
    let out = tmp.path().join("ana");
    let issued = officer::issue(
        &rs,
        "Ana Anić",
        Some(Role::Auditor),
        30,
        now(),
        &out,
        Overwrite::Refuse,
    )
    .unwrap();
    let creds = Credentials::officer(&out).unwrap();
    let conn = handshake(
        officer_client(&s, &creds),
        s.server.clone(),
        ServerName::try_from("relay.rs.example").unwrap(),
    )
    .unwrap();
    assert_eq!(conn.alpn_protocol(), Some(ALPN_OFFICER));
    let Identity::Officer(o) = identify(&s, &conn).unwrap() else {
        panic!("not an officer")
    };
    assert_eq!(
        (o.name.as_str(), o.role, o.serial.as_str()),
        ("Ana Anić", Role::Auditor, issued.serial.as_str())
    );
    assert_eq!(o.authority, id("RS.MUP"));

    // Revoke by certificate file; the relay reloads the CRL.
    let serial = officer::serial_of(out.join("officer.crt.pem").to_str().unwrap()).unwrap();
    assert_eq!(serial, issued.serial);
    let outcome = officer::revoke(&rs, &serial, now()).unwrap();
    assert!(
        matches!(
            outcome,
            officer::RevokeOutcome::Revoked { crl_number: 2, .. }
        ),
        "{outcome:?}"
    );
    assert!(matches!(
        officer::revoke(&rs, &serial, now()).unwrap(),
        officer::RevokeOutcome::AlreadyRevoked { .. }
    ));
    let verifier = FederationVerifier::new(&s.roster, &OfficerTrust::load(&s.rs).unwrap()).unwrap();
    let server = tls::server_config(verifier, &Credentials::node(&s.rs).unwrap()).unwrap();
    refused(
        handshake(
            officer_client(&s, &creds),
            server.clone(),
            ServerName::try_from("relay.rs.example").unwrap(),
        ),
        "revoked",
    );
    // Another officer, not revoked, still gets in.
    let out2 = tmp.path().join("bob");
    officer::issue(
        &rs,
        "Bob",
        Some(Role::Officer),
        30,
        now(),
        &out2,
        Overwrite::Refuse,
    )
    .unwrap();
    handshake(
        officer_client(&s, &Credentials::officer(&out2).unwrap()),
        server,
        ServerName::try_from("relay.rs.example").unwrap(),
    )
    .unwrap();
}

#[test]
fn officer_without_role_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let s = setup();
    let rs = Authority::open(&s.rs).unwrap();
    officer::issue(
        &rs,
        "No Role",
        None,
        30,
        now(),
        tmp.path(),
        Overwrite::Refuse,
    )
    .unwrap();
    let creds = Credentials::officer(tmp.path()).unwrap();
    refused(
        handshake(
            officer_client(&s, &creds),
            s.server.clone(),
            ServerName::try_from("relay.rs.example").unwrap(),
        ),
        "carries no kurir identity",
    );
}

#[test]
fn officer_of_another_authority_and_expired_officer_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let s = setup();
    // An officer of BA.SPS at the relay of RS.MUP.
    let ba = Authority::open(&s.ba).unwrap();
    let out = tmp.path().join("ba-officer");
    officer::issue(
        &ba,
        "Emir",
        Some(Role::Officer),
        30,
        now(),
        &out,
        Overwrite::Refuse,
    )
    .unwrap();
    let ca = Authority::open(&s.rs).unwrap().ca_cert().unwrap();
    let client =
        tls::officer_client_config(&ca, &id("RS.MUP"), &Credentials::officer(&out).unwrap())
            .unwrap();
    refused(
        handshake(
            client,
            s.server.clone(),
            ServerName::try_from("relay.rs.example").unwrap(),
        ),
        "officer certificate of BA.SPS presented to the relay of RS.MUP",
    );
    // An officer certificate that expired.
    let old = forged_node(
        &s.rs,
        "urn:kurir:officer:RS.MUP:admin",
        "old-officer",
        Timestamp(now().0 - 3 * DAY),
        1,
    );
    refused(
        handshake(
            officer_client(&s, &old),
            s.server.clone(),
            ServerName::try_from("relay.rs.example").unwrap(),
        ),
        "expired",
    );
}

#[test]
fn client_refuses_a_server_of_the_wrong_authority() {
    let s = setup();
    // BA.SPS's relay answers where RS.MUP's is expected (same host name,
    // BA's CA): the client, trusting RS's CA from the roster, refuses.
    let impostor = forged_node(
        &s.ba,
        &format!("{URI_AUTHORITY}BA.SPS"),
        "relay.rs.example",
        now(),
        30,
    );
    let verifier = FederationVerifier::new(&s.roster, &OfficerTrust::load(&s.ba).unwrap()).unwrap();
    let server = tls::server_config(verifier, &impostor).unwrap();
    let (client, name) = peer_client(&s, &Credentials::node(&s.ba).unwrap());
    refused(handshake(client, server, name), "UnknownIssuer");
    // A certificate from RS's own CA that names another authority is refused too.
    let wrong = forged_node(
        &s.rs,
        &format!("{URI_AUTHORITY}BA.SPS"),
        "relay.rs.example",
        now(),
        30,
    );
    let verifier = FederationVerifier::new(&s.roster, &OfficerTrust::load(&s.rs).unwrap()).unwrap();
    let server = tls::server_config(verifier, &wrong).unwrap();
    let (client, name) = peer_client(&s, &Credentials::node(&s.ba).unwrap());
    refused(
        handshake(client, server, name),
        "expected the relay of RS.MUP",
    );
}

#[test]
fn alpn_must_fit_the_identity() {
    let s = setup();
    let ba = Credentials::node(&s.ba).unwrap();
    let err = s
        .verifier
        .identify(&ba.chain, Some(ALPN_OFFICER), UnixTime::now())
        .unwrap_err();
    assert!(matches!(err, TlsError::Alpn(_)), "{err}");
    let empty: [CertificateDer<'_>; 0] = [];
    assert!(
        s.verifier
            .identify(&empty, Some(ALPN_PEER), UnixTime::now())
            .is_err()
    );
    // The fixed clock: at a time before the certificates, the handshake fails.
    let old = tls::server_config_with_time(
        s.verifier.clone(),
        &Credentials::node(&s.rs).unwrap(),
        Arc::new(tls::FixedTime(Timestamp(now().0 - 30 * DAY))),
    )
    .unwrap();
    let (client, name) = peer_client(&s, &ba);
    refused(handshake(client, old, name), "not valid yet");
}

#[test]
fn renewed_node_certificate_accepted_without_roster_change() {
    let s = setup();
    let before = Credentials::node(&s.ba).unwrap();
    let fingerprint = Authority::open(&s.ba)
        .unwrap()
        .renew_node(30, now())
        .unwrap();
    let after = Credentials::node(&s.ba).unwrap();
    assert_ne!(before.chain, after.chain);
    assert_eq!(fingerprint, x509::fingerprint(&after.chain[0]));
    let (client, name) = peer_client(&s, &after);
    let conn = handshake(client, s.server.clone(), name).unwrap();
    assert_eq!(identify(&s, &conn).unwrap(), Identity::Peer(id("BA.SPS")));
}

/// The CA the roster lists for `who`.
fn roster_ca(s: &Setup, who: &str) -> CertificateDer<'static> {
    CertificateDer::from(s.roster.member(&id(who)).unwrap().tls_ca.clone())
}

fn fingerprint_of(chain: Option<&[CertificateDer<'_>]>) -> String {
    x509::fingerprint(chain.unwrap().first().unwrap())
}

#[test]
fn renewed_node_certificate_presented_by_new_handshakes_as_server_and_client() {
    let s = setup();
    let rs = id("RS.MUP");
    let cert_path = s.rs.join(authority::layout::NODE_CERT);
    let node = tls::NodeCertificate::new(
        &rs,
        &Credentials::node(&s.rs).unwrap(),
        &roster_ca(&s, "RS.MUP"),
        &cert_path,
    )
    .unwrap();
    let old = node.summary();
    let server = tls::node_server_config(s.verifier.clone(), node.clone()).unwrap();
    let ba = Credentials::node(&s.ba).unwrap();

    // As server: BA.SPS connecting sees the certificate in force.
    let (client, name) = peer_client(&s, &ba);
    let (c, _) = handshake_pair(client, server.clone(), name).unwrap();
    assert_eq!(fingerprint_of(c.peer_certificates()), old.fingerprint);

    // Renewed on the CA machine (new key, 30 days), put in force.
    let fp = Authority::open(&s.rs)
        .unwrap()
        .renew_node(30, now())
        .unwrap();
    let new = node
        .replace(
            &Credentials::node(&s.rs).unwrap(),
            &roster_ca(&s, "RS.MUP"),
            now(),
            &cert_path,
        )
        .unwrap();
    assert_eq!(new.fingerprint, fp);
    assert_ne!(new.fingerprint, old.fingerprint);
    assert!(new.not_after < old.not_after, "30 days, not 730");
    assert_eq!(node.summary(), new);

    // The same server configuration now presents the renewed certificate.
    let (client, name) = peer_client(&s, &ba);
    let (c, _) = handshake_pair(client, server.clone(), name).unwrap();
    assert_eq!(fingerprint_of(c.peer_certificates()), new.fingerprint);

    // As client: RS.MUP dialing BA.SPS presents the renewed certificate,
    // which BA.SPS identifies as RS.MUP.
    let ba_verifier =
        FederationVerifier::new(&s.roster, &OfficerTrust::load(&s.ba).unwrap()).unwrap();
    let ba_server = tls::server_config(ba_verifier.clone(), &ba).unwrap();
    let (client, name, _) =
        tls::node_peer_client_config(&s.roster, node.clone(), &id("BA.SPS")).unwrap();
    let (_, sc) = handshake_pair(client, ba_server, name).unwrap();
    assert_eq!(fingerprint_of(sc.peer_certificates()), new.fingerprint);
    assert_eq!(
        ba_verifier
            .identify(
                sc.peer_certificates().unwrap(),
                sc.alpn_protocol(),
                UnixTime::now()
            )
            .unwrap(),
        Identity::Peer(rs)
    );
}

/// `signed` as the next version, with `edit` applied, signed by keys 1 and 2.
fn next_version(
    signed: &kurir_certs::roster::SignedRoster,
    edit: impl FnOnce(&mut kurir_certs::roster::Editor),
) -> Roster {
    let mut editor = kurir_certs::roster::Editor::open(signed).unwrap();
    edit(&mut editor);
    let mut next = editor.finish(now()).unwrap();
    next.sign(&common::roster_key(1));
    next.sign(&common::roster_key(2));
    Roster::verify(&next.encode().unwrap(), now()).unwrap()
}

fn sha256_of(creds: &Credentials) -> [u8; 32] {
    kurir_certs::roster::parse_fingerprint(&x509::fingerprint(&creds.chain[0])).unwrap()
}

#[test]
fn a_node_certificate_the_roster_revokes_is_refused_by_the_relay_it_dials() {
    let f = common::federation();
    let roster = Roster::verify(&f.roster.encode().unwrap(), now()).unwrap();
    let verifier = FederationVerifier::new(&roster, &OfficerTrust::load(&f.rs).unwrap()).unwrap();
    let server = tls::server_config(verifier.clone(), &Credentials::node(&f.rs).unwrap()).unwrap();
    let ba = Credentials::node(&f.ba).unwrap();
    let dial = |r: &Roster, creds: &Credentials| {
        let (config, name, _) = tls::peer_client_config(r, creds, &id("RS.MUP")).unwrap();
        handshake(config, server.clone(), name)
    };
    // Before: accepted, and identified.
    let open = dial(&roster, &ba).unwrap();
    let chain = open.peer_certificates().unwrap().to_vec();
    let sha = sha256_of(&ba);
    let v2 = next_version(&f.roster, |e| {
        e.revoke_node_cert(&id("BA.SPS"), sha, "relay host stolen", now())
            .unwrap()
    });
    assert_eq!(
        v2.revoked_node_cert(&id("BA.SPS"), &ba.chain[0])
            .map(|r| r.reason.as_str()),
        Some("relay host stolen")
    );
    verifier.set_roster(&v2).unwrap();
    // At the handshake: refused, naming the member and the fingerprint.
    let hex = hex::encode(sha);
    refused(
        dial(&v2, &ba),
        &format!("node certificate sha256 {hex} of BA.SPS was revoked"),
    );
    // An identification after the handshake (what the relay does with
    // every connection) refuses the chain too.
    let err = verifier
        .identify(&chain, Some(ALPN_PEER), UnixTime::now())
        .unwrap_err();
    assert!(matches!(err, TlsError::NodeRevoked { ref member, .. } if member == &id("BA.SPS")));
    assert!(err.to_string().contains("relay host stolen"), "{err}");
    // RS.MUP's own node certificate is not affected, nor is a renewed one of BA.SPS.
    Authority::open(&f.ba)
        .unwrap()
        .renew_node(30, now())
        .unwrap();
    let renewed = Credentials::node(&f.ba).unwrap();
    let conn = dial(&v2, &renewed).unwrap();
    assert_eq!(
        verifier
            .identify(
                conn.peer_certificates().unwrap(),
                conn.alpn_protocol(),
                UnixTime::now()
            )
            .unwrap(),
        Identity::Peer(id("BA.SPS"))
    );
}

#[test]
fn bad_renewed_node_certificate_refused_and_the_one_in_force_kept() {
    let s = setup();
    let rs = id("RS.MUP");
    let ca = roster_ca(&s, "RS.MUP");
    let path = s.rs.join(authority::layout::NODE_CERT);
    let own = Credentials::node(&s.rs).unwrap();
    let node = tls::NodeCertificate::new(&rs, &own, &ca, &path).unwrap();
    let in_force = node.summary();
    let refuse = |creds: &Credentials, at: Timestamp, expect: &str| {
        let err = node.replace(creds, &ca, at, &path).unwrap_err().to_string();
        assert!(err.contains(expect), "expected {expect:?} in: {err}");
        assert!(err.contains("node.crt.pem"), "names the file: {err}");
        assert_eq!(node.summary(), in_force, "the certificate in force stays");
    };

    // Another authority's node certificate (its own key).
    let ba = Credentials::node(&s.ba).unwrap();
    refuse(&ba, now(), "not the relay of RS.MUP");
    // RS.MUP's certificate with another key.
    let ba_key = std::fs::read(s.ba.join(authority::layout::NODE_KEY)).unwrap();
    let mixed = Credentials::from_der(
        own.chain.clone(),
        PrivateKeyDer::from_pem_slice(&ba_key).unwrap(),
    );
    refuse(&mixed, now(), "does not fit the certificate");
    // A certificate that claims RS.MUP from BA.SPS's CA.
    let forged = forged_node(
        &s.ba,
        &format!("{URI_AUTHORITY}RS.MUP"),
        "relay.rs.example",
        now(),
        30,
    );
    refuse(
        &forged,
        now(),
        "chain to the CA the roster lists for RS.MUP",
    );
    // RS.MUP's own certificate, expired at the moment of the reload.
    refuse(
        &own,
        in_force.not_after.plus_millis(DAY),
        "it must be valid now",
    );
    // An empty file.
    let empty = Credentials::from_der(Vec::new(), own_key(&s));
    refuse(&empty, now(), "no certificate");
}

fn own_key(s: &Setup) -> PrivateKeyDer<'static> {
    let pem = std::fs::read(s.rs.join(authority::layout::NODE_KEY)).unwrap();
    PrivateKeyDer::from_pem_slice(&pem).unwrap()
}

#[test]
fn a_relay_refuses_to_dial_a_peer_whose_node_certificate_the_roster_revokes() {
    let f = common::federation();
    let roster = Roster::verify(&f.roster.encode().unwrap(), now()).unwrap();
    let verifier = FederationVerifier::new(&roster, &OfficerTrust::load(&f.rs).unwrap()).unwrap();
    let rs = Credentials::node(&f.rs).unwrap();
    let server = tls::server_config(verifier, &rs).unwrap();
    let ba = Credentials::node(&f.ba).unwrap();
    let v2 = next_version(&f.roster, |e| {
        e.revoke_node_cert(&id("RS.MUP"), sha256_of(&rs), "key leaked", now())
            .unwrap()
    });
    // BA.SPS, dialing RS.MUP with the roster that revokes RS.MUP's
    // certificate, ends the handshake itself.
    let (config, name, _) = tls::peer_client_config(&v2, &ba, &id("RS.MUP")).unwrap();
    let err = handshake(config, server.clone(), name).unwrap_err();
    let text = match &err {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            other.0.downcast_ref::<TlsError>().unwrap().to_string()
        }
        other => panic!("expected a refused certificate, got {other}"),
    };
    assert!(
        text.contains(&format!(
            "node certificate sha256 {} of RS.MUP was revoked",
            hex::encode(sha256_of(&rs))
        )),
        "{text}"
    );
    // With the roster before, the same dial succeeds.
    let (config, name, _) = tls::peer_client_config(&roster, &ba, &id("RS.MUP")).unwrap();
    handshake(config, server, name).unwrap();
}
