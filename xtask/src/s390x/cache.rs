// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The lane's download and build cache: a stable directory with one stamp file per finished step.
//!
//! A step records a key (what it was built from: package versions, kernel options, ...) in
//! `stamps/<step>`; a later run skips the step when the stamp holds the same key. Work happens in a
//! temporary directory that is renamed into place only when complete, so an interrupted run never
//! leaves a half-built result that a stamp vouches for.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util;

/// The cache directory.
pub(crate) struct Cache {
    root: PathBuf,
}

impl Cache {
    /// Opens (creating it if needed) the cache at `root`.
    pub(crate) fn open(root: &Path) -> util::Result<Self> {
        fs::create_dir_all(root.join("stamps"))
            .map_err(|e| format!("cannot create cache {}: {e}", root.display()))?;
        let root = root
            .canonicalize()
            .map_err(|e| format!("cache {}: {e}", root.display()))?;
        Ok(Self { root })
    }

    /// The cache's root directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// `root/name`, created if missing.
    pub(crate) fn dir(&self, name: &str) -> util::Result<PathBuf> {
        let d = self.root.join(name);
        fs::create_dir_all(&d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        Ok(d)
    }

    /// Whether step `step` finished with exactly this `key`.
    pub(crate) fn is_done(&self, step: &str, key: &str) -> bool {
        fs::read_to_string(self.stamp(step)).is_ok_and(|k| k == key)
    }

    /// Records that `step` finished with `key`.
    pub(crate) fn mark_done(&self, step: &str, key: &str) -> util::Result {
        let p = self.stamp(step);
        fs::write(&p, key).map_err(|e| format!("cannot write stamp {}: {e}", p.display()))
    }

    fn stamp(&self, step: &str) -> PathBuf {
        self.root.join("stamps").join(step)
    }
}

/// Writes `contents` to `path` unless it already holds exactly that; returns whether it wrote.
pub(crate) fn write_if_changed(path: &Path, contents: &str) -> util::Result<bool> {
    if fs::read_to_string(path).is_ok_and(|c| c == contents) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(true)
}

/// Removes `path` (file or directory tree) if it exists.
pub(crate) fn remove(path: &Path) -> util::Result {
    let res = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match res {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_skip_only_the_same_key() {
        let dir = std::env::temp_dir().join(format!("ccw-rs-cache-test-{}", std::process::id()));
        let c = Cache::open(&dir).unwrap();
        assert!(!c.is_done("kernel", "a"));
        c.mark_done("kernel", "a").unwrap();
        assert!(c.is_done("kernel", "a"));
        assert!(
            !c.is_done("kernel", "b"),
            "a changed key must redo the step"
        );
        let f = c.dir("x").unwrap().join("f");
        assert!(write_if_changed(&f, "1").unwrap());
        assert!(!write_if_changed(&f, "1").unwrap());
        assert!(write_if_changed(&f, "2").unwrap());
        remove(&dir).unwrap();
        assert!(!dir.exists());
        remove(&dir).unwrap();
    }
}
