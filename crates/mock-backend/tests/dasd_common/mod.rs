// SPDX-License-Identifier: Apache-2.0 OR MIT

//! What the DASD integration tests share.

use std::path::PathBuf;

/// A scratch directory, removed on drop.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory named after `tag` and the process.
    pub(crate) fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("ccw-dasd-it-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    /// A path inside it.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
