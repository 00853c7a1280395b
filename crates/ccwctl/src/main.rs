// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `ccwctl`: run, trace and decode channel programs against simulated or real subchannels.
//!
//! The command-line tool is issue #7 and is not implemented yet; this binary only says so.

fn main() -> std::process::ExitCode {
    eprintln!(
        "ccwctl: not implemented yet (see issue #7); try `cargo run -p ccw-types --example decode`"
    );
    std::process::ExitCode::from(2)
}
