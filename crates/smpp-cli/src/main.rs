//! `smpp`: the command-line entry point. All work happens in the `smpp_cli` library.

use std::process::ExitCode;

fn main() -> ExitCode {
    smpp_cli::main()
}
