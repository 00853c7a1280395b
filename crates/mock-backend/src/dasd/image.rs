// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Hercules-compatible uncompressed CKD image files (`CKD_P370`).
//!
//! Layout: a 512-byte little-endian header (`"CKD_P370"`, heads `u32`, track size `u32`,
//! device type byte `0x90`, file sequence byte, high cylinder `u16`, reserved), then one
//! fixed-size slot per track in cylinder/head order. Compressed images (`CKD_C370`,
//! `CKD_S370`) and multi-file images are refused with a typed error.
//!
//! # Crash safety
//!
//! A track update is a read-modify-write of a whole 56832-byte slot. A single `pwrite` of the
//! slot is not enough: a process killed inside the system call (Linux checks for fatal signals
//! between pages) or a power loss can leave the slot half old, half new, and such a slot could
//! parse as valid records with wrong contents. Rewriting the image via temp file + rename is
//! out of the question for multi-gigabyte images. So updates go through a one-slot redo
//! journal next to the image (`<image>.journal`), the classic double-write:
//!
//! 1. write `magic, track, length, checksum, new slot` to the journal and `fdatasync` it;
//! 2. `pwrite` the slot in place and `fdatasync` the image;
//! 3. clear the journal's magic (no sync needed: replaying a finished update is idempotent).
//!
//! Closing the image removes the journal file.
//!
//! Opening an image replays a journal whose checksum verifies (the crash hit step 2) and
//! discards one that does not (the crash hit step 1, so the image was not touched yet). Either
//! way every track is entirely old or entirely new. Only then is device status presented, so
//! a write the program saw complete is on disk. Creation writes all tracks first and the
//! header last, so an interrupted `create` leaves a file that `open` refuses.
//!
//! # Failing disks
//!
//! A failure before the journal record is durable (a full disk, a failed sync) leaves the image
//! untouched. A failure of the in-place write or its sync leaves the update in the journal:
//! it is kept there (reads of the track see it), completed before the journal is reused by the
//! next write ([`ImageError::Pending`] while it cannot be) and replayed by the next open. So
//! nothing already written is lost, and every error names the file and the track.
//!
//! All file I/O goes through [`ImageFs`] ([`HostFs`] unless `create_on`/`open_on` are given
//! another), which is how the tests put a full disk or a read-only file underneath.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::io::{HostFs, ImageFile, ImageFs, OpenMode};
use super::model::Model3390;
use super::track::{Record, Track, TrackFormatError};
use ccw_types::eckd::{HEADS, TRACK_SLOT, TrackAddr, ascii_to_ebcdic};

/// Size of the image header.
pub const HEADER_LEN: usize = 512;
/// Device-type byte Hercules stores for a 3390.
pub const DEVTYPE_3390: u8 = 0x90;
const MAGIC: &[u8; 8] = b"CKD_P370";
const JOURNAL_MAGIC: &[u8; 8] = b"CCWJRNL1";
const JOURNAL_HDR: usize = 32;

/// What went wrong with an image, for generic code to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageErrorKind {
    /// An I/O error from the host file system.
    Io,
    /// Not a CKD image, or a CKD image of a form we do not handle.
    Format,
    /// A compressed (CCKD) image.
    Compressed,
    /// The requested track or size is outside the image.
    OutOfRange,
    /// The image was opened read-only.
    ReadOnly,
    /// A stored track is not well formed.
    InvalidTrack,
}

/// An error opening, creating, reading or writing an image. Every message names the file and,
/// where one track is concerned, the track.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Host I/O failed.
    #[error("{path}: {op}{}: {source}", on_track(.track))]
    Io {
        /// The file (the image or its journal).
        path: PathBuf,
        /// What we were doing.
        op: &'static str,
        /// The track concerned, if one was.
        track: Option<TrackAddr>,
        /// The OS error.
        source: io::Error,
    },
    /// A write waits for an earlier update whose in-place write failed: it stays in the
    /// journal (the next open replays it) and the journal cannot take another.
    #[error(
        "{path}: cannot write {track}: the update of {pending} could not be completed and waits in the journal: {source}"
    )]
    Pending {
        /// The image.
        path: PathBuf,
        /// The track that was to be written.
        track: TrackAddr,
        /// The track whose update is pending.
        pending: TrackAddr,
        /// Why it still cannot be completed.
        source: Box<ImageError>,
    },
    /// The header is not an uncompressed 3390 CKD header, or the file is not the header plus
    /// whole cylinders (a truncated image).
    #[error("{path}: not a supported CKD image: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Compressed CKD images are not supported.
    #[error(
        "{path}: compressed CCKD image ({magic}) is not supported; convert it with Hercules' `cckd2ckd` first"
    )]
    Compressed {
        /// The file.
        path: PathBuf,
        /// The header's id string.
        magic: String,
    },
    /// A track outside the image, or a size no 3390 model has.
    #[error("{0}")]
    OutOfRange(String),
    /// Writing to an image opened read-only.
    #[error("{path}: image is opened read-only: cannot write {track}")]
    ReadOnly {
        /// The file.
        path: PathBuf,
        /// The track that was to be written.
        track: TrackAddr,
    },
    /// A stored track failed to parse.
    #[error("{path}: {addr}: invalid track format: {source}")]
    InvalidTrack {
        /// The file.
        path: PathBuf,
        /// The track.
        addr: TrackAddr,
        /// Why.
        source: TrackFormatError,
    },
}

/// " of cyl C head H" for an I/O error about one track, "" otherwise.
fn on_track(t: &Option<TrackAddr>) -> String {
    t.map(|t| format!(" of {t}")).unwrap_or_default()
}

impl ImageError {
    /// The error's kind.
    pub fn kind(&self) -> ImageErrorKind {
        match self {
            ImageError::Io { .. } | ImageError::Pending { .. } => ImageErrorKind::Io,
            ImageError::Format { .. } => ImageErrorKind::Format,
            ImageError::Compressed { .. } => ImageErrorKind::Compressed,
            ImageError::OutOfRange(_) => ImageErrorKind::OutOfRange,
            ImageError::ReadOnly { .. } => ImageErrorKind::ReadOnly,
            ImageError::InvalidTrack { .. } => ImageErrorKind::InvalidTrack,
        }
    }
}

fn io_err<'a>(
    path: &'a Path,
    op: &'static str,
    track: Option<TrackAddr>,
) -> impl FnOnce(io::Error) -> ImageError + 'a {
    move |source| ImageError::Io {
        path: path.to_owned(),
        op,
        track,
        source,
    }
}

/// Where a simulated crash stops a track update (tests of the journal).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After writing this many bytes of the journal record, before its sync.
    InJournal(usize),
    /// After the journal is synced and this many bytes of the slot were written in place.
    InPlace(usize),
}

/// An open CKD image.
#[derive(Debug)]
pub struct CkdImage {
    path: PathBuf,
    fs: Arc<dyn ImageFs>,
    file: Box<dyn ImageFile>,
    journal: Option<Box<dyn ImageFile>>,
    /// A journalled update whose in-place write failed: the journal still holds it (so the
    /// next open replays it) and must not be overwritten until it is completed.
    pending: Option<(TrackAddr, Vec<u8>)>,
    cylinders: u32,
    read_only: bool,
    crash: Option<CrashPoint>,
}

/// Options for [`CkdImage::create`].
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Cylinders to create (defaults to the model's nominal count).
    pub cylinders: Option<u32>,
    /// Volume serial for the VOL1 label on cylinder 0 head 0 record 3; `None` creates a raw
    /// image with empty tracks only.
    pub volser: Option<String>,
}

impl CkdImage {
    /// Creates a new image of a 3390 `model`: every track gets its home address, a standard
    /// R0 and the end marker; the rest of each slot is left as a hole (sparse file). With a
    /// volser, track 0 also gets IPL1, IPL2 and the VOL1 label as `dasdinit` lays them out.
    /// Refuses to overwrite an existing file; removes the file again if creation fails.
    ///
    /// ```
    /// use mock_backend::dasd::{CkdImage, CreateOptions, Model3390, TrackAddr};
    /// let dir = std::env::temp_dir().join(format!("ckd-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("doc.3390");
    /// # let _ = std::fs::remove_file(&path);
    /// let opts = CreateOptions { cylinders: Some(2), volser: Some("DOC001".into()) };
    /// let img = CkdImage::create(&path, Model3390::M1, &opts).unwrap();
    /// assert_eq!(img.volser().unwrap().as_deref(), Some("DOC001"));
    /// assert_eq!(img.read_track(TrackAddr::new(1, 14)).unwrap().records.len(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn create(path: &Path, model: Model3390, opts: &CreateOptions) -> Result<Self, ImageError> {
        Self::create_on(HostFs, path, model, opts)
    }

    /// [`CkdImage::create`] on the file system `fs`.
    pub fn create_on(
        fs: impl ImageFs + 'static,
        path: &Path,
        model: Model3390,
        opts: &CreateOptions,
    ) -> Result<Self, ImageError> {
        let fs: Arc<dyn ImageFs> = Arc::new(fs);
        let cylinders = opts.cylinders.unwrap_or(model.cylinders());
        if cylinders == 0 || cylinders > model.cylinders() {
            return Err(ImageError::OutOfRange(format!(
                "{}: {cylinders} cylinders does not fit a {model} (1..={})",
                path.display(),
                model.cylinders()
            )));
        }
        if let Some(v) = &opts.volser {
            check_volser(v).map_err(|reason| ImageError::Format {
                path: path.to_owned(),
                reason,
            })?;
        }
        let file = fs
            .open(path, OpenMode::CreateNew)
            .map_err(io_err(path, "create", None))?;
        let img = CkdImage {
            path: path.to_owned(),
            fs: Arc::clone(&fs),
            file,
            journal: None,
            pending: None,
            cylinders,
            read_only: false,
            crash: None,
        };
        match img.lay_down(opts) {
            Ok(()) => Ok(img),
            Err(e) => {
                // The file is ours (create_new) and has no header yet: nothing of value.
                drop(img);
                if let Err(r) = fs.remove(path) {
                    tracing::warn!(image = %path.display(), error = %r, "could not remove a half-created image");
                }
                Err(e)
            }
        }
    }

    /// Writes every track of a new image, then the header.
    fn lay_down(&self, opts: &CreateOptions) -> Result<(), ImageError> {
        let path = &self.path;
        let total = HEADER_LEN as u64 + self.tracks() * TRACK_SLOT as u64;
        self.file
            .set_len(total)
            .map_err(io_err(path, "set_len", None))?;
        for t in 0..self.tracks() {
            let addr = TrackAddr::from_index(t);
            let mut track = Track::empty(addr);
            if t == 0 {
                if let Some(v) = &opts.volser {
                    track.records.extend(label_records(v));
                }
            }
            // Only the used prefix: the remainder stays a hole that reads as zeros.
            let slot = track.to_slot().map_err(|source| ImageError::InvalidTrack {
                path: path.clone(),
                addr,
                source,
            })?;
            self.file
                .write_all_at(&slot[..track.used_len()], self.slot_offset(addr))
                .map_err(io_err(path, "write track", Some(addr)))?;
        }
        self.file.sync_data().map_err(io_err(path, "sync", None))?;
        self.file
            .write_all_at(&header(), 0)
            .map_err(io_err(path, "write header", None))?;
        self.file.sync_all().map_err(io_err(path, "sync", None))
    }

    /// Opens an existing uncompressed 3390 image, replaying or discarding an update journal
    /// left by an interrupted process.
    pub fn open(path: &Path, read_only: bool) -> Result<Self, ImageError> {
        Self::open_on(HostFs, path, read_only)
    }

    /// [`CkdImage::open`] on the file system `fs`. Nothing is written to the image unless
    /// its header and size check out and it is opened read-write.
    pub fn open_on(
        fs: impl ImageFs + 'static,
        path: &Path,
        read_only: bool,
    ) -> Result<Self, ImageError> {
        let fs: Arc<dyn ImageFs> = Arc::new(fs);
        let mode = if read_only {
            OpenMode::Read
        } else {
            OpenMode::ReadWrite
        };
        let file = fs.open(path, mode).map_err(io_err(path, "open", None))?;
        let mut hdr = [0u8; HEADER_LEN];
        file.read_exact_at(&mut hdr, 0).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                ImageError::Format {
                    path: path.to_owned(),
                    reason: "shorter than the 512-byte header".into(),
                }
            } else {
                io_err(path, "read header", None)(e)
            }
        })?;
        let format = |reason: String| ImageError::Format {
            path: path.to_owned(),
            reason,
        };
        let magic = &hdr[0..8];
        if magic == b"CKD_C370" || magic == b"CKD_S370" {
            return Err(ImageError::Compressed {
                path: path.to_owned(),
                magic: String::from_utf8_lossy(magic).into_owned(),
            });
        }
        if magic != MAGIC {
            return Err(format(format!("header id {:02x?} is not CKD_P370", magic)));
        }
        let heads = u32::from_le_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]);
        let trksize = u32::from_le_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]);
        let devtype = hdr[16];
        let fileseq = hdr[17];
        let highcyl = u16::from_le_bytes([hdr[18], hdr[19]]);
        if devtype != DEVTYPE_3390 || heads != u32::from(HEADS) || trksize as usize != TRACK_SLOT {
            return Err(format(format!(
                "device type {devtype:#04x}, {heads} heads, {trksize}-byte tracks: only 3390 (0x90, 15, 56832) is supported"
            )));
        }
        if fileseq != 0 || highcyl != 0 {
            return Err(format(format!(
                "part {fileseq} of a multi-file image (high cylinder {highcyl}); create single-file images with `dasdinit -lfs`"
            )));
        }
        let len = file.size().map_err(io_err(path, "stat", None))?;
        let cyl_bytes = u64::from(HEADS) * TRACK_SLOT as u64;
        let body = len.saturating_sub(HEADER_LEN as u64);
        if body == 0 {
            return Err(format("no tracks after the header".into()));
        }
        if body % cyl_bytes != 0 {
            // Truncated (or padded): name the first track that is not whole.
            let first = TrackAddr::from_index(body / TRACK_SLOT as u64);
            let cut = body % TRACK_SLOT as u64;
            let what = if cut > 0 {
                format!("{first} has only {cut} of its {TRACK_SLOT} bytes")
            } else {
                format!("{first} and the rest of cylinder {} are missing", first.cyl)
            };
            return Err(format(format!(
                "size {len} is not the header plus whole cylinders (truncated?): {what}"
            )));
        }
        let cylinders = u32::try_from(body / cyl_bytes)
            .ok()
            .filter(|c| Model3390::for_cylinders(*c).is_some())
            .ok_or_else(|| {
                format(format!(
                    "{} cylinders is more than a 3390-54 has",
                    body / cyl_bytes
                ))
            })?;
        let mut img = CkdImage {
            path: path.to_owned(),
            fs,
            file,
            journal: None,
            pending: None,
            cylinders,
            read_only,
            crash: None,
        };
        img.recover()?;
        Ok(img)
    }

    /// The image file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Cylinders in the image.
    pub fn cylinders(&self) -> u32 {
        self.cylinders
    }
    /// Tracks in the image.
    pub fn tracks(&self) -> u64 {
        u64::from(self.cylinders) * u64::from(HEADS)
    }
    /// Whether the image was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }
    /// The smallest 3390 model that holds the image.
    pub fn model(&self) -> Model3390 {
        Model3390::for_cylinders(self.cylinders).unwrap_or(Model3390::M54)
    }

    fn journal_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".journal");
        PathBuf::from(p)
    }

    fn slot_offset(&self, addr: TrackAddr) -> u64 {
        HEADER_LEN as u64 + addr.index() * TRACK_SLOT as u64
    }

    fn check(&self, addr: TrackAddr) -> Result<(), ImageError> {
        if addr.cyl >= self.cylinders || addr.head >= HEADS {
            return Err(ImageError::OutOfRange(format!(
                "{}: {addr} is outside the image ({} cylinders)",
                self.path.display(),
                self.cylinders
            )));
        }
        Ok(())
    }

    /// Reads and parses one track. A track whose update failed half-way in place (see
    /// [`CkdImage::write_track`]) reads as the journalled new contents, which is what it
    /// holds once the update completes or the next open replays it.
    pub fn read_track(&self, addr: TrackAddr) -> Result<Track, ImageError> {
        self.check(addr)?;
        let invalid = |source| ImageError::InvalidTrack {
            path: self.path.clone(),
            addr,
            source,
        };
        if let Some((a, slot)) = &self.pending {
            if *a == addr {
                return Track::parse(slot, addr).map_err(invalid);
            }
        }
        let mut slot = vec![0u8; TRACK_SLOT];
        self.file
            .read_exact_at(&mut slot, self.slot_offset(addr))
            .map_err(io_err(&self.path, "read track", Some(addr)))?;
        Track::parse(&slot, addr).map_err(invalid)
    }

    /// Writes one track durably (journal, in-place write, sync) before returning.
    ///
    /// On an error nothing already written is lost: a failure before the journal record is
    /// durable leaves the image untouched; a failure of the in-place write or its sync leaves
    /// the update in the journal, kept there (reads of the track see it) and completed before
    /// the next write or replayed by the next open.
    pub fn write_track(&mut self, track: &Track) -> Result<(), ImageError> {
        let addr = track.addr;
        if self.read_only {
            return Err(ImageError::ReadOnly {
                path: self.path.clone(),
                track: addr,
            });
        }
        self.check(addr)?;
        let slot = track.to_slot().map_err(|source| ImageError::InvalidTrack {
            path: self.path.clone(),
            addr,
            source,
        })?;
        self.complete_pending()
            .map_err(|(pending, e)| ImageError::Pending {
                path: self.path.clone(),
                track: addr,
                pending,
                source: Box::new(e),
            })?;
        let index = addr.index();
        let mut rec = Vec::with_capacity(JOURNAL_HDR + slot.len());
        rec.extend_from_slice(JOURNAL_MAGIC);
        rec.extend_from_slice(&index.to_le_bytes());
        rec.extend_from_slice(&(slot.len() as u64).to_le_bytes());
        rec.extend_from_slice(&journal_checksum(index, &slot).to_le_bytes());
        rec.extend_from_slice(&slot);
        let jp = self.journal_path();
        if self.journal.is_none() {
            let j = self.fs.open(&jp, OpenMode::CreateOrOpen).map_err(io_err(
                &jp,
                "open journal for",
                Some(addr),
            ))?;
            self.journal = Some(j);
        }
        let journal = self.journal.as_ref().ok_or(ImageError::ReadOnly {
            path: self.path.clone(),
            track: addr,
        })?;
        if let Some(CrashPoint::InJournal(n)) = self.crash {
            journal
                .write_all_at(&rec[..n.min(rec.len())], 0)
                .map_err(io_err(&jp, "write journal for", Some(addr)))?;
            return Err(simulated_crash(&jp, addr));
        }
        let journalled = journal
            .write_all_at(&rec, 0)
            .map_err(io_err(&jp, "write journal for", Some(addr)))
            .and_then(|()| {
                journal
                    .sync_data()
                    .map_err(io_err(&jp, "sync journal for", Some(addr)))
            });
        if let Err(e) = journalled {
            // The image is untouched. Invalidate what may be a complete record, so that a
            // later open does not apply an update the caller was told failed (best effort:
            // a torn record does not verify anyway).
            if let Err(c) = journal.write_all_at(&[0u8; 8], 0) {
                tracing::warn!(journal = %jp.display(), error = %c, "could not invalidate a failed journal record");
            }
            return Err(e);
        }
        let off = self.slot_offset(addr);
        if let Some(CrashPoint::InPlace(n)) = self.crash {
            self.file
                .write_all_at(&slot[..n.min(slot.len())], off)
                .map_err(io_err(&self.path, "write", Some(addr)))?;
            return Err(simulated_crash(&self.path, addr));
        }
        if let Err(e) = self.write_in_place(addr, &slot) {
            self.pending = Some((addr, slot));
            return Err(e);
        }
        Ok(())
    }

    /// Writes a journalled slot in place, syncs it and invalidates the journal record (no
    /// sync needed: replaying a finished update is idempotent).
    fn write_in_place(&self, addr: TrackAddr, slot: &[u8]) -> Result<(), ImageError> {
        self.file
            .write_all_at(slot, self.slot_offset(addr))
            .map_err(io_err(&self.path, "write", Some(addr)))?;
        self.file
            .sync_data()
            .map_err(io_err(&self.path, "sync", Some(addr)))?;
        if let Some(journal) = &self.journal {
            let jp = self.journal_path();
            journal.write_all_at(&[0u8; 8], 0).map_err(io_err(
                &jp,
                "clear journal after",
                Some(addr),
            ))?;
        }
        Ok(())
    }

    /// Completes an update whose in-place write failed earlier, before the journal it waits
    /// in may be reused.
    fn complete_pending(&mut self) -> Result<(), (TrackAddr, ImageError)> {
        let Some((addr, slot)) = self.pending.take() else {
            return Ok(());
        };
        if let Err(e) = self.write_in_place(addr, &slot) {
            self.pending = Some((addr, slot));
            return Err((addr, e));
        }
        Ok(())
    }

    /// Replays a complete journal record, discards a torn one.
    fn recover(&mut self) -> Result<(), ImageError> {
        let jp = self.journal_path();
        let mode = if self.read_only {
            OpenMode::Read
        } else {
            OpenMode::ReadWrite
        };
        let journal = match self.fs.open(&jp, mode) {
            Ok(j) => j,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&jp, "open journal", None)(e)),
        };
        // A short journal is a torn record; any other read error is reported, not taken
        // for one (discarding a complete record would lose the update it holds).
        let read_full = |buf: &mut [u8], at: u64| match journal.read_exact_at(buf, at) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(io_err(&jp, "read journal", None)(e)),
        };
        let mut hdr = [0u8; JOURNAL_HDR];
        let valid = read_full(&mut hdr, 0)? && &hdr[..8] == JOURNAL_MAGIC;
        if valid {
            let index = le_u64(&hdr, 8);
            let len = le_u64(&hdr, 16);
            let sum = le_u64(&hdr, 24);
            let mut slot = vec![0u8; TRACK_SLOT];
            let complete = len == TRACK_SLOT as u64
                && index < self.tracks()
                && read_full(&mut slot, JOURNAL_HDR as u64)?
                && journal_checksum(index, &slot) == sum;
            if complete {
                let addr = TrackAddr::from_index(index);
                if self.read_only {
                    return Err(ImageError::Format {
                        path: self.path.clone(),
                        reason: format!(
                            "an interrupted update of {addr} is pending in {}; open read-write once to replay it",
                            jp.display()
                        ),
                    });
                }
                tracing::debug!(image = %self.path.display(), track = %addr, "replaying journal");
                self.file
                    .write_all_at(&slot, self.slot_offset(addr))
                    .map_err(io_err(&self.path, "replay journal to", Some(addr)))?;
                self.file
                    .sync_data()
                    .map_err(io_err(&self.path, "sync", Some(addr)))?;
            } else {
                tracing::debug!(image = %self.path.display(), "discarding torn journal record");
            }
        }
        if !self.read_only {
            journal
                .write_all_at(&[0u8; 8], 0)
                .map_err(io_err(&jp, "clear journal", None))?;
            self.journal = Some(journal);
        }
        Ok(())
    }

    /// The volume serial from the VOL1 label (cylinder 0, head 0, record 3), if there is one.
    pub fn volser(&self) -> Result<Option<String>, ImageError> {
        let t = self.read_track(TrackAddr::new(0, 0))?;
        Ok(t.records
            .iter()
            .find(|r| r.count.record == 3)
            .and_then(|r| parse_vol1(&r.data)))
    }

    #[doc(hidden)]
    pub fn simulate_crash(&mut self, at: Option<CrashPoint>) {
        self.crash = at;
    }
}

impl Drop for CkdImage {
    /// Every update was synced and its journal record invalidated, so the journal file is
    /// removed: one left behind means a process ended in the middle of an update (or an
    /// update could not be completed, and waits there for the next open).
    fn drop(&mut self) {
        if self.journal.take().is_some() && self.crash.is_none() {
            let jp = self.journal_path();
            if let Some((addr, _)) = &self.pending {
                tracing::warn!(journal = %jp.display(), track = %addr, "an update could not be completed; the next open replays it");
                return;
            }
            if let Err(e) = self.fs.remove(&jp) {
                // Harmless (the record in it is invalidated) but worth a trace.
                tracing::warn!(journal = %jp.display(), error = %e, "could not remove the journal");
            }
        }
    }
}

fn simulated_crash(path: &Path, addr: TrackAddr) -> ImageError {
    ImageError::Io {
        path: path.to_owned(),
        op: "simulated crash in the update",
        track: Some(addr),
        source: io::Error::other("simulated crash"),
    }
}

/// The little-endian `u64` at `at` of a journal record header (in bounds: `at + 8 <=
/// JOURNAL_HDR`).
fn le_u64(hdr: &[u8; JOURNAL_HDR], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&hdr[at..at + 8]);
    u64::from_le_bytes(b)
}

/// FNV-1a over the track number and slot: detects a torn journal record (not an adversary).
fn journal_checksum(index: u64, slot: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in index.to_le_bytes().iter().chain(slot) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The header; the cylinder count is implied by the file size.
fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&u32::from(HEADS).to_le_bytes());
    h[12..16].copy_from_slice(&(TRACK_SLOT as u32).to_le_bytes());
    h[16] = DEVTYPE_3390;
    h
}

fn ebcdic(s: &str) -> Vec<u8> {
    s.bytes().map(ascii_to_ebcdic).collect()
}

/// IPL1, IPL2 and VOL1 of cylinder 0 head 0 (records 1-3, 4-byte EBCDIC keys), the way an
/// initialised volume carries them: IPL1 holds a disabled-wait PSW, VOL1 the volume serial,
/// no VTOC pointer and owner `CCW-RS`. Returns `(key, data)` per record.
///
/// ```
/// use mock_backend::dasd::{parse_vol1, volume_labels};
/// let labels = volume_labels("ABC123");
/// assert_eq!(labels.len(), 3);
/// assert_eq!(parse_vol1(&labels[2].1).as_deref(), Some("ABC123"));
/// ```
pub fn volume_labels(volser: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut ipl1 = vec![0u8; 24];
    ipl1[1] = 0x02; // PSW wait bit
    let mut vol1 = ebcdic(&format!("VOL1{:<6}", volser.to_ascii_uppercase()));
    vol1.resize(80, 0x40);
    vol1[11..16].fill(0); // no VTOC
    let owner = ebcdic("CCW-RS");
    vol1[41..41 + owner.len()].copy_from_slice(&owner);
    vec![
        (ebcdic("IPL1"), ipl1),
        (ebcdic("IPL2"), vec![0; 144]),
        (ebcdic("VOL1"), vol1),
    ]
}

/// Checks a volume serial: 1-6 characters A-Z, 0-9, `@`, `#`, `$` (lower case is accepted
/// and stored upper case).
pub fn check_volser(v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 6
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"@#$".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(format!("volser {v:?} must be 1-6 characters A-Z 0-9 @ # $"))
    }
}

fn label_records(volser: &str) -> Vec<Record> {
    volume_labels(volser)
        .into_iter()
        .enumerate()
        .map(|(i, (k, d))| Record::new([0, 0, 0, 0, i as u8 + 1], k, d))
        .collect()
}

/// The volser of an 80-byte VOL1 label's data area, if it is one.
pub fn parse_vol1(data: &[u8]) -> Option<String> {
    if data.len() < 10 || data[..4] != ebcdic("VOL1")[..] {
        return None;
    }
    let s: String = data[4..10]
        .iter()
        .map(|&c| ccw_types::eckd::ebcdic_to_ascii(c) as char)
        .collect();
    Some(s.trim_end().to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dasd::track::HA_LEN;
    use ccw_types::eckd::COUNT_LEN;
    use std::fs::OpenOptions;
    use std::os::unix::fs::FileExt;

    /// A scratch directory removed on drop.
    pub(crate) struct Scratch(pub(crate) PathBuf);

    impl Scratch {
        pub(crate) fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "ccw-dasd-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
        pub(crate) fn file(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn small(dir: &Scratch, volser: Option<&str>) -> CkdImage {
        let opts = CreateOptions {
            cylinders: Some(2),
            volser: volser.map(str::to_owned),
        };
        CkdImage::create(&dir.file("a.3390"), Model3390::M1, &opts).unwrap()
    }

    fn with_record(img: &CkdImage, addr: TrackAddr, fill: u8) -> Track {
        let mut t = img.read_track(addr).unwrap();
        let mut id = [0u8; 5];
        id[..4].copy_from_slice(&addr.to_cchh());
        id[4] = 1;
        t.records.truncate(1);
        t.records.push(Record::new(id, vec![], vec![fill; 4096]));
        t
    }

    #[test]
    fn create_then_open_round_trips() {
        let dir = Scratch::new("rt");
        let img = small(&dir, Some("ABC123"));
        assert_eq!(img.cylinders(), 2);
        assert_eq!(img.volser().unwrap().as_deref(), Some("ABC123"));
        drop(img);
        let img = CkdImage::open(&dir.file("a.3390"), false).unwrap();
        assert_eq!(img.cylinders(), 2);
        assert_eq!(img.model(), Model3390::M1);
        assert_eq!(img.volser().unwrap().as_deref(), Some("ABC123"));
        let len = std::fs::metadata(dir.file("a.3390")).unwrap().len();
        assert_eq!(len, 512 + 2 * 15 * 56832);
        assert!(img.read_track(TrackAddr::new(2, 0)).is_err());
        // Refuses to overwrite.
        let again = CkdImage::create(
            &dir.file("a.3390"),
            Model3390::M1,
            &CreateOptions {
                cylinders: Some(1),
                volser: None,
            },
        );
        assert_eq!(again.unwrap_err().kind(), ImageErrorKind::Io);
    }

    #[test]
    fn rejects_compressed_and_foreign_headers() {
        let dir = Scratch::new("hdr");
        let img = small(&dir, None);
        drop(img);
        let path = dir.file("a.3390");
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        FileExt::write_all_at(&f, b"CKD_C370", 0).unwrap();
        let e = CkdImage::open(&path, true).unwrap_err();
        assert_eq!(e.kind(), ImageErrorKind::Compressed);
        assert!(e.to_string().contains("compressed"), "{e}");
        FileExt::write_all_at(&f, b"FBA_P370", 0).unwrap();
        assert_eq!(
            CkdImage::open(&path, true).unwrap_err().kind(),
            ImageErrorKind::Format
        );
        FileExt::write_all_at(&f, b"CKD_P370", 0).unwrap();
        FileExt::write_all_at(&f, &[0x80], 16).unwrap(); // 3380
        assert_eq!(
            CkdImage::open(&path, true).unwrap_err().kind(),
            ImageErrorKind::Format
        );
        FileExt::write_all_at(&f, &[0x90, 1], 16).unwrap(); // multi-file part 1
        assert_eq!(
            CkdImage::open(&path, true).unwrap_err().kind(),
            ImageErrorKind::Format
        );
        FileExt::write_all_at(&f, &[0x90, 0], 16).unwrap();
        f.set_len(512 + 56832).unwrap(); // not whole cylinders
        assert_eq!(
            CkdImage::open(&path, true).unwrap_err().kind(),
            ImageErrorKind::Format
        );
    }

    #[test]
    fn read_only_refuses_writes() {
        let dir = Scratch::new("ro");
        drop(small(&dir, None));
        let mut img = CkdImage::open(&dir.file("a.3390"), true).unwrap();
        let t = with_record(&img, TrackAddr::new(0, 1), 1);
        assert_eq!(
            img.write_track(&t).unwrap_err().kind(),
            ImageErrorKind::ReadOnly
        );
    }

    #[test]
    fn write_is_durable_and_journal_is_cleared() {
        let dir = Scratch::new("w");
        let mut img = small(&dir, None);
        let addr = TrackAddr::new(1, 7);
        let t = with_record(&img, addr, 0xAB);
        img.write_track(&t).unwrap();
        drop(img);
        let img = CkdImage::open(&dir.file("a.3390"), true).unwrap();
        assert_eq!(img.read_track(addr).unwrap(), t);
        assert!(
            !dir.file("a.3390.journal").exists(),
            "a clean close removes the journal"
        );
    }

    /// A crash anywhere in an update leaves the track entirely old or entirely new.
    #[test]
    fn interrupted_writes_never_leave_torn_tracks() {
        let addr = TrackAddr::new(0, 3);
        let points = [
            CrashPoint::InJournal(0),
            CrashPoint::InJournal(20),
            CrashPoint::InJournal(JOURNAL_HDR + 100),
            CrashPoint::InJournal(JOURNAL_HDR + TRACK_SLOT - 1),
            CrashPoint::InPlace(0),
            CrashPoint::InPlace(13),
            CrashPoint::InPlace(2000),
            CrashPoint::InPlace(TRACK_SLOT - 1),
        ];
        for point in points {
            let dir = Scratch::new("crash");
            let mut img = small(&dir, None);
            let old = with_record(&img, addr, 0x11);
            img.write_track(&old).unwrap();
            let new = with_record(&img, addr, 0x22);
            img.simulate_crash(Some(point));
            assert!(img.write_track(&new).is_err());
            drop(img); // the "process" dies here
            if point == CrashPoint::InPlace(2000) {
                // Without the journal this slot would be torn: new header, old tail.
                let raw = std::fs::read(dir.file("a.3390")).unwrap();
                let off = HEADER_LEN + addr.index() as usize * TRACK_SLOT;
                let t = Track::parse(&raw[off..off + TRACK_SLOT], addr).unwrap();
                assert!(
                    t != old && t != new,
                    "the simulated crash did not tear the slot"
                );
            }
            let img = CkdImage::open(&dir.file("a.3390"), false).unwrap();
            // ... after it, the track is old or new as a whole.
            let got = img.read_track(addr).unwrap();
            let is_old = got == old;
            let is_new = got == new;
            match point {
                // A journal record cut short is discarded (old), unless what was cut off
                // happens to equal what the previous record left there (then it is complete).
                CrashPoint::InJournal(_) => assert!(is_old || is_new, "torn track after {point:?}"),
                // The journal was complete: recovery redoes the write.
                CrashPoint::InPlace(_) => assert!(is_new, "track not replayed after {point:?}"),
            }
        }
    }

    #[test]
    fn read_only_open_refuses_pending_journal() {
        let dir = Scratch::new("pending");
        let mut img = small(&dir, None);
        let addr = TrackAddr::new(1, 1);
        let t = with_record(&img, addr, 0x33);
        img.simulate_crash(Some(CrashPoint::InPlace(100)));
        assert!(img.write_track(&t).is_err());
        drop(img);
        let e = CkdImage::open(&dir.file("a.3390"), true).unwrap_err();
        assert!(e.to_string().contains("interrupted update"), "{e}");
        let img = CkdImage::open(&dir.file("a.3390"), false).unwrap();
        assert_eq!(img.read_track(addr).unwrap(), t);
    }

    #[test]
    fn unreadable_journal_is_an_error_not_a_torn_record() {
        // A journal that cannot be read (here a directory: EISDIR) must not be taken for a
        // torn record and silently discarded.
        let dir = Scratch::new("badjournal");
        drop(small(&dir, None));
        std::fs::create_dir(dir.file("a.3390.journal")).unwrap();
        let e = CkdImage::open(&dir.file("a.3390"), true).unwrap_err();
        assert_eq!(e.kind(), ImageErrorKind::Io, "{e}");
        assert!(e.to_string().contains("journal"), "{e}");
    }

    #[test]
    fn vol1_parsing() {
        let mut d = ebcdic("VOL1XYZ   ");
        d.resize(80, 0x40);
        assert_eq!(parse_vol1(&d).as_deref(), Some("XYZ"));
        assert_eq!(parse_vol1(&[0; 80]), None);
        assert_eq!(parse_vol1(&[]), None);
    }

    // ---- corrupted images, on the fault-injecting in-memory file system ----------------

    use crate::dasd::testing::MemFs;

    const IMG: &str = "/vol/corrupt.3390";

    fn mem_image(fs: &MemFs, cylinders: u32) -> CkdImage {
        let opts = CreateOptions {
            cylinders: Some(cylinders),
            volser: Some("MEM001".into()),
        };
        CkdImage::create_on(fs.clone(), Path::new(IMG), Model3390::M1, &opts).unwrap()
    }

    fn journal() -> PathBuf {
        PathBuf::from(format!("{IMG}.journal"))
    }

    /// The error names the image and the track.
    fn names(e: &ImageError, addr: TrackAddr) {
        let m = e.to_string();
        assert!(m.contains(IMG), "{m}");
        assert!(m.contains(&addr.to_string()), "{m}");
    }

    #[test]
    fn truncated_image_names_the_first_cut_track() {
        let fs = MemFs::new();
        drop(mem_image(&fs, 2));
        let path = Path::new(IMG);
        let whole = fs.get(path).unwrap();
        // Cut inside cylinder 1 head 2, at a track boundary, and inside the header.
        let cases = [
            (
                HEADER_LEN + 17 * TRACK_SLOT + 100,
                "cyl 1 head 2 has only 100 of its",
            ),
            (
                HEADER_LEN + 17 * TRACK_SLOT,
                "cyl 1 head 2 and the rest of cylinder 1 are missing",
            ),
            (
                HEADER_LEN + 15 * TRACK_SLOT - 1,
                "cyl 0 head 14 has only 56831",
            ),
            (HEADER_LEN, "no tracks after the header"),
            (100, "shorter than the 512-byte header"),
        ];
        for (len, what) in cases {
            fs.insert(path, whole[..len].to_vec());
            for read_only in [true, false] {
                let e = CkdImage::open_on(fs.clone(), path, read_only).unwrap_err();
                assert_eq!(e.kind(), ImageErrorKind::Format, "{e}");
                let m = e.to_string();
                assert!(m.contains(IMG) && m.contains(what), "{m}");
                // Refused before anything was written or created.
                assert_eq!(fs.writes(path), 0);
                assert!(!fs.exists(&journal()));
            }
        }
        // Cut while open (another process truncates it): the cut track fails by name, the
        // ones before it still read.
        fs.insert(path, whole.clone());
        let mut img = CkdImage::open_on(fs.clone(), path, false).unwrap();
        let kept = with_record(&img, TrackAddr::new(0, 4), 0x44);
        img.write_track(&kept).unwrap();
        fs.truncate(path, HEADER_LEN + 20 * TRACK_SLOT + 7);
        let cut = TrackAddr::new(1, 5);
        let e = img.read_track(cut).unwrap_err();
        assert_eq!(e.kind(), ImageErrorKind::Io, "{e}");
        names(&e, cut);
        assert_eq!(img.read_track(TrackAddr::new(0, 4)).unwrap(), kept);
        assert_eq!(img.volser().unwrap().as_deref(), Some("MEM001"));
    }

    #[test]
    fn bit_flipped_track_headers_are_named_or_read_faithfully() {
        let fs = MemFs::new();
        let path = Path::new(IMG);
        let addr = TrackAddr::new(0, 9);
        let mut img = mem_image(&fs, 1);
        let t = with_record(&img, addr, 0x5A);
        img.write_track(&t).unwrap();
        drop(img);
        let clean = fs.get(path).unwrap();
        let off = HEADER_LEN + addr.index() as usize * TRACK_SLOT;
        // Every bit of the home address, R0's count and R1's count.
        let header_bytes = (0..HA_LEN + 2 * COUNT_LEN).map(|b| {
            if b < HA_LEN + COUNT_LEN {
                b
            } else {
                b + 8 // R0's 8 data bytes sit between the two counts
            }
        });
        let mut detected = 0;
        for byte in header_bytes {
            for bit in 0..8 {
                let mut raw = clean.clone();
                raw[off + byte] ^= 1 << bit;
                fs.insert(path, raw.clone());
                let img = CkdImage::open_on(fs.clone(), path, true).unwrap();
                match img.read_track(addr) {
                    Err(e) => {
                        assert_eq!(e.kind(), ImageErrorKind::InvalidTrack, "{e}");
                        names(&e, addr);
                        detected += 1;
                    }
                    Ok(got) => {
                        // No home address mismatch gets through ...
                        assert!(
                            !(1..HA_LEN).contains(&byte),
                            "flip in HA byte {byte} accepted"
                        );
                        // ... and what parses is exactly what is stored.
                        let slot = got.to_slot().unwrap();
                        let n = got.used_len();
                        assert_eq!(slot[..n], raw[off..off + n], "byte {byte} bit {bit}");
                    }
                }
                // The other tracks are untouched.
                assert_eq!(img.volser().unwrap().as_deref(), Some("MEM001"));
                assert_eq!(
                    img.read_track(TrackAddr::new(0, 8)).unwrap(),
                    Track::empty(TrackAddr::new(0, 8))
                );
            }
        }
        assert!(detected >= 32, "only {detected} flips detected");
    }

    /// A journal cut at every byte: shorter than the whole record it is discarded and the
    /// image is not written; whole, it is replayed. Either way the track is old or new.
    #[test]
    fn journal_cut_at_every_byte() {
        let fs = MemFs::new();
        let path = Path::new(IMG);
        let addr = TrackAddr::new(0, 6);
        let mut img = mem_image(&fs, 1);
        let old = with_record(&img, addr, 0x01);
        img.write_track(&old).unwrap();
        let new = with_record(&img, addr, 0x02);
        // A complete, synced record and an untouched image: the crash hit before step 2.
        img.simulate_crash(Some(CrashPoint::InPlace(0)));
        assert!(img.write_track(&new).is_err());
        drop(img);
        let record = fs.get(&journal()).unwrap();
        assert_eq!(record.len(), JOURNAL_HDR + TRACK_SLOT);
        let image = fs.get(path).unwrap();
        // Inserted once: a cut record never writes the image (asserted below), so every cut
        // starts from the same image.
        fs.insert(path, image);
        for cut in 0..=record.len() {
            fs.insert(&journal(), record[..cut].to_vec());
            let img = CkdImage::open_on(fs.clone(), path, false).unwrap();
            let got = img.read_track(addr).unwrap();
            if cut < record.len() {
                assert_eq!(got, old, "cut at {cut}");
                assert_eq!(
                    fs.writes(path),
                    0,
                    "cut at {cut}: a torn record was applied"
                );
            } else {
                assert_eq!(got, new, "the whole record was not replayed");
            }
            drop(img);
            assert!(!fs.exists(&journal()));
        }
    }

    #[test]
    fn read_only_file_is_refused_by_name_and_nothing_is_written() {
        let fs = MemFs::new();
        let path = Path::new(IMG);
        let addr = TrackAddr::new(0, 2);
        let mut img = mem_image(&fs, 1);
        let t = with_record(&img, addr, 0x77);
        img.write_track(&t).unwrap();
        // A pending update waits in the journal.
        img.simulate_crash(Some(CrashPoint::InPlace(10)));
        let newer = with_record(&img, addr, 0x78);
        assert!(img.write_track(&newer).is_err());
        drop(img);
        let before = (fs.get(path).unwrap(), fs.get(&journal()).unwrap());
        fs.set_read_only(path, true);
        let e = CkdImage::open_on(fs.clone(), path, false).unwrap_err();
        assert_eq!(e.kind(), ImageErrorKind::Io, "{e}");
        let m = e.to_string();
        assert!(
            m.contains(IMG) && m.contains("open") && m.contains("denied"),
            "{m}"
        );
        // Read-only, the pending update is refused by track rather than dropped.
        let e = CkdImage::open_on(fs.clone(), path, true).unwrap_err();
        names(&e, addr);
        assert_eq!((fs.get(path).unwrap(), fs.get(&journal()).unwrap()), before);
        // Writable again: the update is replayed, nothing was lost.
        fs.set_read_only(path, false);
        drop(CkdImage::open_on(fs.clone(), path, false).unwrap());
        let mut img = CkdImage::open_on(fs.clone(), path, true).unwrap();
        assert_eq!(img.read_track(addr).unwrap(), newer);
        let e = img.write_track(&t).unwrap_err();
        assert_eq!(e.kind(), ImageErrorKind::ReadOnly);
        names(&e, addr);
    }

    #[test]
    fn full_disk_in_the_journal_leaves_the_image_untouched() {
        let fs = MemFs::new();
        let path = Path::new(IMG);
        let (a, b) = (TrackAddr::new(0, 1), TrackAddr::new(0, 2));
        let mut img = mem_image(&fs, 1);
        let ta = with_record(&img, a, 0xA1);
        img.write_track(&ta).unwrap();
        for space in [0, 20, 1000, (JOURNAL_HDR + TRACK_SLOT - 1) as u64] {
            fs.set_space_left(Some(space));
            let tb = with_record(&img, b, 0xB2);
            let e = img.write_track(&tb).unwrap_err();
            assert_eq!(e.kind(), ImageErrorKind::Io, "{e}");
            names(&e, b);
            assert!(e.to_string().contains("No space left"), "{e}");
            assert_eq!(img.read_track(a).unwrap(), ta);
            assert_eq!(img.read_track(b).unwrap(), Track::empty(b));
        }
        fs.set_space_left(None);
        drop(img);
        let img = CkdImage::open_on(fs.clone(), path, false).unwrap();
        assert_eq!(img.read_track(a).unwrap(), ta);
        assert_eq!(img.read_track(b).unwrap(), Track::empty(b));
    }

    #[test]
    fn full_disk_in_place_keeps_the_update_in_the_journal() {
        let fs = MemFs::new();
        let path = Path::new(IMG);
        let (a, b, c) = (
            TrackAddr::new(0, 1),
            TrackAddr::new(0, 2),
            TrackAddr::new(0, 3),
        );
        for reopen_while_pending in [false, true] {
            let _ = fs.remove(path);
            let mut img = mem_image(&fs, 1);
            let ta = with_record(&img, a, 0xA1);
            img.write_track(&ta).unwrap();
            // The journal record fits, the in-place write does not.
            fs.set_space_left(Some((JOURNAL_HDR + TRACK_SLOT + 4000) as u64));
            let tb = with_record(&img, b, 0xB2);
            let e = img.write_track(&tb).unwrap_err();
            names(&e, b);
            // The update is not lost: it reads back and the journal keeps it ...
            assert_eq!(img.read_track(b).unwrap(), tb);
            // ... and is not overwritten by the next update while the disk is still full.
            let tc = with_record(&img, c, 0xC3);
            let e = img.write_track(&tc).unwrap_err();
            names(&e, b);
            names(&e, c);
            assert_eq!(e.kind(), ImageErrorKind::Io);
            assert_eq!(img.read_track(c).unwrap(), Track::empty(c));
            if reopen_while_pending {
                drop(img);
                fs.set_space_left(None);
                img = CkdImage::open_on(fs.clone(), path, false).unwrap();
            } else {
                fs.set_space_left(None);
            }
            img.write_track(&tc).unwrap();
            drop(img);
            let img = CkdImage::open_on(fs.clone(), path, true).unwrap();
            assert_eq!(img.read_track(a).unwrap(), ta);
            assert_eq!(img.read_track(b).unwrap(), tb);
            assert_eq!(img.read_track(c).unwrap(), tc);
        }
    }

    #[test]
    fn failed_sync_is_reported_by_track_and_completed_later() {
        let fs = MemFs::new();
        let path = Path::new(IMG);
        let b = TrackAddr::new(0, 2);
        let mut img = mem_image(&fs, 1);
        fs.set_fail_sync(true);
        let tb = with_record(&img, b, 0xB2);
        let e = img.write_track(&tb).unwrap_err();
        names(&e, b);
        assert!(e.to_string().contains("sync"), "{e}");
        fs.set_fail_sync(false);
        // The journal write failed to sync, the image was not touched: old.
        assert_eq!(img.read_track(b).unwrap(), Track::empty(b));
        img.write_track(&tb).unwrap();
        drop(img);
        let img = CkdImage::open_on(fs.clone(), path, true).unwrap();
        assert_eq!(img.read_track(b).unwrap(), tb);
    }

    #[test]
    fn full_disk_during_create_removes_the_half_made_image() {
        let fs = MemFs::new();
        fs.set_space_left(Some(300));
        let opts = CreateOptions {
            cylinders: Some(1),
            volser: None,
        };
        let e = CkdImage::create_on(fs.clone(), Path::new(IMG), Model3390::M1, &opts).unwrap_err();
        assert_eq!(e.kind(), ImageErrorKind::Io, "{e}");
        assert!(e.to_string().contains(IMG), "{e}");
        assert!(!fs.exists(Path::new(IMG)));
    }
}
