// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `ccwctl`: run, trace and decode channel programs against simulated or real subchannels.
//!
//! The logic lives in the library (`ccwctl::cli`); this is only the entry point.

use clap::Parser;

fn main() -> std::process::ExitCode {
    ccwctl::cli::main_with(ccwctl::cli::Cli::parse())
}
