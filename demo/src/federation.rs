//! Founding a complete local federation in one directory: each authority's
//! PKI, a roster signed by 2 of 3 roster keys, officer certificates, a
//! `relay.toml` per authority, and pre-bound UDP sockets on 127.0.0.1 so the
//! roster can name real ports. Used by the demo (`kurir-demo`), the test
//! harness and the benchmarks; it calls the same `kurir-certs` library functions the
//! `kurir-certs` commands do.
//!
//! ```text
//! DIR/
//!   roster.cbor
//!   RS.MUP/authority/...      (kurir-certs authority init)
//!   RS.MUP/officers/<name>/   (kurir-certs officer issue)
//!   RS.MUP/data/              (the relay's store)
//!   RS.MUP/relay.toml
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};

use kurir_certs::authority::{self, Authority, InitParams};
use kurir_certs::files::Overwrite;
use kurir_certs::officer::{self, Role};
use kurir_certs::roster::{Editor, FocalPoint, Member, RosterKey, member_from_file};
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::{AuthorityId, Timestamp};

use kurir_relay::config::RelayConfig;

/// Host name every demo relay certificate carries; it resolves to loopback.
pub const LOCAL_HOST: &str = "localhost";

/// One member to found.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// Authority id.
    pub id: AuthorityId,
    /// Display name.
    pub name: String,
    /// Officers to issue certificates for: (name, role).
    pub officers: Vec<(String, Role)>,
    /// Names the roster lists as the member's focal points (who may read
    /// H3 bodies at its relay: an officer whose certificate carries one of
    /// these names).
    pub focal_points: Vec<String>,
}

/// A founded member.
#[derive(Debug)]
pub struct FoundedMember {
    /// Authority id.
    pub id: AuthorityId,
    /// The authority directory.
    pub authority_dir: PathBuf,
    /// The relay's configuration file.
    pub config_path: PathBuf,
    /// The socket the relay must use (bound to 127.0.0.1, port from the OS).
    pub socket: Option<UdpSocket>,
    /// The address of that socket.
    pub addr: SocketAddr,
    /// Officer certificate directories: (name, role, dir).
    pub officers: Vec<(String, Role, PathBuf)>,
}

impl FoundedMember {
    /// The officer directory of the officer with this name.
    pub fn officer_dir(&self, name: &str) -> Option<&Path> {
        self.officers
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, d)| d.as_path())
    }

    /// Reads this member's relay configuration.
    pub fn config(&self) -> Result<RelayConfig, FoundError> {
        Ok(RelayConfig::load(&self.config_path)?)
    }
}

/// A founded federation.
#[derive(Debug)]
pub struct Federation {
    /// The directory everything is in.
    pub dir: PathBuf,
    /// The signed roster.
    pub roster_path: PathBuf,
    /// The members, in the order given (then those that joined).
    pub members: Vec<FoundedMember>,
    /// The three roster keys (threshold 2) the founding roster is signed
    /// with, kept so that a later version can be signed ([`Federation::join`]).
    pub roster_keys: Vec<SigningKey>,
}

impl Federation {
    /// The member with this id.
    pub fn member(&self, id: &AuthorityId) -> Option<&FoundedMember> {
        self.members.iter().find(|m| &m.id == id)
    }

    /// The member with this id, mutably (to take its socket).
    pub fn member_mut(&mut self, id: &AuthorityId) -> Option<&mut FoundedMember> {
        self.members.iter_mut().find(|m| &m.id == id)
    }

    /// A new authority joins: its PKI, officers and `relay.toml` are made
    /// in `dir` as at founding (its `[roster] path` is the federation's
    /// roster file), and the roster entry for it is returned, to be added
    /// to a new version of the roster ([`Editor::add_member`]) and signed.
    pub fn join(&mut self, spec: &MemberSpec, now: Timestamp) -> Result<Member, FoundError> {
        let (founded, member) = found_member(&self.dir, spec, now)?;
        self.members.push(founded);
        Ok(member)
    }
}

/// Something went wrong while founding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FoundError {
    /// A file or socket could not be created.
    #[error("founding the federation: {what}: {source}")]
    Io {
        /// What was being created.
        what: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Keys, certificates or an authority directory.
    #[error("founding the federation: {0}")]
    Pki(#[from] kurir_certs::PkiError),
    /// The roster could not be built, signed or saved.
    #[error("founding the federation: {0}")]
    Roster(#[from] kurir_certs::RosterError),
    /// A founded relay's configuration does not load.
    #[error("founding the federation: {0}")]
    Config(#[from] kurir_relay::config::ConfigError),
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> FoundError {
    let what = what.to_string();
    move |source| FoundError::Io { what, source }
}

/// Founds a federation of `members` in `dir` at time `now`.
pub fn found(dir: &Path, members: &[MemberSpec], now: Timestamp) -> Result<Federation, FoundError> {
    std::fs::create_dir_all(dir).map_err(io(dir.display()))?;
    let roster_keys: Vec<_> = (0..3)
        .map(|_| kurir_certs::keys::generate_ed25519())
        .collect::<Result<_, _>>()?;
    let mut editor = Editor::create(
        2,
        roster_keys
            .iter()
            .enumerate()
            .map(|(i, k)| RosterKey {
                label: format!("roster officer {}", i + 1),
                key: k.verifying_key(),
            })
            .collect(),
        now,
    )?;
    let roster_path = dir.join("roster.cbor");
    let mut founded = Vec::new();
    for spec in members {
        let (member, entry) = found_member(dir, spec, now)?;
        editor.add_member(entry)?;
        founded.push(member);
    }
    let mut signed = editor.finish(now)?;
    signed.sign(&roster_keys[0]);
    signed.sign(&roster_keys[1]);
    signed.save(&roster_path)?;
    Ok(Federation {
        dir: dir.to_owned(),
        roster_path,
        members: founded,
        roster_keys,
    })
}

/// One member's PKI, officers, `relay.toml` and socket in `dir`, and its
/// roster entry.
fn found_member(
    dir: &Path,
    spec: &MemberSpec,
    now: Timestamp,
) -> Result<(FoundedMember, Member), FoundError> {
    let home = dir.join(spec.id.as_str());
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(io("a socket on 127.0.0.1"))?;
    let addr = socket.local_addr().map_err(io("a socket on 127.0.0.1"))?;
    let authority_dir = home.join("authority");
    authority::init(
        &authority_dir,
        &InitParams {
            id: spec.id.clone(),
            name: spec.name.clone(),
            relay_host: LOCAL_HOST.into(),
            relay_port: addr.port(),
            ca_days: 3650,
            node_days: 365,
            key_days: kurir_certs::authority::DEFAULT_KEY_DAYS,
            now,
            overwrite: Overwrite::Refuse,
        },
    )?;
    let mut member = member_from_file(&authority_dir.join(authority::layout::MEMBER))?;
    member.focal_points = spec
        .focal_points
        .iter()
        .map(|name| FocalPoint {
            name: name.clone(),
            role: "focal point".into(),
            phone: String::new(),
            email: String::new(),
        })
        .collect();
    let auth = Authority::open(&authority_dir)?;
    let mut officers = Vec::new();
    for (name, role) in &spec.officers {
        let out = home.join("officers").join(name.replace(' ', "_"));
        officer::issue(&auth, name, Some(*role), 365, now, &out, Overwrite::Refuse)?;
        officers.push((name.clone(), *role, out));
    }
    let config_path = home.join("relay.toml");
    let config = format!(
        "[identity]\nauthority = \"{id}\"\nauthority_dir = \"authority\"\n\n\
             [network]\nlisten = \"{addr}\"\n\n\
             [roster]\npath = \"../roster.cbor\"\n\n\
             [storage]\ndata_dir = \"data\"\ndurability = \"process-crash\"\n\n\
             [retry]\ninitial_secs = 1\nmax_secs = 5\n",
        id = spec.id,
    );
    std::fs::write(&config_path, config).map_err(io(config_path.display()))?;
    Ok((
        FoundedMember {
            id: spec.id.clone(),
            authority_dir,
            config_path,
            socket: Some(socket),
            addr,
            officers,
        },
        member,
    ))
}

/// `GET /metrics` of a running relay at `addr` (its `[metrics] listen`
/// address): the whole HTTP answer, head and body, on a connection closed
/// after it. For the test harness and the benchmarks.
pub async fn scrape_metrics(addr: SocketAddr) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}
