//! `kurir-docgen`: renders the man pages and shell completions of
//! `kurir-relay`, `kurir` and `kurir-certs` from their clap definitions, for
//! the Debian package (`packaging/deb/build.sh`).
//!
//! # Layout
//!
//! One file. [`render`] writes, under the output directory:
//!
//! - `man/`: a section-1 page per binary and per (visible) subcommand,
//!   e.g. `kurir-relay.1`, `kurir-relay-run.1`, `kurir-audit-verify.1`;
//! - `bash/NAME`, `zsh/_NAME`, `fish/NAME.fish`: the completions of each
//!   binary, named as Debian's bash-completion, zsh and fish look for them.
//!
//! Only this tool links the daemon's and the CLI's command lines together;
//! `kurir-relay` and `kurir` still do not link each other.

#![forbid(unsafe_code)]

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use clap_complete::Shell;

/// Renders the man pages and shell completions of the kurir binaries from
/// their clap definitions.
///
/// Example: kurir-docgen --out target/docgen
#[derive(Debug, Parser)]
#[command(name = "kurir-docgen", version)]
struct Args {
    /// Where to write man/, bash/, zsh/ and fish/ (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match render(&args.out) {
        Ok(n) => {
            println!("wrote {n} files under {}", args.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kurir-docgen: {e}");
            ExitCode::from(1)
        }
    }
}

/// The three command lines, by binary name.
fn commands() -> [(&'static str, clap::Command); 3] {
    [
        ("kurir-relay", kurir_relay::cli::Cli::command()),
        ("kurir", kurir_client::cli::Cli::command()),
        ("kurir-certs", kurir_certs::cli::Cli::command()),
    ]
}

/// An I/O failure with the path it happened at.
#[derive(Debug)]
struct RenderError {
    path: PathBuf,
    source: std::io::Error,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot write {}: {} (is the output directory writable?)",
            self.path.display(),
            self.source
        )
    }
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> RenderError + '_ {
    move |source| RenderError {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes every man page and completion under `out`; returns how many files.
fn render(out: &Path) -> Result<usize, RenderError> {
    let man = out.join("man");
    fs::create_dir_all(&man).map_err(at(&man))?;
    let shells = [
        (Shell::Bash, "bash", "", ""),
        (Shell::Zsh, "zsh", "_", ""),
        (Shell::Fish, "fish", "", ".fish"),
    ];
    for (_, dir, _, _) in &shells {
        let d = out.join(dir);
        fs::create_dir_all(&d).map_err(at(&d))?;
    }
    for (name, cmd) in commands() {
        clap_mangen::generate_to(cmd.clone(), &man).map_err(at(&man))?;
        for (shell, dir, prefix, suffix) in &shells {
            let path = out.join(dir).join(format!("{prefix}{name}{suffix}"));
            let file = File::create(&path).map_err(at(&path))?;
            let mut w = BufWriter::new(file);
            clap_complete::generate(*shell, &mut cmd.clone(), name, &mut w);
            w.flush().map_err(at(&path))?;
        }
    }
    let mut n = 0;
    for dir in ["man", "bash", "zsh", "fish"] {
        let d = out.join(dir);
        n += fs::read_dir(&d).map_err(at(&d))?.count();
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: PathBuf) -> String {
        fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn renders_pages_and_completions_from_the_clap_definitions() {
        let dir = tempfile::tempdir().unwrap();
        let n = render(dir.path()).unwrap();

        // The daemon's page and its subcommands' pages, with their flags.
        let relay = read(dir.path().join("man/kurir-relay.1"));
        assert!(relay.contains(".TH kurir-relay 1"), "{relay}");
        // The daemon's, not a page of some `kurir relay` subcommand.
        assert!(relay.contains("The kurir relay"), "{relay}");
        assert!(relay.contains(r"kurir\-relay\-audit\-export(1)"), "{relay}");
        let run = read(dir.path().join("man/kurir-relay-run.1"));
        assert!(run.contains("config"), "{run}");
        // Nested subcommands of the officer's CLI and of kurir-certs.
        assert!(dir.path().join("man/kurir-audit-verify.1").is_file());
        let init = read(dir.path().join("man/kurir-certs-authority-init.1"));
        assert!(init.contains("Exit codes"), "{init}");

        // Completions, named where Debian's shells look for them.
        for name in ["kurir-relay", "kurir", "kurir-certs"] {
            let bash = read(dir.path().join("bash").join(name));
            assert!(bash.contains(&format!("complete -F _{}", name.replace('-', "__"))));
            let zsh = read(dir.path().join("zsh").join(format!("_{name}")));
            assert!(zsh.starts_with(&format!("#compdef {name}")), "{zsh}");
            let fish = read(dir.path().join("fish").join(format!("{name}.fish")));
            assert!(fish.contains(&format!("complete -c {name}")), "{fish}");
        }
        let bash = read(dir.path().join("bash/kurir-relay"));
        assert!(
            bash.contains("audit-export") && bash.contains("--data-dir"),
            "{bash}"
        );
        assert_eq!(n, fs::read_dir(dir.path().join("man")).unwrap().count() + 9);
    }

    #[test]
    fn an_unwritable_output_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"not a directory").unwrap();
        let err = render(&blocker).unwrap_err().to_string();
        assert!(
            err.contains("cannot write") && err.contains("file"),
            "{err}"
        );
    }
}
