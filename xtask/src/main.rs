// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `cargo xtask`: the project's automation, written in Rust so it runs wherever cargo does.
//!
//! Each command lives in its own module; `main` only dispatches. Run `cargo xtask help`.

mod bench;
mod docs;
mod fuzz;
mod lint;
mod loom;
mod s390x;
mod soak;
mod summary;
mod test;
mod util;

use std::process::ExitCode;

/// One entry of the command table: name, one-line help, entry point.
type Command = (&'static str, &'static str, fn(&[String]) -> util::Result);

const COMMANDS: &[Command] = &[
    (
        "test",
        "run every test of the workspace on the mock backend",
        test::run,
    ),
    (
        "lint",
        "cargo fmt --check, clippy -D warnings on all targets, rustdoc -D warnings, docs up to date",
        lint::run,
    ),
    (
        "docs",
        "generate docs/fsm.md from css_core::fsm::transition",
        docs::run,
    ),
    (
        "loom",
        "loom models of css-core's locking (RUSTFLAGS=--cfg loom, release)",
        loom::run,
    ),
    ("ci", "what .ci/run runs: test, lint, loom, s390x", ci),
    (
        "bench",
        "criterion benchmarks: bench [filter] [-- criterion args]",
        bench::run,
    ),
    (
        "s390x",
        "big-endian unit tests under qemu-user, vfio-ccw in an emulated s390x guest",
        s390x::run,
    ),
    (
        "host-tools",
        "host packages of the lanes: host-tools <install <qemu|hercules> | check-fresh>",
        s390x::host_tools,
    ),
    (
        "soak",
        "the seeded soak at scale: soak [--ios N] [--subchannels N] (default 1,000,000 / 10,000)",
        soak::run,
    ),
    (
        "fuzz",
        "run cargo-fuzz targets on stable: fuzz <target|all> [--secs N]",
        fuzz::run,
    ),
];

fn ci(args: &[String]) -> util::Result {
    util::no_args("ci", args)?;
    test::run(&[])?;
    lint::run(&[])?;
    loom::run(&[])?;
    s390x::run(&[])?;
    Ok(())
}

fn usage() -> String {
    let mut s = String::from("usage: cargo xtask <command> [args]\n\ncommands:\n");
    for (name, help, _) in COMMANDS {
        s.push_str(&format!("  {name:<10} {help}\n"));
    }
    s
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{}", usage());
        return ExitCode::from(2);
    };
    if cmd == "help" || cmd == "--help" || cmd == "-h" {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    }
    let Some((_, _, run)) = COMMANDS.iter().find(|(name, _, _)| name == cmd) else {
        eprintln!("xtask: unknown command `{cmd}`\n");
        eprint!("{}", usage());
        return ExitCode::from(2);
    };
    match run(&args[1..]) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}
