// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `cargo xtask soak [--ios N] [--subchannels N]`: the mock backend's seeded soak
//! (`crates/mock-backend/tests/soak.rs`) at scale, in release mode: by default 10,000
//! subchannels and 1,000,000 I/Os with faults. `cargo xtask test` runs the same soak small.

use crate::util;

const USAGE: &str = "usage: cargo xtask soak [--ios N] [--subchannels N]";

/// Parses `[--ios N] [--subchannels N]` into (I/Os, subchannels).
fn parse(args: &[String]) -> util::Result<(u64, u16)> {
    let mut ios = 1_000_000;
    let mut subchannels = 10_000;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--ios" => {
                let v = value()?;
                ios = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--ios: `{v}` is not a positive number"))?;
            }
            "--subchannels" => {
                let v = value()?;
                subchannels =
                    v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        format!("--subchannels: `{v}` is not a number in 1..=65535")
                    })?;
            }
            other => return Err(format!("unexpected argument `{other}`\n{USAGE}")),
        }
    }
    Ok((ios, subchannels))
}

/// Runs the soak at the requested size.
pub(crate) fn run(args: &[String]) -> util::Result {
    let (ios, subchannels) = parse(args)?;
    util::run(
        util::cargo()
            .env("CCW_SOAK_IOS", ios.to_string())
            .env("CCW_SOAK_SUBCHANNELS", subchannels.to_string())
            .args([
                "test",
                "--release",
                "-p",
                "mock-backend",
                "--test",
                "soak",
                "--",
                "--nocapture",
            ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(parse(&s(&[])), Ok((1_000_000, 10_000)));
        assert_eq!(parse(&s(&["--ios", "5000"])), Ok((5000, 10_000)));
        assert_eq!(
            parse(&s(&["--subchannels", "10", "--ios", "7"])),
            Ok((7, 10))
        );
        assert!(parse(&s(&["--ios"])).is_err());
        assert!(parse(&s(&["--ios", "0"])).is_err());
        assert!(parse(&s(&["--ios", "x"])).is_err());
        assert!(parse(&s(&["--subchannels", "70000"])).is_err());
        assert!(parse(&s(&["--subchannels", "0"])).is_err());
        assert!(parse(&s(&["extra"])).is_err());
    }
}
