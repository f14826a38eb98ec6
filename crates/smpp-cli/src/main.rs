//! `smpp`: the command-line entry point. All work happens in the `smpp_cli` library.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: on the durable path a session
/// allocates what the store's writer thread frees, which glibc's malloc
/// serves slowly (end to end at the same commit, durable, 1 bind window 256:
/// 219k/s with mimalloc against 125k/s; its price is memory: about 10 KiB
/// more per idle session on a fresh server; docs/BENCHMARKS.md).
///
/// Built without transparent huge pages (`no_thp`): with them, mimalloc
/// asks the kernel for 2 MiB pages, and the first touch of each one zeroes
/// 2 MiB at once. On the VM we measure on that took 10-14 ms, inside the
/// store writer's commit, and it was the durable path's tail: p99 at
/// 35,000/s fell from 1.8-9.5 ms to 1.4-2.3 ms with the store on tmpfs, and
/// p99.9 from 10-19 ms to 4-6 ms, throughput in memory unchanged.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    smpp_cli::main()
}
