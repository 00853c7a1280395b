// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A fresh machine's dpkg status, derived from this machine's: the packages a lane installs, and
//! every package that is installed only because they are, removed.
//!
//! A machine that ran the lane once keeps what it installed, so a real install there proves
//! nothing about a fresh machine (issue: qemu-system-s390x and libelf-dev resolved on a used
//! machine but not on a new one). Simulating the install (`apt-get -s`) against the status file
//! this module writes does: it is what `apt-get purge <lane packages> && apt-get autoremove`
//! would leave, computed without touching the machine.
//!
//! The rule: start from the lane's packages and everything they depend on (`Depends`,
//! `Pre-Depends`, through `Provides` and every alternative); then give back to the machine every
//! such package that something outside that set still depends on, until nothing changes. What is
//! left was pulled in by the lane alone.

use std::collections::{BTreeMap, BTreeSet};

/// One stanza of a dpkg status file, with the fields the derivation reads.
#[derive(Debug, Clone)]
struct Stanza<'a> {
    text: &'a str,
    package: &'a str,
    installed: bool,
    /// Every package name a dependency field mentions (all alternatives, versions dropped).
    depends: Vec<&'a str>,
    provides: Vec<&'a str>,
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(v) = line.strip_prefix(name).and_then(|r| r.strip_prefix(':')) {
            // dpkg folds long fields onto continuation lines that start with a space.
            let start = v.as_ptr() as usize - text.as_ptr() as usize;
            let mut end = start + v.len();
            for cont in lines.by_ref() {
                if cont.starts_with(' ') || cont.starts_with('\t') {
                    end = cont.as_ptr() as usize - text.as_ptr() as usize + cont.len();
                } else {
                    break;
                }
            }
            return Some(text[start..end].trim());
        }
    }
    None
}

/// Package names in a relationship field: `a (>= 1) | b:any, c` -> `a`, `b`, `c`.
fn names(value: &str) -> impl Iterator<Item = &str> {
    value.split([',', '|']).filter_map(|alt| {
        let name = alt.trim().split([' ', '(', '[']).next()?;
        let name = name.split(':').next()?;
        (!name.is_empty()).then_some(name)
    })
}

fn parse(status: &str) -> Vec<Stanza<'_>> {
    status
        .split("\n\n")
        .filter(|t| !t.trim().is_empty())
        .filter_map(|text| {
            let package = field(text, "Package")?;
            let installed = field(text, "Status").is_some_and(|s| s.ends_with(" installed"));
            let mut depends: Vec<&str> = Vec::new();
            for f in ["Depends", "Pre-Depends"] {
                if let Some(v) = field(text, f) {
                    depends.extend(names(v));
                }
            }
            let provides = field(text, "Provides").map_or_else(Vec::new, |v| names(v).collect());
            Some(Stanza {
                text,
                package,
                installed,
                depends,
                provides,
            })
        })
        .collect()
}

/// The names of the installed packages a fresh machine would not have: `lane` and what only it
/// pulled in.
pub(crate) fn lane_only<'a>(status: &'a str, lane: &[&str]) -> BTreeSet<&'a str> {
    let stanzas: Vec<Stanza<'a>> = parse(status).into_iter().filter(|s| s.installed).collect();
    // Name (real or provided) -> the installed packages answering to it.
    let mut answers: BTreeMap<&str, BTreeSet<&'a str>> = BTreeMap::new();
    let mut deps: BTreeMap<&'a str, Vec<&'a str>> = BTreeMap::new();
    for s in &stanzas {
        answers.entry(s.package).or_default().insert(s.package);
        for p in &s.provides {
            answers.entry(p).or_default().insert(s.package);
        }
        deps.entry(s.package).or_default().extend(&s.depends);
    }
    let resolve = |name: &str| answers.get(name).into_iter().flatten().copied();

    // Everything the lane reaches.
    let mut removed: BTreeSet<&'a str> = BTreeSet::new();
    let mut todo: Vec<&'a str> = lane.iter().flat_map(|n| resolve(n)).collect();
    while let Some(p) = todo.pop() {
        if removed.insert(p) {
            todo.extend(deps[p].iter().flat_map(|d| resolve(d)));
        }
    }
    // Give back what the rest of the machine needs, until nothing changes. The lane's own
    // packages are never given back: they are what a fresh machine lacks by definition.
    let lane_set: BTreeSet<&'a str> = lane.iter().flat_map(|n| resolve(n)).collect();
    loop {
        let needed: BTreeSet<&'a str> = deps
            .iter()
            .filter(|(p, _)| !removed.contains(*p))
            .flat_map(|(_, ds)| ds.iter().flat_map(|d| resolve(d)))
            .filter(|p| removed.contains(p) && !lane_set.contains(p))
            .collect();
        if needed.is_empty() {
            return removed;
        }
        for p in needed {
            removed.remove(p);
        }
    }
}

/// `status` without the stanzas of `drop`.
pub(crate) fn without(status: &str, drop: &BTreeSet<&str>) -> String {
    let mut out = String::with_capacity(status.len());
    for s in parse(status) {
        if !drop.contains(s.package) {
            out.push_str(s.text.trim_matches('\n'));
            out.push_str("\n\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
Package: base
Status: install ok installed
Depends: libc6 (>= 2.36), libelf1 (= 0.192-4~bpo12+1)

Package: libc6
Status: install ok installed

Package: libelf1
Status: install ok installed
Depends: libc6

Package: qemu-system-s390x
Status: install ok installed
Depends: qemu-system-common (= 1:10.0.2), qemu-system-data | qemu-data-virtual, libc6:any
Pre-Depends: dpkg

Package: qemu-system-common
Status: install ok installed
Depends: libfdt1,
 libslirp0
Provides: qemu-common-virtual

Package: qemu-system-data
Status: install ok installed

Package: libfdt1
Status: install ok installed

Package: libslirp0
Status: install ok installed

Package: libelf-dev
Status: install ok installed
Depends: libelf1 (= 0.192-4~bpo12+1), zlib1g-dev

Package: zlib1g-dev
Status: install ok installed

Package: user-tool
Status: install ok installed
Depends: libslirp0

Package: old
Status: deinstall ok config-files
";

    #[test]
    fn the_lane_and_what_only_it_pulled_in_go() {
        let gone = lane_only(STATUS, &["qemu-system-s390x", "libelf-dev"]);
        let want: BTreeSet<&str> = [
            "qemu-system-s390x",
            "qemu-system-common",
            "qemu-system-data",
            "libfdt1",
            "libelf-dev",
            "zlib1g-dev",
        ]
        .into();
        // libc6 and libelf1 stay (base needs them), libslirp0 stays (user-tool needs it).
        assert_eq!(gone, want);
    }

    #[test]
    fn a_lane_package_the_machine_needs_is_still_removed() {
        // A fresh machine lacks the lane's packages even if something depends on them here.
        let gone = lane_only(STATUS, &["libslirp0"]);
        assert_eq!(gone, ["libslirp0"].into());
    }

    #[test]
    fn the_written_status_keeps_everything_else_whole() {
        let gone = lane_only(STATUS, &["qemu-system-s390x"]);
        let out = without(STATUS, &gone);
        assert!(!out.contains("Package: qemu-system-common"));
        assert!(out.contains("Package: libslirp0\nStatus: install ok installed\n"));
        assert!(out.contains("Package: base\nStatus: install ok installed\nDepends: libc6"));
        assert!(
            out.contains("Package: old"),
            "non-installed stanzas pass through"
        );
        assert_eq!(
            field(STATUS, "Depends"),
            Some("libc6 (>= 2.36), libelf1 (= 0.192-4~bpo12+1)")
        );
        assert_eq!(
            parse(&out).len() + gone.len(),
            parse(STATUS).len(),
            "stanzas are dropped whole, none merged or split"
        );
    }

    #[test]
    fn folded_fields_and_alternatives_are_read() {
        let s = parse(STATUS);
        let common = s
            .iter()
            .find(|s| s.package == "qemu-system-common")
            .unwrap();
        assert_eq!(common.depends, ["libfdt1", "libslirp0"]);
        assert_eq!(common.provides, ["qemu-common-virtual"]);
        let q = s.iter().find(|s| s.package == "qemu-system-s390x").unwrap();
        assert_eq!(
            q.depends,
            [
                "qemu-system-common",
                "qemu-system-data",
                "qemu-data-virtual",
                "libc6",
                "dpkg"
            ]
        );
    }
}
