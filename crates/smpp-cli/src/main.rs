//! `smpp`: the command-line entry point. All work happens in the `smpp_cli` library.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: a server allocates and frees
/// small buffers on one thread and frees some on another (the store's
/// writer), which glibc's malloc serves slowly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    smpp_cli::main()
}
