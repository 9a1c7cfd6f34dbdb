//! `kurir-relay` itself for the end-to-end tests: the binary's `main`
//! (`kurir_relay::commands::main`), built as a binary of this package so
//! that the tests find it through `CARGO_BIN_EXE_kurir-test-relay-cli`.
//! It sets no global allocator: the system's malloc.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    kurir_relay::commands::main(kurir_relay::commands::Allocator::System)
}
