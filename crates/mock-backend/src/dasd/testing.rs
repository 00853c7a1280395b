// SPDX-License-Identifier: Apache-2.0 OR MIT

//! An in-memory [`ImageFs`] with fault injection, for tests and fuzzing (feature
//! `test-utils`): files are byte vectors shared by every handle; a file can be made
//! read-only (opening it for writing fails with `EACCES`, as for a user without write
//! permission), a byte budget makes writes fail with `ENOSPC` (a full disk) after writing what
//! fits, and every write is counted per file.
//!
//! ```
//! use std::path::Path;
//! use mock_backend::dasd::testing::MemFs;
//! use mock_backend::dasd::{CkdImage, CreateOptions, ImageErrorKind, Model3390, TrackAddr};
//! let fs = MemFs::new();
//! let opts = CreateOptions { cylinders: Some(1), volser: None };
//! let mut img = CkdImage::create_on(fs.clone(), Path::new("/m/a.3390"), Model3390::M1, &opts).unwrap();
//! fs.set_space_left(Some(100));
//! let t = img.read_track(TrackAddr::new(0, 1)).unwrap();
//! let e = img.write_track(&t).unwrap_err();
//! assert_eq!(e.kind(), ImageErrorKind::Io);
//! assert!(e.to_string().contains("cyl 0 head 1"), "{e}");
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ccw_translate::sync::lock;

use super::io::{ImageFile, ImageFs, OpenMode};

#[derive(Default)]
struct State {
    files: HashMap<PathBuf, Vec<u8>>,
    read_only: HashSet<PathBuf>,
    writes: HashMap<PathBuf, usize>,
    space_left: Option<u64>,
    fail_sync: bool,
}

/// An in-memory file system (cheap to clone: clones share the files).
#[derive(Clone, Default)]
pub struct MemFs(Arc<Mutex<State>>);

impl fmt::Debug for MemFs {
    /// File names and sizes, never contents (images are megabytes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock(&self.0);
        let mut files: Vec<_> = s.files.iter().map(|(p, d)| (p, d.len())).collect();
        files.sort();
        f.debug_struct("MemFs")
            .field("files", &files)
            .field("space_left", &s.space_left)
            .finish()
    }
}

impl MemFs {
    /// An empty file system with unlimited space.
    pub fn new() -> Self {
        Self::default()
    }
    /// Creates or replaces a file.
    pub fn insert(&self, path: &Path, bytes: Vec<u8>) {
        let mut s = lock(&self.0);
        s.files.insert(path.to_owned(), bytes);
        s.writes.insert(path.to_owned(), 0);
    }
    /// A copy of a file's contents.
    pub fn get(&self, path: &Path) -> Option<Vec<u8>> {
        lock(&self.0).files.get(path).cloned()
    }
    /// Whether a file exists.
    pub fn exists(&self, path: &Path) -> bool {
        lock(&self.0).files.contains_key(path)
    }
    /// Makes a file read-only (or writable again): opening it for writing fails with `EACCES`.
    pub fn set_read_only(&self, path: &Path, read_only: bool) {
        let mut s = lock(&self.0);
        if read_only {
            s.read_only.insert(path.to_owned());
        } else {
            s.read_only.remove(path);
        }
    }
    /// Bytes that writes may still add or change before failing with `ENOSPC` (`None`:
    /// unlimited). A write that does not fit writes what fits, then fails.
    pub fn set_space_left(&self, bytes: Option<u64>) {
        lock(&self.0).space_left = bytes;
    }
    /// Makes every sync fail with `EIO` (or succeed again).
    pub fn set_fail_sync(&self, fail: bool) {
        lock(&self.0).fail_sync = fail;
    }
    /// Cuts a file to `len` bytes (another process truncating it).
    pub fn truncate(&self, path: &Path, len: usize) {
        if let Some(f) = lock(&self.0).files.get_mut(path) {
            f.truncate(len);
        }
    }
    /// Write calls that changed a file, since it was created or inserted.
    pub fn writes(&self, path: &Path) -> usize {
        lock(&self.0).writes.get(path).copied().unwrap_or(0)
    }
}

impl ImageFs for MemFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn ImageFile>> {
        let mut s = lock(&self.0);
        let exists = s.files.contains_key(path);
        let write = mode != OpenMode::Read;
        match mode {
            OpenMode::Read | OpenMode::ReadWrite if !exists => {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            OpenMode::CreateNew if exists => {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            _ => {}
        }
        if write && s.read_only.contains(path) {
            return Err(io::Error::from_raw_os_error(EACCES));
        }
        if !exists {
            s.files.insert(path.to_owned(), Vec::new());
            s.writes.insert(path.to_owned(), 0);
        }
        Ok(Box::new(MemFile {
            fs: self.clone(),
            path: path.to_owned(),
            write,
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = lock(&self.0);
        s.writes.remove(path);
        s.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

// Linux errno values, so that messages read as the host's would.
const EACCES: i32 = 13;
const ENOSPC: i32 = 28;
const EBADF: i32 = 9;
const EIO: i32 = 5;

#[derive(Debug)]
struct MemFile {
    fs: MemFs,
    path: PathBuf,
    write: bool,
}

impl MemFile {
    fn with<R>(&self, f: impl FnOnce(&mut State, &mut Vec<u8>) -> R) -> io::Result<R> {
        let mut s = lock(&self.fs.0);
        let mut data = s
            .files
            .remove(&self.path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let r = f(&mut s, &mut data);
        s.files.insert(self.path.clone(), data);
        Ok(r)
    }
}

impl ImageFile for MemFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.with(|_, d| {
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            match start
                .checked_add(buf.len())
                .and_then(|end| d.get(start..end))
            {
                Some(src) => {
                    buf.copy_from_slice(src);
                    Ok(())
                }
                None => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            }
        })?
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if !self.write {
            return Err(io::Error::from_raw_os_error(EBADF));
        }
        self.with(|s, d| {
            let start =
                usize::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
            let fits = match s.space_left {
                Some(left) => buf.len().min(usize::try_from(left).unwrap_or(usize::MAX)),
                None => buf.len(),
            };
            if fits > 0 {
                let end = start + fits;
                if d.len() < end {
                    d.resize(end, 0);
                }
                d[start..end].copy_from_slice(&buf[..fits]);
                *s.writes.entry(self.path.clone()).or_insert(0) += 1;
            }
            if let Some(left) = &mut s.space_left {
                *left -= fits as u64;
            }
            if fits < buf.len() {
                return Err(io::Error::from_raw_os_error(ENOSPC));
            }
            Ok(())
        })?
    }

    fn sync_data(&self) -> io::Result<()> {
        if lock(&self.fs.0).fail_sync {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }

    fn size(&self) -> io::Result<u64> {
        self.with(|_, d| d.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if !self.write {
            return Err(io::Error::from_raw_os_error(EBADF));
        }
        let len = usize::try_from(len).map_err(|_| io::Error::other("length too large"))?;
        self.with(|_, d| d.resize(len, 0))
    }
}
