//! `kurir-relay`: thin binary over the `kurir_relay` library (the commands
//! are in `kurir_relay::commands`). It chooses the process's global
//! allocator: jemalloc by default (the feature `jemalloc`, configured when
//! it is built: `.cargo/config.toml`), mimalloc with the feature `mimalloc`,
//! the system's malloc with neither (docs/PERFORMANCE.md, "jemalloc by
//! default"). `--version` and the start-up log line name it.

#![forbid(unsafe_code)]

#[cfg(all(feature = "mimalloc", feature = "jemalloc"))]
compile_error!(
    "the features `mimalloc` and `jemalloc` exclude each other: jemalloc is the default, so \
     build mimalloc with `--no-default-features --features mimalloc`"
);

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The allocator set above.
const ALLOCATOR: kurir_relay::commands::Allocator = if cfg!(feature = "mimalloc") {
    kurir_relay::commands::Allocator::Mimalloc
} else if cfg!(feature = "jemalloc") {
    kurir_relay::commands::Allocator::Jemalloc
} else {
    kurir_relay::commands::Allocator::System
};

fn main() -> std::process::ExitCode {
    kurir_relay::commands::main(ALLOCATOR)
}
