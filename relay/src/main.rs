//! `kurir-relay`: thin binary over the `kurir_relay` library (the commands
//! are in `kurir_relay::commands`).

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    kurir_relay::commands::main()
}
