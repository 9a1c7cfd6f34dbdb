//! The `kurir` command line, built in this package for its end-to-end tests
//! (`tests/cli.rs`): the same `kurir_client::main` the `kurir` binary runs
//! (its `main.rs` is that one call), so the tests drive exactly the officer's
//! command line. A binary of this package, rather than `kurir` itself, so
//! that `cargo test -p kurir-tests` builds it from the current sources and
//! the tests find it through `CARGO_BIN_EXE_kurir-test-cli`; the program
//! names itself `kurir` in its help and messages.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    kurir_client::main()
}
