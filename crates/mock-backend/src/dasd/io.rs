// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The file operations a [`CkdImage`](super::CkdImage) needs, behind a trait so that tests and
//! fuzzing can put a fault-injecting file system underneath (a full disk, a read-only file, a
//! file cut short while open) without root, loop devices or tiny tmpfs mounts.
//!
//! [`HostFs`] is the real thing (`std::fs` with `pread`/`pwrite`); the in-memory
//! `dasd::testing::MemFs` lives behind the `test-utils` feature.

use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// How [`ImageFs::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// An existing file, for reading only.
    Read,
    /// An existing file, for reading and writing.
    ReadWrite,
    /// A new file for reading and writing; fails if the path exists.
    CreateNew,
    /// For reading and writing, created empty if it does not exist (never truncated).
    CreateOrOpen,
}

/// One open file: positioned reads and writes, sync, length.
pub trait ImageFile: fmt::Debug + Send {
    /// Reads exactly `buf.len()` bytes at `offset` (`UnexpectedEof` if the file is shorter).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes written data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Makes data and metadata durable (`fsync`).
    fn sync_all(&self) -> io::Result<()>;
    /// The file's size in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Sets the file's length (a sparse extension reads as zeros).
    fn set_len(&self, len: u64) -> io::Result<()>;
}

/// Opens and removes files: the image and its journal.
pub trait ImageFs: fmt::Debug + Send + Sync {
    /// Opens `path`.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn ImageFile>>;
    /// Removes `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
}

/// The host file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostFs;

impl ImageFs for HostFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn ImageFile>> {
        let mut o = OpenOptions::new();
        o.read(true);
        match mode {
            OpenMode::Read => {}
            OpenMode::ReadWrite => {
                o.write(true);
            }
            OpenMode::CreateNew => {
                o.write(true).create_new(true);
            }
            OpenMode::CreateOrOpen => {
                o.write(true).create(true).truncate(false);
            }
        }
        Ok(Box::new(o.open(path)?))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
}

impl ImageFile for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        std::fs::File::sync_data(self)
    }
    fn sync_all(&self) -> io::Result<()> {
        std::fs::File::sync_all(self)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        std::fs::File::set_len(self, len)
    }
}
