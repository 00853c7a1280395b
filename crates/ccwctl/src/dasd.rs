// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `ccwctl dasd`: an ECKD 3390, driven through channel programs by ccw-dasd on any backend:
//! a Hercules-compatible CKD image on the simulated channel subsystem (`dasd rdc IMAGE`), or
//! a real DASD behind vfio-ccw (`ccwctl --vfio MDEV|BUSID dasd rdc`; `rdc`, `read` and `write`).
//!
//! Every operation except creating the image file is a channel program shaped like Linux
//! `dasd_eckd`'s (Define Extent, Locate Record, data commands with IDALs), laid out in guest
//! memory and run through css-core's `Subchannel::submit` (ccw-translate, then the backend):
//! the same path a guest's I/O takes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ccw_dasd::{DasdSession, EckdProgram, LayoutOptions, SessionError, SessionErrorKind};
use ccw_types::eckd::{HEADS, TrackAddr, records_per_track};
use ccw_types::{DeviceStatus, SubchannelStatus};
use clap::Subcommand;
use css_core::Backend;
use mock_backend::MockBackend;
use mock_backend::dasd::{
    CkdImage, CreateOptions, Eckd, Model3390, check_volser, parse_vol1, sense, volume_labels,
};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::commands::{CommandError, Report};

mod report;
use crate::target::{TargetError, TargetErrorKind};
pub use report::{FormatReport, InitReport, RdcReport, ReadReport, WriteReport};

/// Device number of the simulated 3390.
const DEVNO: u16 = 0x0190;
/// Guest memory for DASD programs (a cylinder's worth of 4 KiB records fits).
const MEMORY: usize = 16 << 20;
/// CCWs per format program (ccw-translate's default segment limit is 256).
const MAX_CCWS: usize = 240;

/// `ccwctl dasd` subcommands.
#[derive(Debug, Subcommand)]
pub enum DasdCommand {
    /// Create a CKD image (sparse) and write its volume label (IPL1, IPL2, VOL1 on cylinder 0
    /// head 0) through channel programs.
    Init {
        /// The image file to create (must not exist).
        image: PathBuf,
        /// 3390 model: 3390-1, -2, -3, -9, -27 or -54.
        #[arg(long, default_value = "3390-3")]
        model: Model3390,
        /// Volume serial (1-6 characters A-Z 0-9 @ # $).
        #[arg(long)]
        volser: String,
        /// Create fewer cylinders than the model has (a small volume for tests).
        #[arg(long)]
        cylinders: Option<u32>,
    },
    /// Format tracks with fixed-size records (R1..Rn of zeros), as `dasdfmt` lays out a
    /// volume. Cylinder 0 head 0 (the label track) is kept.
    Format {
        /// The image file.
        image: PathBuf,
        /// Record (block) size: 512, 1024, 2048 or 4096.
        #[arg(long, default_value_t = 4096)]
        blksize: u16,
        /// Cylinders to format, `A-B` or `A` (default: all).
        #[arg(long, value_name = "A-B")]
        cylinders: Option<String>,
    },
    /// Read record `record` of track `cyl`/`head` (its count, key and data).
    /// Record 0 reads record zero.
    Read {
        /// `[IMAGE] CYL HEAD RECORD`: the image file (not with --vfio), the cylinder, the head
        /// (0-14) and the record number.
        #[arg(num_args = 3..=4, required = true, value_names = ["IMAGE", "CYL", "HEAD", "RECORD"])]
        at: Vec<String>,
        /// Write the data area to this file instead of dumping it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Rewrite the data area of an existing record (its length stays).
    /// Records 1-255.
    Write {
        /// `[IMAGE] CYL HEAD RECORD`: the image file (not with --vfio), the cylinder, the head
        /// (0-14) and the record number.
        #[arg(num_args = 3..=4, required = true, value_names = ["IMAGE", "CYL", "HEAD", "RECORD"])]
        at: Vec<String>,
        /// The new data, from this file (zero padded to the record's length).
        #[arg(long, conflicts_with = "fill")]
        data: Option<PathBuf>,
        /// Fill the record with this byte (hex, e.g. 0x40).
        #[arg(long, value_parser = parse_byte)]
        fill: Option<u8>,
    },
    /// Read Device Characteristics and decode them.
    Rdc {
        /// The image file (not with --vfio).
        image: Option<PathBuf>,
    },
}

/// A record's place: `[IMAGE] CYL HEAD RECORD`.
struct Location {
    image: Option<PathBuf>,
    cyl: u32,
    head: u16,
    record: u8,
}

fn location(at: &[String]) -> Result<Location, CommandError> {
    let (image, rest) = match at.len() {
        4 => (Some(PathBuf::from(&at[0])), &at[1..]),
        3 => (None, at),
        n => {
            return Err(CommandError::Usage(format!(
                "expected [IMAGE] CYL HEAD RECORD, got {n} arguments"
            )));
        }
    };
    fn num<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, CommandError> {
        s.parse()
            .map_err(|_| CommandError::Usage(format!("{what} `{s}` is not a number in range")))
    }
    Ok(Location {
        image,
        cyl: num("cylinder", &rest[0])?,
        head: num("head", &rest[1])?,
        record: num("record", &rest[2])?,
    })
}

fn parse_byte(s: &str) -> Result<u8, String> {
    let t = s.trim_start_matches("0x").trim_start_matches("0X");
    u8::from_str_radix(t, 16).map_err(|_| format!("`{s}` is not a hex byte"))
}

fn target_err(kind: TargetErrorKind, msg: impl Into<String>) -> CommandError {
    CommandError::Target(TargetError::new(kind, msg))
}

/// Names of the sense bits the 3390 model sets.
fn sense_text(s: &[u8; 32]) -> String {
    let mut parts = Vec::new();
    let b0 = [
        (sense::CMD_REJECT, "command reject"),
        (sense::EQUIPMENT_CHECK, "equipment check"),
    ];
    let b1 = [
        (sense::INVALID_TRACK_FORMAT, "invalid track format"),
        (sense::NO_RECORD_FOUND, "no record found"),
        (sense::FILE_PROTECTED, "file protected"),
        (sense::WRITE_INHIBITED, "write inhibited"),
    ];
    parts.extend(b0.iter().filter(|(m, _)| s[0] & m != 0).map(|(_, n)| *n));
    parts.extend(b1.iter().filter(|(m, _)| s[1] & m != 0).map(|(_, n)| *n));
    if parts.is_empty() {
        parts.push("no sense bits");
    }
    let hex: String = s[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{} (sense {hex}.., message {:#04x})",
        parts.join(", "),
        s[7]
    )
}

/// The [`CommandError`] of a program that could not be run.
fn session_err(e: SessionError) -> CommandError {
    let kind = match e.kind() {
        SessionErrorKind::Translate | SessionErrorKind::Layout => TargetErrorKind::Rejected,
        SessionErrorKind::Timeout => TargetErrorKind::Timeout,
        SessionErrorKind::NoSubchannel => TargetErrorKind::NoDevice,
        _ => match &e {
            SessionError::Css(c) => crate::target::target_error(c).kind,
            _ => TargetErrorKind::Other,
        },
    };
    target_err(kind, e.to_string())
}

/// A 3390 on an open subchannel of any backend.
struct Dasd<B: Backend> {
    session: tokio::sync::Mutex<DasdSession<B>>,
}

/// A 3390 on its own simulated subsystem, from `image`.
async fn simulated(image: CkdImage, timeout: Duration) -> Result<Dasd<MockBackend>, CommandError> {
    let mem = memory()?;
    let backend = MockBackend::builder()
        .subchannel(DEVNO, Box::new(Eckd::new(image, DEVNO)))
        .guest_memory(&*mem)
        .build()
        .map_err(|e| target_err(TargetErrorKind::Other, e.to_string()))?;
    Dasd::open(Arc::new(backend), mem, timeout).await
}

fn memory() -> Result<Arc<GuestMemoryMmap>, CommandError> {
    GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEMORY)])
        .map(Arc::new)
        .map_err(|e| target_err(TargetErrorKind::Other, format!("guest memory: {e}")))
}

impl<B: Backend> Dasd<B> {
    async fn open(
        backend: Arc<B>,
        mem: Arc<GuestMemoryMmap>,
        timeout: Duration,
    ) -> Result<Self, CommandError> {
        let session = DasdSession::open(backend, mem, None)
            .await
            .map_err(session_err)?
            .with_timeout(timeout);
        Ok(Dasd {
            session: tokio::sync::Mutex::new(session),
        })
    }

    /// Runs `prog`; returns what its input commands read. Unit check becomes an error that
    /// names the sense.
    async fn exec(
        &self,
        prog: &EckdProgram,
        opts: LayoutOptions,
    ) -> Result<Vec<Vec<u8>>, CommandError> {
        let mut s = self.session.lock().await;
        let done = s.run(prog, opts).await.map_err(session_err)?;
        let scsw = done.irb.scsw;
        let dstat = DeviceStatus::from_bits(scsw.dstat);
        let cstat = SubchannelStatus::from_bits(scsw.cstat);
        if dstat.contains(DeviceStatus::UNIT_CHECK) {
            let sense = if done.irb.ecw != [0; 32] {
                done.irb.ecw
            } else {
                s.sense().await.map_err(session_err)?
            };
            return Err(CommandError::Device(format!(
                "unit check: {}",
                sense_text(&sense)
            )));
        }
        if dstat != (DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END) || !cstat.is_empty() {
            return Err(CommandError::Device(format!(
                "channel program ended with device status {dstat}, subchannel status {cstat}"
            )));
        }
        Ok(done.inputs)
    }

    /// Closes the subchannel.
    async fn close(self) -> Result<(), CommandError> {
        self.session.into_inner().close().await.map_err(session_err)
    }

    /// The volume's cylinders, from Read Device Characteristics.
    async fn cylinders(&self) -> Result<u32, CommandError> {
        let d = self.exec(&EckdProgram::rdc(), idal()).await?;
        let r = RdcReport::from_bytes(&d[0])
            .ok_or_else(|| CommandError::Device("short Read Device Characteristics".into()))?;
        Ok(if r.cylinders == 0xFFFE {
            r.long_cylinders
        } else {
            u32::from(r.cylinders)
        })
    }

    /// The count field of record `r` of `t`.
    async fn count_of(&self, t: TrackAddr, r: u8) -> Result<[u8; 8], CommandError> {
        let data = if r == 0 {
            self.exec(&EckdProgram::read_r0(t, 8), idal()).await?
        } else {
            self.exec(&EckdProgram::read_count_of(t, r), idal()).await?
        };
        let mut c = [0u8; 8];
        c.copy_from_slice(&data[0][..8]);
        if c[4] != r {
            return Err(CommandError::Device(format!(
                "no record {r} on {t} (the record after R{} is R{})",
                r.saturating_sub(1),
                c[4]
            )));
        }
        Ok(c)
    }
}

fn idal() -> LayoutOptions {
    LayoutOptions {
        idal: true,
        data_chain_reads: false,
    }
}

fn open_image(path: &Path, read_only: bool) -> Result<CkdImage, CommandError> {
    CkdImage::open(path, read_only)
        .map_err(|e| target_err(TargetErrorKind::NoDevice, e.to_string()))
}

fn check_track(cylinders: u32, cyl: u32, head: u16) -> Result<TrackAddr, CommandError> {
    if cyl >= cylinders || head >= HEADS {
        return Err(CommandError::Usage(format!(
            "cylinder {cyl} head {head} is outside the volume ({cylinders} cylinders, heads 0-14)"
        )));
    }
    Ok(TrackAddr::new(cyl, head))
}

fn parse_range(s: &str, cylinders: u32) -> Result<(u32, u32), CommandError> {
    let bad = || CommandError::Usage(format!("--cylinders `{s}`: expected A-B or A"));
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        ),
        None => {
            let a = s.trim().parse().map_err(|_| bad())?;
            (a, a)
        }
    };
    if a > b || b >= cylinders {
        return Err(CommandError::Usage(format!(
            "--cylinders {s}: must be within 0-{} and ascending",
            cylinders - 1
        )));
    }
    Ok((a, b))
}

/// Runs one `dasd` subcommand and returns its report printer.
///
/// `vfio` is the `--vfio` device (an mdev, or a bus id to claim): `rdc`, `read` and `write`
/// then run on that real DASD instead of an image; `init` and `format` need an image.
pub async fn dasd_cmd(
    cmd: &DasdCommand,
    timeout: Duration,
    vfio: Option<crate::backends::VfioArgs<'_>>,
) -> Result<Box<dyn FnOnce(bool) -> String>, CommandError> {
    if vfio.is_some() && matches!(cmd, DasdCommand::Init { .. } | DasdCommand::Format { .. }) {
        return Err(CommandError::Usage(
            "`dasd init` and `dasd format` work on an image file, not with --vfio".into(),
        ));
    }
    let image = match cmd {
        DasdCommand::Read { at, .. } | DasdCommand::Write { at, .. } => Some(location(at)?.image),
        DasdCommand::Rdc { image } => Some(image.clone()),
        _ => None,
    };
    if let DasdCommand::Write { at, data, fill } = cmd {
        // Usage errors before any device is touched.
        if location(at)?.record == 0 {
            return Err(CommandError::Usage(
                "record 0 (R0) is written by `dasd format`, not by `dasd write`".into(),
            ));
        }
        if data.is_none() && fill.is_none() {
            return Err(CommandError::Usage(
                "give --data FILE or --fill BYTE".into(),
            ));
        }
    }
    if let Some(image) = image {
        let image = image.as_deref();
        let writes = matches!(cmd, DasdCommand::Write { .. });
        return match (vfio, image) {
            (Some(_), Some(_)) => Err(CommandError::Usage(
                "give the image file or --vfio, not both".into(),
            )),
            (None, None) => Err(CommandError::Usage(
                "give the image file (or --vfio MDEV|BUSID for a real DASD)".into(),
            )),
            (None, Some(path)) => {
                let dasd = simulated(open_image(path, !writes)?, timeout).await?;
                {
                    let r = device_cmd(&dasd, cmd).await;
                    finish(dasd, r).await
                }
            }
            (Some(args), None) => on_vfio(args, timeout, cmd).await,
        };
    }
    match cmd {
        DasdCommand::Init {
            image,
            model,
            volser,
            cylinders,
        } => {
            check_volser(volser).map_err(CommandError::Usage)?;
            let opts = CreateOptions {
                cylinders: *cylinders,
                volser: None,
            };
            let img = CkdImage::create(image, *model, &opts)
                .map_err(|e| target_err(TargetErrorKind::Other, e.to_string()))?;
            let cyls = img.cylinders();
            let dasd = simulated(img, timeout).await?;
            let t0 = TrackAddr::new(0, 0);
            dasd.exec(
                &EckdProgram::format_track_keyed(t0, &volume_labels(volser)),
                idal(),
            )
            .await?;
            let kd = dasd
                .exec(&EckdProgram::read_key_data(t0, 3, 4, 80), idal())
                .await?;
            let read_back = parse_vol1(&kd[0][4..]).unwrap_or_default();
            let r = InitReport {
                image: image.display().to_string(),
                model: model.to_string(),
                cylinders: cyls,
                volser: read_back,
            };
            Ok(printer(r))
        }
        DasdCommand::Format {
            image,
            blksize,
            cylinders,
        } => {
            if ![512, 1024, 2048, 4096].contains(blksize) {
                return Err(CommandError::Usage(format!(
                    "--blksize {blksize}: expected 512, 1024, 2048 or 4096"
                )));
            }
            let img = open_image(image, false)?;
            let (first, last) = match cylinders {
                Some(r) => parse_range(r, img.cylinders())?,
                None => (0, img.cylinders() - 1),
            };
            let per_track = records_per_track(0, *blksize);
            let per_prog =
                (MAX_CCWS / (usize::from(per_track) + 2)).clamp(1, usize::from(HEADS)) as u16;
            let dasd = simulated(img, timeout).await?;
            let (mut tracks, mut programs) = (0u64, 0u64);
            for cyl in first..=last {
                // Keep the label track.
                let mut head = if cyl == 0 { 1 } else { 0 };
                while head < HEADS {
                    let n = per_prog.min(HEADS - head);
                    let prog = EckdProgram::format_tracks(
                        TrackAddr::new(cyl, head),
                        n,
                        per_track as u8,
                        *blksize,
                    );
                    dasd.exec(&prog, idal()).await?;
                    tracks += u64::from(n);
                    programs += 1;
                    head += n;
                }
            }
            Ok(printer(FormatReport {
                tracks,
                records_per_track: per_track,
                blksize: *blksize,
                programs,
            }))
        }
        // Answered above.
        DasdCommand::Read { .. } | DasdCommand::Write { .. } | DasdCommand::Rdc { .. } => Err(
            CommandError::Usage("internal: dasd command dispatched twice".into()),
        ),
    }
}

/// Closes `dasd` after `result`; the command's error wins over a failed close.
async fn finish<B: Backend>(
    dasd: Dasd<B>,
    result: Result<Box<dyn FnOnce(bool) -> String>, CommandError>,
) -> Result<Box<dyn FnOnce(bool) -> String>, CommandError> {
    let closed = dasd.close().await;
    let r = result?;
    closed?;
    Ok(r)
}

/// `rdc`, `read` or `write` on the real DASD behind the vfio-ccw device `args` names.
#[cfg(feature = "vfio")]
async fn on_vfio(
    args: crate::backends::VfioArgs<'_>,
    timeout: Duration,
    cmd: &DasdCommand,
) -> Result<Box<dyn FnOnce(bool) -> String>, CommandError> {
    let mem = memory()?;
    let backend = crate::backends::open_vfio_backend(args, mem.clone())?;
    let dasd = Dasd::open(backend, mem, timeout).await?;
    let r = device_cmd(&dasd, cmd).await;
    finish(dasd, r).await
}

#[cfg(not(feature = "vfio"))]
async fn on_vfio(
    _args: crate::backends::VfioArgs<'_>,
    _timeout: Duration,
    _cmd: &DasdCommand,
) -> Result<Box<dyn FnOnce(bool) -> String>, CommandError> {
    Err(target_err(
        TargetErrorKind::Unavailable,
        "--vfio needs ccwctl built with the `vfio` feature",
    ))
}

/// `rdc`, `read` or `write` on an open DASD of any backend.
async fn device_cmd<B: Backend>(
    dasd: &Dasd<B>,
    cmd: &DasdCommand,
) -> Result<Box<dyn FnOnce(bool) -> String>, CommandError> {
    match cmd {
        DasdCommand::Read { at, out } => {
            let Location {
                cyl, head, record, ..
            } = location(at)?;
            let (cyl, head, record) = (&cyl, &head, &record);
            let t = check_track(dasd.cylinders().await?, *cyl, *head)?;
            let c = dasd.count_of(t, *record).await?;
            let kl = c[5];
            let dl = u16::from_be_bytes([c[6], c[7]]);
            let (key, data) = if *record == 0 {
                let all = dasd
                    .exec(&EckdProgram::read_r0(t, 8 + u16::from(kl) + dl), idal())
                    .await?;
                let kd = all[0][8..].to_vec();
                (
                    kd[..usize::from(kl)].to_vec(),
                    kd[usize::from(kl)..].to_vec(),
                )
            } else {
                let kd = dasd
                    .exec(&EckdProgram::read_key_data(t, *record, kl, dl), idal())
                    .await?;
                let kd = &kd[0];
                (
                    kd[..usize::from(kl)].to_vec(),
                    kd[usize::from(kl)..].to_vec(),
                )
            };
            let out_name = match out {
                Some(p) => {
                    std::fs::write(p, &data).map_err(|e| {
                        target_err(TargetErrorKind::Other, format!("{}: {e}", p.display()))
                    })?;
                    Some(p.display().to_string())
                }
                None => None,
            };
            let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
            Ok(printer(ReadReport {
                cyl: *cyl,
                head: *head,
                record: *record,
                key_len: kl,
                data_len: dl,
                key: hex(&key),
                data: if out_name.is_some() {
                    String::new()
                } else {
                    hex(&data)
                },
                out: out_name,
                raw: data,
                raw_key: key,
            }))
        }
        DasdCommand::Write { at, data, fill } => {
            let Location {
                cyl, head, record, ..
            } = location(at)?;
            let (cyl, head, record) = (&cyl, &head, &record);
            if *record == 0 {
                return Err(CommandError::Usage(
                    "record 0 (R0) is written by `dasd format`, not by `dasd write`".into(),
                ));
            }
            let bytes_in = match (data, fill) {
                (Some(p), _) => Some(std::fs::read(p).map_err(|e| {
                    target_err(TargetErrorKind::Other, format!("{}: {e}", p.display()))
                })?),
                (None, Some(_)) => None,
                (None, None) => {
                    return Err(CommandError::Usage(
                        "give --data FILE or --fill BYTE".into(),
                    ));
                }
            };
            let t = check_track(dasd.cylinders().await?, *cyl, *head)?;
            let c = dasd.count_of(t, *record).await?;
            let dl = usize::from(u16::from_be_bytes([c[6], c[7]]));
            let payload = match bytes_in {
                Some(b) if b.len() > dl => {
                    return Err(CommandError::Usage(format!(
                        "{} bytes do not fit record {record} ({dl} bytes)",
                        b.len()
                    )));
                }
                Some(mut b) => {
                    b.resize(dl, 0);
                    b
                }
                None => vec![fill.unwrap_or(0); dl],
            };
            dasd.exec(&EckdProgram::write_data(t, *record, &[payload]), idal())
                .await?;
            Ok(printer(WriteReport {
                cyl: *cyl,
                head: *head,
                record: *record,
                bytes: dl,
            }))
        }
        DasdCommand::Rdc { .. } => {
            let d = dasd.exec(&EckdProgram::rdc(), idal()).await?;
            let r = RdcReport::from_bytes(&d[0])
                .ok_or_else(|| CommandError::Device("short Read Device Characteristics".into()))?;
            Ok(printer(r))
        }
        DasdCommand::Init { .. } | DasdCommand::Format { .. } => Err(CommandError::Usage(
            "`dasd init` and `dasd format` work on an image file".into(),
        )),
    }
}

fn printer<R: Report + 'static>(r: R) -> Box<dyn FnOnce(bool) -> String> {
    Box::new(move |json| {
        if json {
            let mut s = serde_json::to_string_pretty(&r)
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
            s.push('\n');
            s
        } else {
            r.text()
        }
    })
}
