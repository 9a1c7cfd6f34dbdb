//! `kurir profile init|show` and `kurir whoami`.

use anyhow::Result;
use kurir_proto::api::{Request, Response};
use serde_json::json;

use super::{Ctx, Session, now, unexpected};
use crate::cli::{ProfileCmd, ProfileInit};
use crate::exit::usage;
use crate::profile::{self, Profile, ProfileFile, Source};

/// `kurir profile ...`
pub fn run(ctx: &Ctx, cmd: ProfileCmd) -> Result<()> {
    match cmd {
        ProfileCmd::Init(a) => init(ctx, a),
        ProfileCmd::Show => {
            let profile = Profile::load(&Source::pick(ctx.profile_flag.as_deref())?)?;
            print_profile(ctx, &profile);
            Ok(())
        }
    }
}

fn absolute(p: &std::path::Path, what: &str) -> Result<std::path::PathBuf> {
    std::fs::canonicalize(p).map_err(|e| usage(format!("{what} {}: {e}", p.display())))
}

fn init(ctx: &Ctx, a: ProfileInit) -> Result<()> {
    let out = match &a.out {
        Some(p) => p.clone(),
        None => Source::pick(ctx.profile_flag.as_deref())?.path().to_owned(),
    };
    let officer_dir = absolute(&a.officer_dir, "--officer-dir")?;
    for f in [
        kurir_certs::officer::officer_layout::CERT,
        kurir_certs::officer::officer_layout::KEY,
        kurir_certs::officer::officer_layout::CA,
    ] {
        if !officer_dir.join(f).is_file() {
            return Err(usage(format!(
                "--officer-dir {} has no {f}: give the directory `kurir-certs officer issue` wrote",
                officer_dir.display()
            )));
        }
    }
    let roster = absolute(&a.roster, "--roster")?;
    let file = ProfileFile {
        relay: a.relay,
        server_name: a.server_name,
        authority: a.authority,
        officer_dir,
        roster,
        max_parcel_bytes: None,
    };
    // Check it as it will be read, before writing anything.
    let checked = Profile::from_file(file.clone(), &out)?;
    super::load_roster(&checked, now())?;
    profile::write(&out, &file, a.force)?;
    ctx.out.text(format!("wrote the profile {}", out.display()));
    print_profile(ctx, &checked);
    Ok(())
}

fn print_profile(ctx: &Ctx, p: &Profile) {
    ctx.out.line(
        "profile",
        json!({
            "path": p.path.display().to_string(),
            "relay": p.relay.to_string(),
            "server_name": p.server_name,
            "authority": p.authority.as_str(),
            "officer_dir": p.officer_dir.display().to_string(),
            "roster": p.roster.display().to_string(),
            "max_parcel_bytes": p.max_parcel_bytes,
        }),
    );
    ctx.out.text(format!(
        "profile      {}\nrelay        {} ({})\nauthority    {}\nofficer_dir  {}\nroster       {}",
        p.path.display(),
        p.relay,
        p.server_name,
        p.authority,
        p.officer_dir.display(),
        p.roster.display()
    ));
}

/// `kurir whoami`
pub async fn whoami(ctx: &Ctx, s: &Session) -> Result<()> {
    match s.call(&Request::Whoami).await? {
        Response::Identity {
            authority,
            officer,
            role,
        } => {
            ctx.out.line(
                "identity",
                json!({ "authority": authority.as_str(), "officer": officer, "role": role }),
            );
            ctx.out.text(format!(
                "{officer} ({role}) at {authority}, relay {}; roster version {}",
                s.profile.relay,
                s.roster.version()
            ));
            Ok(())
        }
        other => Err(unexpected(&other)),
    }
}
