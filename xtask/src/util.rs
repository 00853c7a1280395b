// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Small helpers shared by the xtask commands: running cargo, locating the workspace.

use std::path::PathBuf;
use std::process::Command;

/// The error of an xtask command: a sentence for the person at the terminal.
pub(crate) type Error = String;
/// The result of an xtask command.
pub(crate) type Result<T = ()> = std::result::Result<T, Error>;

/// The workspace root (the parent of this crate's manifest directory).
pub(crate) fn root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map(PathBuf::from).unwrap_or(dir)
}

/// The cargo that is running us, so toolchain overrides are respected.
pub(crate) fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root());
    cmd
}

/// Runs a command to completion, inheriting stdio; fails with the command line on non-zero exit.
pub(crate) fn run(cmd: &mut Command) -> Result {
    let line = format!("{cmd:?}");
    eprintln!("xtask: running {line}");
    let status = cmd
        .status()
        .map_err(|e| format!("could not start {line}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{line} failed with {status}"))
    }
}

/// Rejects arguments for commands that take none.
pub(crate) fn no_args(name: &str, args: &[String]) -> Result {
    if args.is_empty() {
        Ok(())
    } else {
        Err(format!("`{name}` takes no arguments, got {args:?}"))
    }
}
