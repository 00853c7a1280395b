// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `vfio-guest`: vfio-backend against a real vfio-ccw device, run inside an s390x Linux guest
//! (or on an LPAR / z/VM guest). The counting runner of css-conformance lives here, with the
//! fixtures of the targets it knows, so no library ships test code.
//!
//! ```text
//! vfio-guest info --uuid <mdev-uuid> [--api auto|legacy|cdev]
//! vfio-guest bench --uuid <mdev-uuid> [--api auto|legacy|cdev] [--iters N] [--fixture virtio-blk|3390]
//! vfio-guest conformance --api legacy|cdev --uuid <mdev-uuid> [--fixture virtio-blk|3390] [--strict]
//! vfio-guest differential --api legacy|cdev --uuid <mdev-uuid>
//! vfio-guest replay --image <ckd image> --guest <answer lines>   (host side, feature `replay`)
//! vfio-guest claim --busid <busid> [--uuid <mdev-uuid>] -- <command...>
//! vfio-guest restored --busid <busid> [--expect <text>] [--name <name>] -- <command...>
//! vfio-guest vcss-bringup --api legacy|cdev --uuid <mdev-uuid> [--fixture virtio-blk|3390] [--devno host|fe.0.xxxx]
//! vfio-guest vcss-ipl --api legacy|cdev --uuid <mdev-uuid> [--devno host|fe.0.xxxx]
//! ```
//!
//! `claim` and `restored` are the device lifecycle through vfio-backend's
//! `ClaimedSubchannel`, checked from sysfs (see `lifecycle`): `claim` takes the subchannel
//! for vfio_ccw with an mdev, runs the command with it and gives everything back;
//! `restored` checks that a command which claims by itself (`ccwctl --vfio <busid>`) does.
//!
//! `info` prints what the device reports (GET_INFO, regions, interrupts, the SCHIB).
//! `bench` measures a round trip through [`VfioBackend`] against a raw pwrite / eventfd /
//! pread loop on the same device and prints both medians and the ratio: SENSE ID on QEMU's
//! virtio-blk, a 4 KiB DASD read (Define Extent, Locate Record, Read Data) with `--fixture
//! 3390` (issue 12's P4 on the Hercules lane).
//! `conformance` runs css-conformance's cases through [`VfioBackend`] on the device the
//! fixture names (QEMU's virtio-blk-ccw by default, or a Hercules 3390), then the
//! kernel-torture group through the raw io region. `differential` runs the DASD programs of
//! the differential check on a 3390 and prints one answer line each; `replay` runs the same
//! programs on mock-backend's ECKD model over a copy of the image (see `differential`). Each group prints
//! `group: N passed, M failed, K skipped`. The multi-IDAW group (QEMU's known defect), the
//! kernel-torture group (kernel findings) and the cases that meet a named defect (groups
//! `kernel-findings` and `hercules-defects`, see `fixtures::findings`) are reported apart
//! unless `--strict`.
//! `vcss-bringup` passes the device through vcss (the guest-facing channel subsystem a VMM
//! runs) with the device number kept or replaced, and plays a Linux guest's bring-up against
//! it through vcss's instruction handlers; `vcss-ipl` loads the lane 3390's IPL record chain
//! through it with QEMU's firmware method for vfio-ccw (see `vcss_guest`). Each prints
//! `vcss-bringup: N passed, M failed` (or `vcss-ipl: ...`).
//! Exit status: 0 success, 1 failure, 2 usage error.

#![forbid(unsafe_code)]

mod differential;
mod fixtures;
mod lifecycle;
mod measure;
mod raw;
mod runner;
mod vcss_guest;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccw_translate::{ControlArea, Mapper};
use ccw_types::ccw::cmd;
use ccw_types::eckd::TrackAddr;
use ccw_types::{CcwFlags, CcwFormat, CcwRepr, CommandOrb, DeviceStatus, Orb, Scsw};
use css_conformance::{Ctx, cases};
use css_core::{Backend, BackendError, BackendErrorKind, ConditionCode};
use fixtures::{
    HERCULES_DEFECT_GROUP, KERNEL_FINDINGS_GROUP, KERNEL_GROUP, QEMU_DEFECT, QEMU_DEFECT_GROUP,
    QEMU_DEFECTS_GROUP, Target,
};
use measure::{RoundTrip, backend_round_trips, median, raw_round_trips};
use runner::{GroupReport, run_groups};
use vcss::passthrough::{BadDevno, DevnoMapping};
use vcss_guest::{Checks, Expect, Guest};
use vfio_backend::{
    ApiChoice, DEFAULT_CONTROL_IOVA, VfioBackend, VfioDevice, VfioMapper, VfioOptions, uapi,
};

type Result<T> = std::result::Result<T, BackendError>;

const USAGE: &str = "usage:
  vfio-guest info --uuid <mdev-uuid|sysfs-path> [--api auto|legacy|cdev]
  vfio-guest bench --uuid <mdev-uuid|sysfs-path> [--api auto|legacy|cdev] [--iters N] [--fixture virtio-blk|3390]
  vfio-guest conformance --api legacy|cdev --uuid <mdev-uuid|sysfs-path> [--fixture virtio-blk|3390] [--strict]
  vfio-guest differential --api legacy|cdev --uuid <mdev-uuid|sysfs-path>
  vfio-guest replay --image <ckd image> --guest <answer lines>   (host; feature `replay`)
  vfio-guest vcss-bringup --api legacy|cdev --uuid <mdev-uuid|sysfs-path> [--fixture virtio-blk|3390] [--devno host|fe.0.xxxx]
  vfio-guest vcss-ipl --api legacy|cdev --uuid <mdev-uuid|sysfs-path> [--devno host|fe.0.xxxx]

conformance targets the virtio-blk-ccw device of a QEMU guest (--fixture virtio-blk, the
default) or a Hercules 3390 (--fixture 3390): what the emulator cannot do is skipped with the
reason; the multi-idaw group (QEMU's known IDAW defect), the kernel-torture group, and the
cases meeting a named defect (groups kernel-findings and hercules-defects) are reported apart;
--strict counts and runs everything (real hardware).";

/// How long one I/O may take before the run counts as failed.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Args {
    cmd: String,
    uuid: String,
    api: ApiChoice,
    iters: usize,
    strict: bool,
    fixture: Target,
    image: Option<std::path::PathBuf>,
    guest: Option<std::path::PathBuf>,
    devno: DevnoMapping,
}

fn parse_args(argv: &[String]) -> std::result::Result<Args, String> {
    let mut it = argv.iter();
    let cmd = it.next().ok_or("missing command")?.clone();
    const COMMANDS: [&str; 7] = [
        "info",
        "bench",
        "conformance",
        "differential",
        "replay",
        "vcss-bringup",
        "vcss-ipl",
    ];
    if !COMMANDS.contains(&cmd.as_str()) {
        return Err(format!("unknown command `{cmd}`"));
    }
    let (mut uuid, mut api, mut iters, mut strict) = (None, ApiChoice::Auto, 200, false);
    let mut fixture = Target::VirtioBlk;
    let mut image = None;
    let mut guest = None;
    let mut devno = DevnoMapping::Host;
    let vcss = cmd.starts_with("vcss-");
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--uuid" => uuid = Some(value()?.clone()),
            "--api" => api = value()?.parse().map_err(|e: BackendError| e.detail)?,
            "--iters" => {
                iters = value()?
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n > 0)
                    .ok_or("--iters needs a positive number")?
            }
            "--strict" if cmd == "conformance" => strict = true,
            "--fixture" if cmd == "conformance" || cmd == "bench" || cmd == "vcss-bringup" => {
                fixture = value()?.parse()?
            }
            "--devno" if vcss => devno = value()?.parse().map_err(|e: BadDevno| e.to_string())?,
            "--image" if cmd == "replay" => image = Some(value()?.into()),
            "--guest" if cmd == "replay" => guest = Some(value()?.into()),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if cmd == "replay" {
        if image.is_none() || guest.is_none() {
            return Err("replay needs --image and --guest".into());
        }
    } else if image.is_some() {
        return Err("--image is for replay only".into());
    }
    let uuid = match (uuid, cmd.as_str()) {
        (Some(u), _) => u,
        (None, "replay") => String::new(),
        (None, _) => return Err("--uuid is required".into()),
    };
    if (cmd == "conformance" || cmd == "differential" || vcss) && api == ApiChoice::Auto {
        return Err(format!("{cmd} needs --api legacy or --api cdev"));
    }
    Ok(Args {
        cmd,
        uuid,
        api,
        iters,
        strict,
        fixture,
        image,
        guest,
        devno,
    })
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // The device lifecycle takes a command after `--`: its own parser.
    if argv
        .first()
        .is_some_and(|c| c == "claim" || c == "restored")
    {
        return lifecycle::main(&argv);
    }
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}\n{}", lifecycle::USAGE);
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vfio-guest: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vfio-guest: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match args.cmd.as_str() {
            "info" => info(&args),
            "bench" => bench(&args).await,
            "differential" => differential_guest(&args).await,
            "replay" => replay(&args).await,
            "vcss-bringup" => vcss_run(&args, false).await,
            "vcss-ipl" => vcss_run(&args, true).await,
            _ => conformance(&args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vfio-guest {}: {e}", args.cmd);
            ExitCode::FAILURE
        }
    }
}

fn fail(op: &'static str, detail: impl Into<String>) -> BackendError {
    BackendError::new(BackendErrorKind::Io, op).with_detail(detail)
}

fn flag_names(flags: u32, names: &[(u32, &str)]) -> String {
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join("|")
    }
}

fn info(args: &Args) -> Result<()> {
    let dev = VfioDevice::open(&args.uuid, args.api)?;
    println!(
        "device {} subchannel {} api {}",
        dev.uuid(),
        dev.subchannel(),
        dev.api()
    );
    let i = dev.info();
    println!(
        "info flags={:#x} ({}) regions={} irqs={}",
        i.flags,
        flag_names(
            i.flags,
            &[(1, "RESET"), (2, "PCI"), (16, "CCW"), (128, "CAPS")]
        ),
        i.num_regions,
        i.num_irqs
    );
    for r in &dev.regions().all {
        println!("{r}");
    }
    for q in dev.irqs() {
        let name = match q.index {
            uapi::VFIO_CCW_IO_IRQ_INDEX => "io",
            uapi::VFIO_CCW_CRW_IRQ_INDEX => "crw",
            uapi::VFIO_CCW_REQ_IRQ_INDEX => "req",
            _ => "?",
        };
        println!(
            "irq {} ({name}) count={} flags={:#x} ({})",
            q.index,
            q.count,
            q.flags,
            flag_names(
                q.flags,
                &[
                    (1, "EVENTFD"),
                    (2, "MASKABLE"),
                    (4, "AUTOMASKED"),
                    (8, "NORESIZE")
                ]
            )
        );
    }
    match dev.read_schib() {
        Ok(s) => {
            let p = &s.pmcw;
            println!(
                "schib devno={:04x} isc={} enabled={} dnv={} qdio={} lpm={:02x} pim={:02x} pam={:02x} pom={:02x} chpids={}",
                p.flags.devno(),
                p.flags.isc(),
                p.flags.enabled() as u8,
                p.flags.dnv() as u8,
                p.flags.qdio() as u8,
                p.lpm,
                p.pim,
                p.pam,
                p.pom,
                p.chpid
                    .iter()
                    .map(|c| format!("{c:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            println!("schib {}", s.scsw);
        }
        Err(e) if e.kind == BackendErrorKind::Unsupported => println!("schib unsupported: {e}"),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// A SENSE ID program in `mapper`'s control memory: one CCW (SLI, count 256) and its data
/// area. Returns the ORB and the data area.
fn sense_id_program(mapper: &VfioMapper) -> Result<(Orb, ControlArea, ControlArea)> {
    let map = |e: ccw_translate::MapError| fail("control memory", e.to_string());
    let data = mapper.alloc_control(256).map_err(map)?;
    let prog = mapper.alloc_control(8).map_err(map)?;
    let ccw = CcwRepr {
        cmd: cmd::SENSE_ID,
        flags: CcwFlags::SLI,
        count: 256,
        cda: data.addr as u32,
    }
    .emit(CcwFormat::Format1)
    .map_err(|e| fail("encode CCW", e.to_string()))?;
    mapper.write_control(&prog, 0, &ccw).map_err(map)?;
    let orb = CommandOrb::new(0x5E45_1D00, prog.addr as u32).emit();
    Ok((orb, prog, data))
}

/// Checks the SCSW of a SENSE ID: final, channel end + device end, no subchannel status.
fn check_sense_id(scsw: &Scsw) -> Result<()> {
    let ok = scsw.is_final()
        && scsw
            .device_status()
            .contains(DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END)
        && scsw.cstat == 0;
    if ok {
        Ok(())
    } else {
        Err(fail("SENSE ID", format!("unexpected status: {scsw}")))
    }
}

fn check_data(mapper: &VfioMapper, data: &ControlArea, path: &str) -> Result<()> {
    let mut id = [0u8; 8];
    mapper
        .read_control(data, 0, &mut id)
        .map_err(|e| fail("read data", e.to_string()))?;
    println!(
        "sense-id {path}: {} (control unit {:02x}{:02x} model {:02x})",
        id.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
        id[1],
        id[2],
        id[3]
    );
    if id[0] != 0xFF {
        return Err(fail(
            "SENSE ID",
            format!("{path}: data byte 0 is {:#04x}, not 0xff", id[0]),
        ));
    }
    Ok(())
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The bench's program: SENSE ID on QEMU's virtio-blk, a 4 KiB DASD read on a 3390.
fn bench_program(target: Target, mapper: &VfioMapper) -> Result<(Orb, ControlArea, ControlArea)> {
    match target {
        Target::VirtioBlk => sense_id_program(mapper),
        Target::Dasd3390 => dasd_read_program(mapper),
    }
}

/// The record the 4 KiB DASD read bench reads: the one the Hercules lane's host fills before
/// boot (xtask/s390x/dasd_records.rs `READ_AT`).
const DASD_BENCH_RECORD: (u16, u16, u8) = (0, 2, 1);
/// Its data length (`dasdinit -linux`: 4096-byte records).
const DASD_RECORD_LEN: u16 = 4096;

/// Define Extent (read only, the record's cylinder) + Locate Record (Read Data, one record) +
/// Read Data (0x86) of 4096 bytes, as Linux's dasd_eckd reads a block. Returns the ORB, the
/// program and the data area.
fn dasd_read_program(mapper: &VfioMapper) -> Result<(Orb, ControlArea, ControlArea)> {
    let map = |e: ccw_translate::MapError| fail("control memory", e.to_string());
    let (cyl, head, rec) = DASD_BENCH_RECORD;
    let data = mapper
        .alloc_control(usize::from(DASD_RECORD_LEN))
        .map_err(map)?;
    let prog = mapper.alloc_control(24 + 32).map_err(map)?;
    let parms = prog.addr as u32 + 24;
    // The record's cylinder, read only; Read Data (0x06) of one record, count orientation.
    let de = ccw_dasd::define_extent(
        ccw_dasd::mask::READ_ONLY,
        TrackAddr::new(cyl.into(), 0),
        TrackAddr::new(cyl.into(), 14),
    );
    let lr = ccw_dasd::locate(
        0,
        0x06,
        1,
        TrackAddr::new(cyl.into(), head),
        rec,
        DASD_RECORD_LEN,
    );
    let mut bytes = Vec::with_capacity(56);
    for (cmd, flags, count, cda) in [
        (0x63, CcwFlags::CC, 16, parms),
        (0x47, CcwFlags::CC, 16, parms + 16),
        (0x86, CcwFlags::NONE, DASD_RECORD_LEN, data.addr as u32),
    ] {
        let ccw = CcwRepr {
            cmd,
            flags,
            count,
            cda,
        }
        .emit(CcwFormat::Format1)
        .map_err(|e| fail("encode CCW", e.to_string()))?;
        bytes.extend_from_slice(&ccw);
    }
    bytes.extend_from_slice(&de);
    bytes.extend_from_slice(&lr);
    mapper.write_control(&prog, 0, &bytes).map_err(map)?;
    let orb = CommandOrb::new(0xDA5D_0000, prog.addr as u32).emit();
    Ok((orb, prog, data))
}

/// Checks every I/O of the bench ended as its program should: SENSE ID with CE|DE, the DASD
/// read with CE|DE, no subchannel status, residual 0 and cpa one past the third CCW.
fn check_bench_io(target: Target, prog: &ControlArea, scsw: &Scsw) -> Result<()> {
    match target {
        Target::VirtioBlk => check_sense_id(scsw),
        Target::Dasd3390 => {
            let ok = scsw.is_final()
                && scsw.device_status() == DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END
                && scsw.cstat == 0
                && scsw.count.get() == 0
                && u64::from(scsw.cpa.get()) == prog.addr + 24;
            if ok {
                Ok(())
            } else {
                Err(fail("DASD read", format!("unexpected status: {scsw}")))
            }
        }
    }
}

/// Checks every I/O, drops the warm-up and returns the median.
fn summarize(
    target: Target,
    prog: &ControlArea,
    trips: Vec<RoundTrip>,
    warmup: usize,
) -> Result<Duration> {
    for t in &trips {
        check_bench_io(target, prog, &t.irb.scsw)?;
    }
    let mut times: Vec<Duration> = trips.iter().skip(warmup).map(|t| t.elapsed).collect();
    median(&mut times).ok_or_else(|| fail("bench", "no measurements"))
}

/// The data a bench run read: SENSE ID checked for its 0xff byte; the DASD record returned
/// whole for the comparison of both paths.
fn bench_data(
    target: Target,
    mapper: &VfioMapper,
    data: &ControlArea,
    path: &str,
) -> Result<Vec<u8>> {
    match target {
        Target::VirtioBlk => check_data(mapper, data, path).map(|()| Vec::new()),
        Target::Dasd3390 => {
            let mut v = vec![0u8; usize::from(DASD_RECORD_LEN)];
            mapper
                .read_control(data, 0, &mut v)
                .map_err(|e| fail("read data", e.to_string()))?;
            Ok(v)
        }
    }
}

async fn bench(args: &Args) -> Result<()> {
    let device = Arc::new(VfioDevice::open(&args.uuid, args.api)?);
    let warmup = (args.iters / 10).max(3);
    let n = warmup + args.iters;
    let target = args.fixture;

    // Raw first (it borrows the io interrupt; the backend connects its own afterwards).
    // Its control memory is a window below the backend's.
    let raw_mapper = VfioMapper::new(device.clone(), DEFAULT_CONTROL_IOVA - (1 << 20), 1 << 20)?;
    let (orb, prog, data) = bench_program(target, &raw_mapper)?;
    let raw = summarize(
        target,
        &prog,
        raw_round_trips(&device, &orb, n, IO_TIMEOUT)?,
        warmup,
    )?;
    let raw_data = bench_data(target, &raw_mapper, &data, "raw")?;

    let backend = VfioBackend::from_device(device.clone(), &VfioOptions::default())?;
    let sch = backend.subchannel();
    let mut events = backend.take_events()?;
    if backend.enable(sch, 0).await? != ConditionCode::Cc0 {
        return Err(fail("enable", "not cc 0"));
    }
    let (orb, prog, data) = bench_program(target, backend.vfio_mapper())?;
    let trips = backend_round_trips(&backend, sch, &mut events, &orb, n, IO_TIMEOUT).await?;
    let via = summarize(target, &prog, trips, warmup)?;
    let via_data = bench_data(target, backend.vfio_mapper(), &data, "backend")?;
    backend.shutdown().await;
    if raw_data != via_data {
        return Err(fail("bench", "the two paths read different data"));
    }
    if target == Target::Dasd3390 && raw_data.iter().all(|b| *b == 0) {
        return Err(fail(
            "bench",
            "the record read is all zeros, not the one the host wrote",
        ));
    }

    let what = match target {
        Target::VirtioBlk => "sense-id",
        Target::Dasd3390 => "dasd-read-4k",
    };
    println!(
        "bench {what}: backend median={:.1}us raw median={:.1}us ratio={:.2}",
        us(via),
        us(raw),
        us(via) / us(raw)
    );
    println!(
        "bench {what}: {} iterations each after {warmup} warm-up, api {}",
        args.iters,
        device.api()
    );
    Ok(())
}

/// The verdict over every group: whether the run passed, and the lines reported apart (the
/// QEMU-defect group on QEMU's device, and kernel findings, are not counted unless `strict`;
/// on a 3390 the multi-IDAW group counts).
fn verdict(
    groups: &[GroupReport],
    setup_ok: bool,
    strict: bool,
    target: Target,
) -> (bool, Vec<String>) {
    let apart = |name: &str| -> Option<String> {
        if strict {
            return None;
        }
        match name {
            KERNEL_GROUP => Some("kernel findings, reported apart (not counted)".to_string()),
            KERNEL_FINDINGS_GROUP => Some(
                "named vfio-ccw defects (kernel findings), reported apart (not counted)"
                    .to_string(),
            ),
            HERCULES_DEFECT_GROUP => {
                Some("known Hercules 3.13 defects, reported apart (not counted)".to_string())
            }
            QEMU_DEFECT_GROUP if target == Target::VirtioBlk => {
                Some(format!("affected by {QEMU_DEFECT} (not counted)"))
            }
            QEMU_DEFECTS_GROUP => {
                Some("known QEMU defects, reported apart (not counted)".to_string())
            }
            _ => None,
        }
    };
    let (mut passed, mut failed) = (0, 0);
    let mut notes = Vec::new();
    for g in groups {
        if let Some(why) = apart(g.name) {
            notes.push(format!(
                "{}: {} passed, {} failed, {} skipped: {why}",
                g.name,
                g.passed(),
                g.failed(),
                g.skipped()
            ));
        } else {
            passed += g.passed();
            failed += g.failed();
        }
    }
    (setup_ok && failed == 0 && passed > 0, notes)
}

async fn conformance(args: &Args) -> Result<()> {
    let device = Arc::new(VfioDevice::open(&args.uuid, args.api)?);
    let sch = device.subchannel();
    let devno = device.read_schib()?.pmcw.flags.devno();
    let api = device.api();
    let fixture = fixtures::fixture(args.fixture, sch, devno, args.strict).named(format!(
        "vfio-ccw {api} {} ({})",
        args.fixture,
        device.uuid()
    ));
    println!("conformance suite on {}", fixture.name);
    let keep: Arc<Mutex<Option<Arc<VfioBackend>>>> = Arc::new(Mutex::new(None));
    let keep2 = keep.clone();
    let dev2 = device.clone();
    let setup = Ctx::setup(
        move |mem| {
            let backend = Arc::new(VfioBackend::from_device(dev2, &VfioOptions::default())?);
            backend.attach_memory(mem)?;
            *keep2.lock().unwrap_or_else(|p| p.into_inner()) = Some(backend.clone());
            Ok(backend)
        },
        &fixture,
    )
    .await;
    let mut groups = Vec::new();
    let mut leaks = None;
    let setup_ok = match setup {
        Err(e) => {
            println!("setup failed: {e}");
            false
        }
        Ok(mut ctx) => {
            let (torture, suite): (Vec<_>, Vec<_>) = cases::<VfioBackend>()
                .into_iter()
                .partition(|c| c.group == KERNEL_GROUP);
            // Cases that meet a named defect run last, in the defect's group (not with
            // --strict, where everything counts).
            let named = if args.strict {
                Vec::new()
            } else {
                fixtures::findings(args.fixture)
            };
            let group_of = |name: &str| named.iter().find(|(n, _, _)| *n == name).map(|f| f.1);
            let (mut named_cases, suite): (Vec<_>, Vec<_>) =
                suite.into_iter().partition(|c| group_of(c.name).is_some());
            for c in &mut named_cases {
                if let Some(g) = group_of(c.name) {
                    c.group = g;
                }
            }
            // Grouped by defect, so each group prints one line.
            named_cases.sort_by_key(|c| c.group);
            groups.extend(run_groups(&ctx, &suite).await);
            for (name, group, why) in &named {
                println!("{group}: {name}: {why}");
            }
            groups.extend(run_groups(&ctx, &named_cases).await);
            // Nothing may stay pinned or allocated once every request has completed.
            let backend = keep.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(b) = backend {
                let m = b.vfio_mapper();
                let (pins, control) = (m.outstanding_pins(), m.outstanding_control());
                if pins != 0 || control != 0 {
                    leaks = Some(format!(
                        "{pins} pins and {control} control areas outstanding"
                    ));
                }
            }
            // The raw channel takes over the io interrupt (the backend's eventfd is no longer
            // signalled; nothing uses the backend any more) and disconnects it when dropped.
            match raw::VfioRaw::new(device.clone()) {
                Ok(r) => {
                    ctx.fx = ctx.fx.clone().with_raw(Arc::new(r));
                    groups.extend(run_groups(&ctx, &torture).await);
                    ctx.fx.raw = None;
                }
                Err(e) => println!("{KERNEL_GROUP}: not run: raw channel: {e}"),
            }
            true
        }
    };
    let (ok, notes) = verdict(&groups, setup_ok, args.strict, args.fixture);
    for n in notes {
        println!("{n}");
    }
    let total = |f: fn(&GroupReport) -> usize| groups.iter().map(f).sum::<usize>();
    println!(
        "total: {} passed, {} failed, {} skipped",
        total(GroupReport::passed),
        total(GroupReport::failed),
        total(GroupReport::skipped)
    );
    match (ok, leaks) {
        (true, None) => {
            println!("conformance {api}: PASS");
            Ok(())
        }
        (_, Some(l)) => Err(fail("conformance", format!("{api}: leaked {l}"))),
        (false, None) => Err(fail("conformance", format!("{api}: FAIL"))),
    }
}

/// `vcss-bringup` / `vcss-ipl`: the device passed through vcss, then a Linux guest's bring-up
/// or the IPL through vcss's handlers (see `vcss_guest`).
async fn vcss_run(args: &Args, ipl: bool) -> Result<()> {
    let name = if ipl { "vcss-ipl" } else { "vcss-bringup" };
    let device = Arc::new(VfioDevice::open(&args.uuid, args.api)?);
    let sch = device.subchannel();
    let api = device.api();
    let mem = Arc::new(
        vm_memory::GuestMemoryMmap::<()>::from_ranges(&[(
            vm_memory::GuestAddress(0),
            vcss_guest::MEMORY,
        )])
        .map_err(|e| fail("guest memory", e.to_string()))?,
    );
    let backend = Arc::new(VfioBackend::from_device(device, &VfioOptions::default())?);
    backend.attach_memory(mem.clone())?;
    let css = css_core::Css::new(backend.clone()).map_err(|e| fail("css", e.to_string()))?;
    println!(
        "{name} on vfio-ccw {api} ({}): host subchannel {sch} as guest 0.0.{:04x}, devno {}",
        args.uuid,
        vcss_guest::GUEST_SCH,
        args.devno
    );
    let mut checks = Checks::new(name);
    match Guest::new(css, mem, sch, args.devno, &vcss_guest::sysfs_chpid_type).await {
        Err(e) => {
            checks.record::<()>("passthrough-attach", Err(e));
        }
        Ok(mut g) => {
            if ipl {
                vcss_guest::ipl(&mut g, &mut checks).await;
            } else {
                vcss_guest::bringup(&mut g, Expect::lane(args.fixture), &mut checks).await;
            }
            if let Err(e) = g.shutdown().await {
                checks.record::<()>("host-close", Err(e));
            }
        }
    }
    println!("{}", checks.summary());
    if let Ok(b) = Arc::try_unwrap(backend) {
        b.shutdown().await;
    }
    if checks.failed == 0 && checks.passed > 0 {
        Ok(())
    } else {
        Err(fail(name, checks.summary()))
    }
}

/// The guest side of the DASD differential check: the programs of [`differential`] through
/// [`VfioBackend`] on the device, one answer line each.
async fn differential_guest(args: &Args) -> Result<()> {
    let device = Arc::new(VfioDevice::open(&args.uuid, args.api)?);
    let sch = device.subchannel();
    let mem = Arc::new(
        vm_memory::GuestMemoryMmap::<()>::from_ranges(&[(
            vm_memory::GuestAddress(0),
            differential::MEMORY,
        )])
        .map_err(|e| fail("guest memory", e.to_string()))?,
    );
    let backend = Arc::new(VfioBackend::from_device(device, &VfioOptions::default())?);
    backend.attach_memory(mem.clone())?;
    let css = css_core::Css::new(backend.clone()).map_err(|e| fail("css", e.to_string()))?;
    css.probe()
        .await
        .map_err(|e| fail("probe", e.to_string()))?;
    let lines = differential::run(&css, &mem, sch).await;
    for l in &lines {
        println!("{l}");
    }
    let errors = lines.iter().filter(|l| l.contains(" error=")).count();
    println!(
        "differential programs: {} answered, {errors} could not run",
        lines.len() - errors
    );
    drop(css);
    if let Ok(b) = Arc::try_unwrap(backend) {
        b.shutdown().await;
    }
    if errors > 0 {
        return Err(fail(
            "differential",
            format!("{errors} programs could not run"),
        ));
    }
    Ok(())
}

/// The host side: the same programs on mock-backend's ECKD model over `--image`, compared
/// with the guest's answer lines in `--guest`. Prints every difference and the summary line;
/// fails on a difference no named defect explains.
#[cfg(feature = "replay")]
async fn replay(args: &Args) -> Result<()> {
    let (Some(image), Some(guest)) = (args.image.as_deref(), args.guest.as_deref()) else {
        return Err(fail("replay", "needs --image and --guest"));
    };
    let guest: Vec<String> = std::fs::read_to_string(guest)
        .map_err(|e| fail("replay", format!("{}: {e}", guest.display())))?
        .lines()
        .map(str::to_string)
        .collect();
    let host = differential::replay(image, 0x0120)
        .await
        .map_err(|e| fail("replay", e))?;
    for l in &host {
        println!("model {l}");
    }
    let c = differential::compare(&guest, &host);
    for (what, why) in &c.named {
        println!("differs (named: {why}): {what}");
    }
    for what in &c.unnamed {
        println!("differs (UNNAMED): {what}");
    }
    println!("{}", c.summary());
    if c.unnamed.is_empty() && c.identical > 0 {
        Ok(())
    } else {
        Err(fail("replay", "differences no named defect explains"))
    }
}

/// Without the simulator the host side is absent, and says so.
#[cfg(not(feature = "replay"))]
async fn replay(args: &Args) -> Result<()> {
    let _ = (&args.image, &args.guest);
    Err(BackendError::unsupported("replay")
        .with_detail("this vfio-guest is built without feature `replay` (the simulator)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use css_conformance::TestOutcome;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_the_agreed_command_lines() {
        let a = parse_args(&argv("conformance --api legacy --uuid U")).unwrap();
        assert_eq!(
            (a.cmd.as_str(), a.api, a.uuid.as_str()),
            ("conformance", ApiChoice::Legacy, "U")
        );
        let a = parse_args(&argv("bench --uuid U --iters 50")).unwrap();
        assert_eq!((a.iters, a.api), (50, ApiChoice::Auto));
        let a = parse_args(&argv("info --uuid U --api cdev")).unwrap();
        assert_eq!((a.api, a.strict), (ApiChoice::Cdev, false));
        assert!(
            parse_args(&argv("conformance --api cdev --uuid U --strict"))
                .unwrap()
                .strict
        );
        let a = parse_args(&argv("conformance --api cdev --uuid U --fixture 3390")).unwrap();
        assert_eq!(a.fixture, Target::Dasd3390);
        let a = parse_args(&argv("conformance --api legacy --uuid U")).unwrap();
        assert_eq!(
            a.fixture,
            Target::VirtioBlk,
            "the lane's call keeps its meaning"
        );
        let a = parse_args(&argv("vcss-bringup --api legacy --uuid U")).unwrap();
        assert_eq!(
            (a.devno, a.fixture),
            (DevnoMapping::Host, Target::VirtioBlk)
        );
        let a = parse_args(&argv(
            "vcss-bringup --api cdev --uuid U --fixture 3390 --devno fe.0.1234",
        ))
        .unwrap();
        assert_eq!(
            (a.devno, a.fixture),
            (DevnoMapping::Virtual(0x1234), Target::Dasd3390)
        );
        let a = parse_args(&argv("vcss-ipl --api legacy --uuid U --devno fe.0.0190")).unwrap();
        assert_eq!(a.devno, DevnoMapping::Virtual(0x190));
    }

    #[test]
    fn rejects_bad_command_lines() {
        for bad in [
            "",
            "frob --uuid U",
            "info",
            "info --uuid",
            "bench --uuid U --iters 0",
            "bench --uuid U --iters x",
            "info --uuid U --api pci",
            "conformance --uuid U",
            "info --uuid U --verbose",
            "bench --uuid U --strict",
            "conformance --api legacy --uuid U --fixture 3380",
            "info --uuid U --fixture 3390",
            "vcss-bringup --uuid U",
            "vcss-bringup --api cdev --uuid U --devno fe.1.0005",
            "vcss-ipl --api cdev --uuid U --fixture virtio-blk",
            "info --uuid U --devno host",
        ] {
            assert!(parse_args(&argv(bad)).is_err(), "{bad}");
        }
    }

    fn group(name: &'static str, outcomes: &[TestOutcome]) -> GroupReport {
        GroupReport {
            name,
            results: outcomes.iter().cloned().map(|o| ("t", o)).collect(),
        }
    }

    #[test]
    fn verdict_keeps_the_qemu_group_and_kernel_findings_apart() {
        let pass = TestOutcome::Passed;
        let fail = TestOutcome::Failed("x".into());
        let mut groups = vec![
            group("basic", &[pass.clone(), pass.clone()]),
            group("multi-idaw", std::slice::from_ref(&fail)),
            group("kernel-torture", std::slice::from_ref(&fail)),
            group("kernel-findings", std::slice::from_ref(&fail)),
            group("hercules-defects", std::slice::from_ref(&fail)),
        ];
        let (ok, notes) = verdict(&groups, true, false, Target::VirtioBlk);
        assert!(ok);
        assert!(notes[0].starts_with(
            "multi-idaw: 0 passed, 1 failed, 0 skipped: affected by known QEMU defect"
        ));
        assert!(
            notes[1].starts_with("kernel-torture: 0 passed, 1 failed, 0 skipped: kernel findings")
        );
        assert!(notes[2].contains("named vfio-ccw defects"), "{}", notes[2]);
        assert!(
            notes[3].contains("known Hercules 3.13 defects"),
            "{}",
            notes[3]
        );
        assert!(
            !verdict(&groups, true, true, Target::VirtioBlk).0,
            "strict counts them"
        );
        // QEMU's multi-IDAW defect is QEMU's: on a 3390 that group counts.
        let (ok, notes) = verdict(&groups, true, false, Target::Dasd3390);
        assert!(!ok, "a multi-idaw failure counts on the 3390");
        assert!(
            !notes.iter().any(|n| n.starts_with("multi-idaw")),
            "{notes:?}"
        );
        groups[1] = group("multi-idaw", std::slice::from_ref(&pass));
        assert!(verdict(&groups, true, false, Target::Dasd3390).0);
        groups[0] = group("basic", &[pass.clone(), fail]);
        assert!(!verdict(&groups, true, false, Target::VirtioBlk).0);
        groups[0] = group("basic", &[pass]);
        assert!(
            !verdict(&groups, false, false, Target::VirtioBlk).0,
            "setup failed"
        );
        let skipped_only = vec![group("basic", &[TestOutcome::Skipped("s".into())])];
        assert!(
            !verdict(&skipped_only, true, false, Target::VirtioBlk).0,
            "nothing passed"
        );
        assert!(
            !verdict(&[], true, false, Target::VirtioBlk).0,
            "nothing ran"
        );
    }

    #[test]
    fn sense_id_status_check() {
        // SCSW the guest's virtio-blk device answered to SENSE ID.
        let ok =
            Scsw::read_from(&[0x00, 0x80, 0x40, 0x07, 0, 0, 0x10, 0x08, 0x0c, 0, 0, 0]).unwrap();
        assert!(check_sense_id(&ok).is_ok());
        // Unit check only (unknown command).
        let uc =
            Scsw::read_from(&[0x04, 0x82, 0x40, 0x17, 0, 0, 0x10, 0x08, 0x02, 0, 0, 0]).unwrap();
        assert!(check_sense_id(&uc).is_err());
    }
}
