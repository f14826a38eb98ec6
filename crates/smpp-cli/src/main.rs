//! `smpp`: the command-line entry point. All work happens in the `smpp_cli` library.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: on the durable path a session
/// allocates what the store's writer thread frees, which glibc's malloc
/// serves slowly (end to end at the same commit, durable, 1 bind window 256:
/// 219k/s with mimalloc against 125k/s; its price is memory: about 10 KiB
/// more per idle session on a fresh server; docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    smpp_cli::main()
}
