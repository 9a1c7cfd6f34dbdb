//! The officer's profile: which relay to talk to, with which certificate,
//! and the federation roster to verify what comes back.
//!
//! ```toml
//! relay = "127.0.0.1:7443"            # the relay's UDP socket address
//! server_name = "relay.rs.example"    # the DNS name in the relay's certificate
//! authority = "RS.MUP"                # the officer's own authority
//! officer_dir = "officer"             # officer.crt.pem, officer.key.pem, ca.crt.pem
//! roster = "roster.cbor"              # the signed federation roster (public)
//! # max_parcel_bytes = 8388608        # optional: the relay's parcel size limit
//! ```
//!
//! Relative paths are relative to the profile file. Unknown keys are refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kurir_proto::AuthorityId;
use serde::{Deserialize, Serialize};

use crate::exit::usage;

/// The environment variable naming the profile file.
pub const ENV: &str = "KURIR_PROFILE";

/// The profile file as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// `HOST:PORT` of the relay, as an IP socket address.
    pub relay: String,
    /// The DNS name the relay's certificate carries.
    pub server_name: String,
    /// The officer's authority.
    pub authority: String,
    /// The directory `kurir-certs officer issue` wrote.
    pub officer_dir: PathBuf,
    /// The roster file.
    pub roster: PathBuf,
    /// The largest parcel the relay accepts (default 8 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parcel_bytes: Option<usize>,
}

/// A loaded, checked profile with absolute paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The relay's address.
    pub relay: SocketAddr,
    /// The relay certificate's DNS name.
    pub server_name: String,
    /// The officer's authority.
    pub authority: AuthorityId,
    /// Officer certificate directory.
    pub officer_dir: PathBuf,
    /// The roster file.
    pub roster: PathBuf,
    /// The parcel size limit.
    pub max_parcel_bytes: usize,
}

/// Where the profile comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--profile FILE`.
    Flag(PathBuf),
    /// `KURIR_PROFILE`.
    Env(PathBuf),
    /// `$XDG_CONFIG_HOME/kurir/profile.toml` or `$HOME/.config/kurir/profile.toml`.
    Default(PathBuf),
}

impl Source {
    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            Source::Flag(p) | Source::Env(p) | Source::Default(p) => p,
        }
    }

    /// Picks the source: the flag, else the environment, else the default.
    pub fn pick(flag: Option<&Path>) -> Result<Source> {
        if let Some(p) = flag {
            return Ok(Source::Flag(p.to_owned()));
        }
        if let Some(p) = std::env::var_os(ENV).filter(|v| !v.is_empty()) {
            return Ok(Source::Env(PathBuf::from(p)));
        }
        default_path().map(Source::Default).ok_or_else(|| {
            usage(
                "no profile: neither --profile nor KURIR_PROFILE is set, and neither \
                 XDG_CONFIG_HOME nor HOME is set for the default location",
            )
        })
    }
}

/// `$XDG_CONFIG_HOME/kurir/profile.toml`, else `$HOME/.config/kurir/profile.toml`.
pub fn default_path() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(x) = var("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(x).join("kurir").join("profile.toml"));
    }
    var("HOME").map(|h| {
        PathBuf::from(h)
            .join(".config")
            .join("kurir")
            .join("profile.toml")
    })
}

impl Profile {
    /// Reads the profile from `source`. A missing file is an error, never a
    /// silent default.
    pub fn load(source: &Source) -> Result<Profile> {
        let path = source.path();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let how = match source {
                    Source::Flag(_) => "given with --profile",
                    Source::Env(_) => "named by KURIR_PROFILE",
                    Source::Default(_) => "the default location",
                };
                return Err(usage(format!(
                    "no profile at {} ({how}): create one with `kurir profile init` \
                     or name another with --profile",
                    path.display()
                )));
            }
            Err(e) => {
                return Err(usage(format!(
                    "cannot read the profile {}: {e}",
                    path.display()
                )));
            }
        };
        Profile::parse(&text, path)
    }

    /// Parses profile text read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Profile> {
        let file: ProfileFile = toml::from_str(text).map_err(|e| {
            usage(format!(
                "profile {}: {}",
                path.display(),
                e.to_string().trim()
            ))
        })?;
        Profile::from_file(file, path)
    }

    /// Checks the fields and resolves relative paths against `path`'s directory.
    pub fn from_file(file: ProfileFile, path: &Path) -> Result<Profile> {
        let bad = |field: &str, reason: String| {
            usage(format!("profile {}: `{field}`: {reason}", path.display()))
        };
        let relay: SocketAddr = file.relay.parse().map_err(|_| {
            bad(
                "relay",
                format!(
                    "{:?} is not an IP socket address (e.g. \"127.0.0.1:7443\")",
                    file.relay
                ),
            )
        })?;
        if file.server_name.trim().is_empty() {
            return Err(bad(
                "server_name",
                "empty: give the DNS name in the relay's certificate".into(),
            ));
        }
        let authority =
            AuthorityId::parse(&file.authority).map_err(|e| bad("authority", e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        Ok(Profile {
            path: path.to_owned(),
            relay,
            server_name: file.server_name,
            authority,
            officer_dir: resolve(&file.officer_dir),
            roster: resolve(&file.roster),
            max_parcel_bytes: file
                .max_parcel_bytes
                .unwrap_or(kurir_proto::DEFAULT_MAX_PARCEL),
        })
    }
}

/// Writes `file` to `out` as TOML; refuses to replace an existing file
/// unless `force`.
pub fn write(out: &Path, file: &ProfileFile, force: bool) -> Result<()> {
    if out.exists() && !force {
        return Err(usage(format!(
            "{} exists; nothing was overwritten (use --force to replace it)",
            out.display()
        )));
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the directory {}", dir.display()))?;
    }
    let text = format!(
        "# kurir profile (see docs/CLI.md). Relative paths are relative to this file.\n{}",
        toml::to_string(file).context("encoding the profile")?
    );
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{Exit, exit_of};

    #[test]
    fn relative_paths_are_relative_to_the_profile() {
        let p = Profile::parse(
            "relay = \"127.0.0.1:7443\"\nserver_name = \"localhost\"\nauthority = \"RS.MUP\"\n\
             officer_dir = \"officer\"\nroster = \"/etc/kurir/roster.cbor\"\n",
            Path::new("/home/ana/.config/kurir/profile.toml"),
        )
        .unwrap();
        assert_eq!(p.officer_dir, Path::new("/home/ana/.config/kurir/officer"));
        assert_eq!(p.roster, Path::new("/etc/kurir/roster.cbor"));
        assert_eq!(p.max_parcel_bytes, kurir_proto::DEFAULT_MAX_PARCEL);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let base = "relay = \"127.0.0.1:7443\"\nserver_name = \"localhost\"\n\
                    authority = \"RS.MUP\"\nofficer_dir = \"o\"\nroster = \"r\"\n";
        let err =
            Profile::parse(&format!("{base}colour = \"red\"\n"), Path::new("p.toml")).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        assert_eq!(exit_of(&err), Exit::Usage);
        let err = Profile::parse(
            &base.replace("127.0.0.1:7443", "relay.example"),
            Path::new("p.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("`relay`"), "{err}");
        let err =
            Profile::parse(&base.replace("RS.MUP", "serbia"), Path::new("p.toml")).unwrap_err();
        assert!(err.to_string().contains("`authority`"), "{err}");
    }

    #[test]
    fn a_missing_profile_is_an_error_never_a_default() {
        let err = Profile::load(&Source::Flag("/nonexistent/kurir.toml".into())).unwrap_err();
        assert!(err.to_string().contains("--profile"), "{err}");
        assert_eq!(exit_of(&err), Exit::Usage);
    }

    #[test]
    fn write_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sub/profile.toml");
        let file = ProfileFile {
            relay: "127.0.0.1:7443".into(),
            server_name: "localhost".into(),
            authority: "RS.MUP".into(),
            officer_dir: "/o".into(),
            roster: "/r".into(),
            max_parcel_bytes: None,
        };
        write(&out, &file, false).unwrap();
        assert!(write(&out, &file, false).is_err());
        write(&out, &file, true).unwrap();
        let back = Profile::load(&Source::Flag(out)).unwrap();
        assert_eq!(back.authority.as_str(), "RS.MUP");
    }
}
