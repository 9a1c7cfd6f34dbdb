//! `kurir`: the command-line tool for officers. Everything is in the
//! `kurir_client` library; see its docs and `docs/CLI.md`.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    kurir_client::main()
}
