// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The backend conformance suite (feature `conformance`).
//!
//! Generic async tests over any [`Backend`], run through [`Css`] and [`Subchannel`] exactly as
//! a consumer would: the suite creates a guest memory, writes channel programs into it, and
//! submits them to the device the [`Fixture`] names (a virtio-blk-ccw device). Each backend
//! compiles the same suite once (as rustls runs its tests once per crypto provider): the mock
//! runs it in `cargo xtask test`, vfio-backend runs it in an s390x guest.
//!
//! Groups print one line per test and a closing `N passed, M failed` line; tests the fixture
//! declares known-unsupported, and tests a backend cannot decide, print `skipped: reason`:
//! nothing passes silently.
//!
//! | group | tests |
//! |---|---|
//! | `basic` | SENSE ID, READ_CONF, command chaining, data chaining, TIC, single-block IDALs (format-2 4K, format-2 2K, format-1), SLI vs incorrect length, unknown command, SCHIB refresh |
//! | `async` | halt during I/O, clear during I/O, start while busy, close with I/O outstanding |
//! | `bad-programs` | TIC to TIC, misaligned cpa, cpa outside memory, data outside memory, invalid command code |
//! | `multi-idaw` | transfers over 2 and more IDAW blocks (QEMU's emulated device mishandles these) |
//!
//! ```no_run
//! use std::sync::Arc;
//! use css_core::conformance::{run_all, Fixture};
//! use css_core::{Backend, BackendError};
//! use vm_memory::GuestMemoryMmap;
//!
//! /// `make` builds the backend with the suite's guest memory attached.
//! async fn check<B: Backend>(
//!     make: impl FnOnce(Arc<GuestMemoryMmap>) -> Result<Arc<B>, BackendError>,
//! ) {
//!     let fixture = Fixture::virtio_blk("0.0.0000".parse().unwrap(), 0x0005).named("my backend");
//!     let report = run_all(make, &fixture).await; // prints `basic: 11 passed, 0 failed` ...
//!     assert!(report.is_success(), "{report}");
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ccw_types::{
    CcwFlags, CcwFormat, CcwRepr, CommandOrb, DeviceStatus, FunctionControl, Orb, SubchannelId,
    SubchannelStatus,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::backend::{Backend, BackendError};
use crate::core::IoCompletion;
use crate::css::{Css, Subchannel};
use crate::error::{CssError, CssErrorKind};
use crate::fsm::State;

/// The device under test and what it should answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// Names the backend in the report, e.g. `"mock"` or `"vfio-ccw (QEMU 10.0)"`.
    pub name: String,
    /// The subchannel of the virtio-blk-ccw device.
    pub sch: SubchannelId,
    /// Its device number.
    pub devno: u16,
    /// The first four bytes of its SENSE ID data (`ff 38 32 02`: control unit 0x3832 model 2).
    pub sense_id: [u8; 4],
    /// The first eight bytes of READ_CONF in legacy mode (the capacity in sectors, big-endian).
    pub read_conf: [u8; 8],
    /// Groups or tests this backend is known not to support, with the reason printed.
    pub known_unsupported: Vec<(String, String)>,
    /// Upper bound for one test.
    pub test_timeout: Duration,
    /// Size of the guest memory the suite creates (at guest address 0).
    pub memory_size: usize,
}

impl Fixture {
    /// A virtio-blk-ccw device with a 64 MiB disk at `sch` / `devno`, everything supported.
    pub fn virtio_blk(sch: SubchannelId, devno: u16) -> Self {
        Self {
            name: String::from("backend"),
            sch,
            devno,
            sense_id: [0xFF, 0x38, 0x32, 0x02],
            read_conf: 131_072u64.to_be_bytes(),
            known_unsupported: Vec::new(),
            test_timeout: Duration::from_secs(10),
            memory_size: 1 << 20,
        }
    }

    /// The same device behind vfio-ccw in a QEMU guest: multi-IDAW transfers are known to be
    /// wrong there (QEMU's `ccw_dstream_rw_ida()` does not advance between IDAWs).
    pub fn qemu_virtio_blk(sch: SubchannelId, devno: u16) -> Self {
        Self::virtio_blk(sch, devno).unsupported(
            "multi-idaw",
            "known QEMU defect: ccw_dstream_rw_ida() does not advance between IDAWs",
        )
    }

    /// Names the backend.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Declares a group or test known-unsupported.
    pub fn unsupported(mut self, what: impl Into<String>, reason: impl Into<String>) -> Self {
        self.known_unsupported.push((what.into(), reason.into()));
        self
    }

    fn skip_reason(&self, group: &str, test: &str) -> Option<&str> {
        self.known_unsupported
            .iter()
            .find(|(w, _)| w == group || w == test)
            .map(|(_, r)| r.as_str())
    }
}

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    /// Passed.
    Passed,
    /// Failed, with what went wrong.
    Failed(String),
    /// Not run or not decidable on this backend, with the reason.
    Skipped(String),
}

/// The results of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupReport {
    /// The group's name.
    pub name: &'static str,
    /// Every test with its outcome, in order.
    pub results: Vec<(&'static str, TestOutcome)>,
}

impl GroupReport {
    fn count(&self, f: impl Fn(&TestOutcome) -> bool) -> usize {
        self.results.iter().filter(|(_, o)| f(o)).count()
    }
    /// Tests passed.
    pub fn passed(&self) -> usize {
        self.count(|o| *o == TestOutcome::Passed)
    }
    /// Tests failed.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, TestOutcome::Failed(_)))
    }
    /// Tests skipped.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, TestOutcome::Skipped(_)))
    }
}

impl fmt::Display for GroupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, o) in &self.results {
            match o {
                TestOutcome::Passed => writeln!(f, "  ok      {}/{name}", self.name)?,
                TestOutcome::Failed(m) => writeln!(f, "  FAILED  {}/{name}: {m}", self.name)?,
                TestOutcome::Skipped(r) => {
                    writeln!(f, "  skipped {}/{name}: skipped: {r}", self.name)?
                }
            }
        }
        write!(
            f,
            "{}: {} passed, {} failed",
            self.name,
            self.passed(),
            self.failed()
        )?;
        if self.skipped() > 0 {
            write!(f, ", {} skipped", self.skipped())?;
        }
        Ok(())
    }
}

/// The results of [`run_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The fixture's name.
    pub backend: String,
    /// One report per group.
    pub groups: Vec<GroupReport>,
    /// Set when the suite could not start (backend, probe or memory failed).
    pub setup_error: Option<String>,
}

impl Report {
    /// Tests passed in all groups.
    pub fn passed(&self) -> usize {
        self.groups.iter().map(GroupReport::passed).sum()
    }
    /// Tests failed in all groups.
    pub fn failed(&self) -> usize {
        self.groups.iter().map(GroupReport::failed).sum()
    }
    /// Tests skipped in all groups.
    pub fn skipped(&self) -> usize {
        self.groups.iter().map(GroupReport::skipped).sum()
    }
    /// No failure, and the suite ran.
    pub fn is_success(&self) -> bool {
        self.setup_error.is_none() && self.failed() == 0 && self.passed() > 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "conformance suite on {}", self.backend)?;
        if let Some(e) = &self.setup_error {
            writeln!(f, "setup failed: {e}")?;
        }
        for g in &self.groups {
            writeln!(f, "{g}")?;
        }
        write!(
            f,
            "total: {} passed, {} failed, {} skipped",
            self.passed(),
            self.failed(),
            self.skipped()
        )
    }
}

/// Why a test failed (anything displayable converts into it).
#[derive(Debug)]
pub struct Failure(String);

impl<E: fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

type TestResult = Result<Verdict, Failure>;

/// What a test that did not fail concluded.
enum Verdict {
    Pass,
    /// The backend behaved legally but the property could not be observed.
    Undecided(String),
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(Failure(format!($($fmt)+)));
        }
    };
}

type BoxFut<'a> = Pin<Box<dyn Future<Output = TestResult> + Send + 'a>>;

/// The state every test gets.
struct Ctx<B: Backend> {
    css: Css<B>,
    mem: Arc<GuestMemoryMmap>,
    fx: Fixture,
}

type TestFn<B> = for<'a> fn(&'a Ctx<B>) -> BoxFut<'a>;

/// Guest memory layout of every test.
const PROG: u32 = 0x1000;
const PROG2: u32 = 0x3000;
const IDAL: u32 = 0x5000;
const DATA: u32 = 0x10000;
const DATA2: u32 = 0x20000;
/// An address no test memory reaches (still a valid 31-bit address).
const FAR: u32 = 0x7FF0_0000;

mod cmd {
    pub(super) const NOP: u8 = 0x03;
    pub(super) const SENSE: u8 = 0x04;
    pub(super) const TIC: u8 = 0x08;
    pub(super) const READ_CONF: u8 = 0x22;
    pub(super) const SENSE_ID: u8 = 0xE4;
    pub(super) const UNKNOWN: u8 = 0x99;
}

fn ccw(cmd: u8, flags: CcwFlags, count: u16, cda: u32) -> [u8; 8] {
    let repr = CcwRepr {
        cmd,
        flags,
        count,
        cda,
    };
    // Every CCW the suite builds is valid for format 1 (31-bit cda); a failure is a bug of
    // the suite itself. Tests run under `CatchPanic`, so it is reported as that test's
    // failure instead of an all-zero CCW that would pass any test expecting a program check.
    repr.emit(CcwFormat::Format1)
        .expect("the conformance suite builds CCWs with 31-bit data addresses")
}

fn none() -> CcwFlags {
    CcwFlags::from_bits(0)
}

fn orb(intparm: u32, cpa: u32) -> Orb {
    CommandOrb::new(intparm, cpa).emit()
}

impl<B: Backend> Ctx<B> {
    fn write(&self, addr: u32, bytes: &[u8]) -> Result<(), Failure> {
        self.mem.write_slice(bytes, GuestAddress(u64::from(addr)))?;
        Ok(())
    }

    fn read(&self, addr: u32, len: usize) -> Result<Vec<u8>, Failure> {
        let mut v = vec![0u8; len];
        self.mem.read_slice(&mut v, GuestAddress(u64::from(addr)))?;
        Ok(v)
    }

    fn program(&self, addr: u32, ccws: &[[u8; 8]]) -> Result<(), Failure> {
        let bytes: Vec<u8> = ccws.iter().flatten().copied().collect();
        self.write(addr, &bytes)
    }

    /// Fills `len` bytes at `addr` with a poison pattern, so transfers are visible.
    fn poison(&self, addr: u32, len: usize) -> Result<(), Failure> {
        self.write(addr, &vec![0xA5; len])
    }

    async fn open(&self) -> Result<Subchannel<B>, Failure> {
        Ok(self.css.open(self.fx.sch).await?)
    }

    async fn run(&self, o: &Orb) -> Result<IoCompletion, Failure> {
        let sub = self.open().await?;
        let r = sub.submit(o, &*self.mem).await;
        sub.close().await?;
        Ok(r?)
    }
}

/// Checks a completion ended normally with channel end + device end at `cpa`.
fn ends_normally(done: &IoCompletion, cpa: u32) -> Result<(), Failure> {
    let s = &done.irb.scsw;
    ensure!(s.is_final(), "status not final: {s:?}");
    ensure!(
        s.device_status() == DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END,
        "device status {} (want CE|DE)",
        s.device_status()
    );
    ensure!(
        s.subchannel_status().is_empty(),
        "subchannel status {} (residual count {}, {s:?})",
        s.subchannel_status(),
        s.count.get()
    );
    ensure!(
        s.cpa.get() == cpa,
        "cpa {:#x} (want {cpa:#x}, one past the last CCW)",
        s.cpa.get()
    );
    Ok(())
}

// ---------------------------------------------------------------- basic

async fn sense_id<B: Backend>(c: &Ctx<B>) -> TestResult {
    c.poison(DATA, 256)?;
    c.program(PROG, &[ccw(cmd::SENSE_ID, CcwFlags::SLI, 256, DATA)])?;
    let done = c.run(&orb(0x5E45, PROG)).await?;
    ends_normally(&done, PROG + 8)?;
    ensure!(done.intparm == 0x5E45, "intparm {:#x}", done.intparm);
    let data = c.read(DATA, 4)?;
    ensure!(
        data == c.fx.sense_id,
        "SENSE ID {data:02x?} (want {:02x?})",
        c.fx.sense_id
    );
    Ok(Verdict::Pass)
}

async fn read_conf<B: Backend>(c: &Ctx<B>) -> TestResult {
    c.poison(DATA, 16)?;
    c.program(PROG, &[ccw(cmd::READ_CONF, CcwFlags::SLI, 8, DATA)])?;
    let done = c.run(&orb(1, PROG)).await?;
    ends_normally(&done, PROG + 8)?;
    let data = c.read(DATA, 9)?;
    ensure!(
        data[..8] == c.fx.read_conf,
        "READ_CONF {data:02x?} (want {:02x?})",
        c.fx.read_conf
    );
    ensure!(data[8] == 0xA5, "READ_CONF wrote past its count");
    Ok(Verdict::Pass)
}

async fn command_chain<B: Backend>(c: &Ctx<B>) -> TestResult {
    c.poison(DATA, 256)?;
    c.poison(DATA2, 8)?;
    c.program(
        PROG,
        &[
            ccw(cmd::SENSE_ID, CcwFlags::CC | CcwFlags::SLI, 256, DATA),
            ccw(cmd::READ_CONF, CcwFlags::SLI, 8, DATA2),
        ],
    )?;
    let done = c.run(&orb(2, PROG)).await?;
    ends_normally(&done, PROG + 16)?;
    ensure!(c.read(DATA, 4)? == c.fx.sense_id, "first command's data");
    ensure!(c.read(DATA2, 8)? == c.fx.read_conf, "second command's data");
    Ok(Verdict::Pass)
}

async fn data_chain<B: Backend>(c: &Ctx<B>) -> TestResult {
    // SENSE ID's 256 bytes over two data-chained CCWs (4 + 252). (virtio commands such as
    // READ_CONF end after the first CCW's count, which is incorrect length with CD set.)
    c.poison(DATA, 8)?;
    c.poison(DATA2, 256)?;
    c.program(
        PROG,
        &[
            ccw(cmd::SENSE_ID, CcwFlags::CD, 4, DATA),
            // The channel ignores the command code of a data-chained CCW; programs repeat it
            // (vfio-ccw's translator looks at it to decide whether to pin).
            ccw(cmd::SENSE_ID, CcwFlags::SLI, 252, DATA2),
        ],
    )?;
    let done = c.run(&orb(3, PROG)).await?;
    ends_normally(&done, PROG + 16)?;
    let got = c.read(DATA, 5)?;
    ensure!(
        got[..4] == c.fx.sense_id && got[4] == 0xA5,
        "first CCW's data {got:02x?} (want {:02x?} then untouched)",
        c.fx.sense_id
    );
    let rest = c.read(DATA2, 253)?;
    ensure!(
        rest[..252].iter().all(|&b| b != 0xA5) && rest[252] == 0xA5,
        "second CCW's 252 bytes not (exactly) written"
    );
    Ok(Verdict::Pass)
}

async fn tic<B: Backend>(c: &Ctx<B>) -> TestResult {
    c.poison(DATA, 256)?;
    c.poison(DATA2, 8)?;
    c.program(
        PROG,
        &[
            ccw(cmd::SENSE_ID, CcwFlags::CC | CcwFlags::SLI, 256, DATA),
            ccw(cmd::TIC, none(), 0, PROG2),
        ],
    )?;
    c.program(PROG2, &[ccw(cmd::READ_CONF, CcwFlags::SLI, 8, DATA2)])?;
    let done = c.run(&orb(4, PROG)).await?;
    ends_normally(&done, PROG2 + 8)?;
    ensure!(c.read(DATA, 4)? == c.fx.sense_id, "data before the TIC");
    ensure!(c.read(DATA2, 8)? == c.fx.read_conf, "data after the TIC");
    Ok(Verdict::Pass)
}

/// READ_CONF through a one-IDAW list. `fmt2`/`two_k` pick the IDAW format; `at` is the data
/// address inside its block.
async fn idal_single<B: Backend>(c: &Ctx<B>, fmt2: bool, two_k: bool, at: u32) -> TestResult {
    c.poison(at, 16)?;
    if fmt2 {
        c.write(IDAL, &u64::from(at).to_be_bytes())?;
    } else {
        c.write(IDAL, &at.to_be_bytes())?;
    }
    c.program(
        PROG,
        &[ccw(cmd::READ_CONF, CcwFlags::IDA | CcwFlags::SLI, 8, IDAL)],
    )?;
    let mut o = CommandOrb::new(5, PROG);
    o.format2_idaw = fmt2;
    o.idaw_2k = two_k;
    let done = c.run(&o.emit()).await?;
    ends_normally(&done, PROG + 8)?;
    let got = c.read(at, 8)?;
    ensure!(
        got == c.fx.read_conf,
        "READ_CONF via IDAL {got:02x?} (want {:02x?})",
        c.fx.read_conf
    );
    Ok(Verdict::Pass)
}

async fn idal_4k_single<B: Backend>(c: &Ctx<B>) -> TestResult {
    idal_single(c, true, false, DATA + 0x10).await
}

async fn idal_2k_single<B: Backend>(c: &Ctx<B>) -> TestResult {
    idal_single(c, true, true, DATA + 0x810).await
}

async fn idal_format1_single<B: Backend>(c: &Ctx<B>) -> TestResult {
    idal_single(c, false, false, DATA + 0x20).await
}

async fn sli_vs_incorrect_length<B: Backend>(c: &Ctx<B>) -> TestResult {
    // SENSE ID has more data than 4 bytes: without SLI that is incorrect length (QEMU's
    // device reports a program check for a short SENSE ID instead; both end the program
    // with the length check visible).
    c.poison(DATA, 8)?;
    c.program(PROG, &[ccw(cmd::SENSE_ID, none(), 4, DATA)])?;
    let done = c.run(&orb(6, PROG)).await?;
    let cs = done.irb.scsw.subchannel_status();
    ensure!(
        cs.intersects(SubchannelStatus::INCORRECT_LENGTH | SubchannelStatus::PROGRAM_CHECK),
        "short SENSE ID without SLI: subchannel status {cs} (want IL)"
    );
    c.program(PROG, &[ccw(cmd::SENSE_ID, CcwFlags::SLI, 4, DATA)])?;
    let done = c.run(&orb(7, PROG)).await?;
    ends_normally(&done, PROG + 8)?;
    ensure!(c.read(DATA, 4)? == c.fx.sense_id, "SENSE ID data with SLI");
    ensure!(
        c.read(DATA + 4, 1)? == [0xA5],
        "SENSE ID wrote past count 4"
    );
    Ok(Verdict::Pass)
}

async fn unknown_command<B: Backend>(c: &Ctx<B>) -> TestResult {
    c.write(DATA, &[0; 8])?;
    c.program(PROG, &[ccw(cmd::UNKNOWN, CcwFlags::SLI, 1, DATA)])?;
    let sub = c.open().await?;
    let done = sub.submit(&orb(8, PROG), &*c.mem).await;
    let sense = async {
        let done = done?;
        let ds = done.irb.scsw.device_status();
        ensure!(
            ds.contains(DeviceStatus::UNIT_CHECK),
            "device status {ds} (want UC)"
        );
        // The lenient count also reads QEMU's misencoded ERW (sense count in bits 18-23).
        if let Some(&byte0) = done.irb.concurrent_sense_lenient().and_then(|s| s.first()) {
            return Ok::<u8, Failure>(byte0);
        }
        // No concurrent sense: ask with SENSE.
        c.poison(DATA2, 32)?;
        c.program(PROG2, &[ccw(cmd::SENSE, CcwFlags::SLI, 32, DATA2)])?;
        let done = sub.submit(&orb(9, PROG2), &*c.mem).await?;
        ends_normally(&done, PROG2 + 8)?;
        Ok(c.read(DATA2, 1)?[0])
    }
    .await;
    sub.close().await?;
    let sense0 = sense?;
    ensure!(
        sense0 & 0x80 != 0,
        "sense byte 0 {sense0:#04x} (want command reject 0x80)"
    );
    Ok(Verdict::Pass)
}

async fn schib_refresh<B: Backend>(c: &Ctx<B>) -> TestResult {
    let sub = c.open().await?;
    let schib = sub.schib().await;
    sub.close().await?;
    let p = schib?.pmcw;
    ensure!(p.flags.dnv(), "device number not valid");
    ensure!(
        p.flags.devno() == c.fx.devno,
        "devno {:#06x} (want {:#06x})",
        p.flags.devno(),
        c.fx.devno
    );
    ensure!(p.flags.enabled(), "open subchannel not enabled");
    ensure!(p.pim != 0, "no installed path");
    ensure!(
        p.pim & p.pam & p.pom != 0,
        "no available path (pim {:#04x} pam {:#04x} pom {:#04x})",
        p.pim,
        p.pam,
        p.pom
    );
    Ok(Verdict::Pass)
}

// ---------------------------------------------------------------- async

/// A program that runs until the channel gives up on it: NOP, TIC back. Real and emulated
/// channel subsystems end it with a program check after a bounded number of CCWs (QEMU after
/// 255 CCWs without data), so no test can hang a device.
fn write_loop<B: Backend>(c: &Ctx<B>) -> Result<(), Failure> {
    c.program(
        PROG,
        &[
            ccw(cmd::NOP, CcwFlags::CC | CcwFlags::SLI, 1, 0),
            ccw(cmd::TIC, none(), 0, PROG),
        ],
    )
}

/// Waits until the subchannel reached `CpPending` (the start was accepted) or left it.
async fn wait_started<B: Backend>(sub: &Subchannel<B>) {
    for _ in 0..10_000 {
        if sub.state() != State::CpProcessing {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// The subchannel still works: SENSE ID succeeds.
async fn still_works<B: Backend>(c: &Ctx<B>) -> Result<(), Failure> {
    c.program(PROG2, &[ccw(cmd::SENSE_ID, CcwFlags::SLI, 256, DATA)])?;
    let done = c.run(&orb(0x600D, PROG2)).await?;
    ends_normally(&done, PROG2 + 8)
}

async fn halt_or_clear<B: Backend>(c: &Ctx<B>, clear: bool) -> TestResult {
    write_loop(c)?;
    let sub = c.open().await?;
    let o = orb(0x4A17, PROG);
    let (done, issued) = tokio::join!(sub.submit(&o, &*c.mem), async {
        wait_started(&sub).await;
        if sub.state() != State::CpPending {
            return None;
        }
        Some(if clear {
            sub.clear().await
        } else {
            sub.halt().await
        })
    });
    sub.close().await?;
    let done = done?;
    let s = &done.irb.scsw;
    ensure!(s.is_final(), "completion not final: {s:?}");
    let fc = s.ctrl.fc();
    let want = if clear {
        FunctionControl::CLEAR
    } else {
        FunctionControl::HALT
    };
    let verdict = match issued {
        Some(Ok(())) if fc.contains(want) => Verdict::Pass,
        Some(Ok(())) | Some(Err(_)) | None
            if s.subchannel_status()
                .contains(SubchannelStatus::PROGRAM_CHECK) =>
        {
            Verdict::Undecided(String::from(
                "the channel ended the program before the function took effect",
            ))
        }
        Some(Ok(())) => return Err(Failure(format!("function accepted but final status {s:?}"))),
        Some(Err(e)) => return Err(Failure(format!("refused: {e}"))),
        None => Verdict::Undecided(String::from("program ended before it could be interrupted")),
    };
    still_works(c).await?;
    Ok(verdict)
}

async fn halt_during_io<B: Backend>(c: &Ctx<B>) -> TestResult {
    halt_or_clear(c, false).await
}

async fn clear_during_io<B: Backend>(c: &Ctx<B>) -> TestResult {
    halt_or_clear(c, true).await
}

async fn start_while_busy<B: Backend>(c: &Ctx<B>) -> TestResult {
    write_loop(c)?;
    c.program(PROG2, &[ccw(cmd::SENSE_ID, CcwFlags::SLI, 256, DATA)])?;
    let sub = c.open().await?;
    let (o1, o2) = (orb(1, PROG), orb(2, PROG2));
    let (first, second) = tokio::join!(sub.submit(&o1, &*c.mem), async {
        wait_started(&sub).await;
        if sub.state() != State::CpPending {
            return None;
        }
        let r = sub.submit(&o2, &*c.mem).await;
        // The clear ends the first program; if it fails, the test times out: say why.
        if let Err(e) = sub.clear().await {
            tracing::warn!(error = %e, "start_while_busy: clear after the second start failed");
        }
        Some(r)
    });
    sub.close().await?;
    ensure!(first.is_ok(), "first program: {:?}", first.err());
    let verdict = match second {
        Some(Err(e)) if e.kind() == CssErrorKind::Busy => Verdict::Pass,
        Some(Err(e)) => return Err(Failure(format!("second start: {e} (want EBUSY)"))),
        Some(Ok(d)) => {
            return Err(Failure(format!(
                "second start accepted while busy: {:?}",
                d.irb.scsw
            )));
        }
        None => Verdict::Undecided(String::from("first program ended before the second start")),
    };
    still_works(c).await?;
    Ok(verdict)
}

async fn close_with_io_outstanding<B: Backend>(c: &Ctx<B>) -> TestResult {
    write_loop(c)?;
    let sub = c.open().await?;
    let o = orb(1, PROG);
    let (done, closed) = tokio::join!(sub.submit(&o, &*c.mem), async {
        wait_started(&sub).await;
        let pending = sub.state() == State::CpPending;
        (pending, c.css.close(c.fx.sch).await)
    });
    let (pending, closed) = closed;
    closed?;
    ensure!(
        c.css.state(c.fx.sch)? == State::Standby,
        "state after close {:?}",
        c.css.state(c.fx.sch)?
    );
    let verdict = match done {
        Err(e) if e.kind() == CssErrorKind::Closed => Verdict::Pass,
        Err(e) => return Err(Failure(format!("outstanding request answered {e}"))),
        Ok(_) if !pending => Verdict::Undecided(String::from("program ended before the close")),
        // The final status raced the close and won: one answer, which is legal.
        Ok(_) => Verdict::Undecided(String::from("program completed while closing")),
    };
    still_works(c).await?;
    Ok(verdict)
}

// ---------------------------------------------------------------- bad programs

/// A bad program must be refused (translation error) or end with a program check.
async fn rejected<B: Backend>(c: &Ctx<B>, o: &Orb, what: &str) -> TestResult {
    match c.run(o).await {
        Err(f) => {
            // `run` flattens the error; re-run to classify it precisely.
            let sub = c.open().await?;
            let r = sub.submit(o, &*c.mem).await;
            sub.close().await?;
            match r {
                Err(CssError::Translate { .. }) => {}
                Err(e) => return Err(Failure(format!("{what}: unexpected error {e}"))),
                Ok(d) => return Err(Failure(format!("{what}: {} then {:?}", f.0, d.irb.scsw))),
            }
        }
        Ok(done) => {
            let cs = done.irb.scsw.subchannel_status();
            ensure!(
                cs.intersects(
                    SubchannelStatus::PROGRAM_CHECK
                        | SubchannelStatus::PROTECTION_CHECK
                        | SubchannelStatus::CHANNEL_DATA_CHECK
                ),
                "{what}: ended with subchannel status {cs}, device status {} (want program check)",
                done.irb.scsw.device_status()
            );
        }
    }
    still_works(c).await?;
    Ok(Verdict::Pass)
}

async fn tic_to_tic<B: Backend>(c: &Ctx<B>) -> TestResult {
    c.program(
        PROG,
        &[
            ccw(cmd::TIC, none(), 0, PROG + 8),
            ccw(cmd::TIC, none(), 0, PROG + 16),
            ccw(cmd::NOP, CcwFlags::SLI, 1, 0),
        ],
    )?;
    rejected(c, &orb(1, PROG), "TIC to TIC").await
}

async fn misaligned_cpa<B: Backend>(c: &Ctx<B>) -> TestResult {
    c.program(
        PROG,
        &[
            ccw(cmd::NOP, CcwFlags::SLI, 1, 0),
            ccw(cmd::NOP, CcwFlags::SLI, 1, 0),
        ],
    )?;
    rejected(c, &orb(1, PROG + 4), "misaligned cpa").await
}

async fn cpa_outside_memory<B: Backend>(c: &Ctx<B>) -> TestResult {
    rejected(c, &orb(1, FAR), "cpa outside guest memory").await
}

async fn data_outside_memory<B: Backend>(c: &Ctx<B>) -> TestResult {
    c.program(PROG, &[ccw(cmd::SENSE_ID, CcwFlags::SLI, 256, FAR)])?;
    rejected(c, &orb(1, PROG), "data outside guest memory").await
}

async fn invalid_command_code<B: Backend>(c: &Ctx<B>) -> TestResult {
    c.program(PROG, &[ccw(0x00, CcwFlags::SLI, 1, DATA)])?;
    rejected(c, &orb(1, PROG), "command code 0x00").await
}

// ---------------------------------------------------------------- multi-IDAW

/// SENSE ID (256 bytes) split over two IDAWs at a block boundary.
async fn idal_multi<B: Backend>(c: &Ctx<B>, two_k: bool) -> TestResult {
    let block: u32 = if two_k { 0x800 } else { 0x1000 };
    let first = DATA + block - 0x80;
    let second = DATA2;
    c.poison(first, 0x80)?;
    c.poison(second, 0x100)?;
    let mut idal = u64::from(first).to_be_bytes().to_vec();
    idal.extend(u64::from(second).to_be_bytes());
    c.write(IDAL, &idal)?;
    c.program(
        PROG,
        &[ccw(cmd::SENSE_ID, CcwFlags::IDA | CcwFlags::SLI, 256, IDAL)],
    )?;
    let mut o = CommandOrb::new(1, PROG);
    o.idaw_2k = two_k;
    let done = c.run(&o.emit()).await?;
    ends_normally(&done, PROG + 8)?;
    ensure!(c.read(first, 4)? == c.fx.sense_id, "first block");
    // The rest of the 256 bytes (zero padding of SENSE ID) lands in the second block.
    let rest = c.read(second, 0x80)?;
    ensure!(
        rest.iter().all(|&b| b != 0xA5),
        "second IDAW block not written"
    );
    ensure!(c.read(second + 0x80, 1)? == [0xA5], "wrote past 256 bytes");
    Ok(Verdict::Pass)
}

async fn idal_4k_multi<B: Backend>(c: &Ctx<B>) -> TestResult {
    idal_multi(c, false).await
}

async fn idal_2k_multi<B: Backend>(c: &Ctx<B>) -> TestResult {
    idal_multi(c, true).await
}

async fn direct_across_page<B: Backend>(c: &Ctx<B>) -> TestResult {
    // A direct CCW whose data crosses a 4 KiB boundary: vfio-ccw splits it into two IDAWs.
    let at = DATA + 0x1000 - 0x40;
    c.poison(at, 0x140)?;
    c.program(PROG, &[ccw(cmd::SENSE_ID, CcwFlags::SLI, 256, at)])?;
    let done = c.run(&orb(1, PROG)).await?;
    ends_normally(&done, PROG + 8)?;
    ensure!(c.read(at, 4)? == c.fx.sense_id, "data before the boundary");
    let after = c.read(at + 0x40, 0xC0)?;
    ensure!(
        after.iter().all(|&b| b != 0xA5),
        "data after the boundary not written"
    );
    ensure!(c.read(at + 0x100, 1)? == [0xA5], "wrote past 256 bytes");
    Ok(Verdict::Pass)
}

// ---------------------------------------------------------------- runner

/// A group: its name and its tests.
type Group<B> = (&'static str, Vec<(&'static str, TestFn<B>)>);

fn groups<B: Backend>() -> Vec<Group<B>> {
    macro_rules! t {
        ($f:ident) => {
            (stringify!($f), (|c| Box::pin($f(c))) as TestFn<B>)
        };
    }
    vec![
        (
            "basic",
            vec![
                t!(sense_id),
                t!(read_conf),
                t!(command_chain),
                t!(data_chain),
                t!(tic),
                t!(idal_4k_single),
                t!(idal_2k_single),
                t!(idal_format1_single),
                t!(sli_vs_incorrect_length),
                t!(unknown_command),
                t!(schib_refresh),
            ],
        ),
        (
            "async",
            vec![
                t!(halt_during_io),
                t!(clear_during_io),
                t!(start_while_busy),
                t!(close_with_io_outstanding),
            ],
        ),
        (
            "bad-programs",
            vec![
                t!(tic_to_tic),
                t!(misaligned_cpa),
                t!(cpa_outside_memory),
                t!(data_outside_memory),
                t!(invalid_command_code),
            ],
        ),
        (
            "multi-idaw",
            vec![t!(idal_4k_multi), t!(idal_2k_multi), t!(direct_across_page)],
        ),
    ]
}

/// The names of every group and test, in order.
pub fn test_names() -> Vec<(&'static str, Vec<&'static str>)> {
    groups::<NeverBackend>()
        .into_iter()
        .map(|(g, ts)| (g, ts.into_iter().map(|(n, _)| n).collect()))
        .collect()
}

/// Runs every group against the backend `make` builds with the suite's guest memory attached
/// (`make` is called once), printing each test and each group's `N passed, M failed` line.
/// Must run inside a tokio runtime.
pub async fn run_all<B, F>(make: F, fixture: &Fixture) -> Report
where
    B: Backend,
    F: FnOnce(Arc<GuestMemoryMmap>) -> Result<Arc<B>, BackendError>,
{
    let mut report = Report {
        backend: fixture.name.clone(),
        groups: Vec::new(),
        setup_error: None,
    };
    println!("conformance suite on {}", fixture.name);
    let ctx = match setup(make, fixture).await {
        Ok(c) => c,
        Err(e) => {
            println!("setup failed: {e}");
            report.setup_error = Some(e);
            return report;
        }
    };
    for (group, tests) in groups::<B>() {
        let mut g = GroupReport {
            name: group,
            results: Vec::new(),
        };
        for (name, test) in tests {
            let outcome = match fixture.skip_reason(group, name) {
                Some(reason) => TestOutcome::Skipped(reason.to_string()),
                None => run_one(&ctx, test).await,
            };
            g.results.push((name, outcome));
        }
        println!("{g}");
        report.groups.push(g);
    }
    println!(
        "total: {} passed, {} failed, {} skipped",
        report.passed(),
        report.failed(),
        report.skipped()
    );
    report
}

async fn setup<B, F>(make: F, fixture: &Fixture) -> Result<Ctx<B>, String>
where
    B: Backend,
    F: FnOnce(Arc<GuestMemoryMmap>) -> Result<Arc<B>, BackendError>,
{
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), fixture.memory_size)])
        .map_err(|e| format!("guest memory: {e}"))?;
    let mem = Arc::new(mem);
    let backend = make(mem.clone()).map_err(|e| format!("backend: {e}"))?;
    let css = Css::new(backend).map_err(|e| format!("css: {e}"))?;
    let ids = css.probe().await.map_err(|e| format!("probe: {e}"))?;
    if !ids.contains(&fixture.sch) {
        return Err(format!(
            "probe found {ids:?}, not the device under test {}",
            fixture.sch
        ));
    }
    Ok(Ctx {
        css,
        mem,
        fx: fixture.clone(),
    })
}

async fn run_one<B: Backend>(ctx: &Ctx<B>, test: TestFn<B>) -> TestOutcome {
    let r = tokio::time::timeout(ctx.fx.test_timeout, CatchPanic(test(ctx))).await;
    // Whatever happened, leave the subchannel closed for the next test.
    if let Err(e) = ctx.css.close(ctx.fx.sch).await {
        if e.kind() != CssErrorKind::NotOpen {
            tracing::warn!(error = %e, "closing after a test failed");
        }
    }
    match r {
        Ok(Ok(Ok(Verdict::Pass))) => TestOutcome::Passed,
        Ok(Ok(Ok(Verdict::Undecided(why)))) => TestOutcome::Skipped(why),
        Ok(Ok(Err(Failure(m)))) => TestOutcome::Failed(m),
        Ok(Err(Panicked(m))) => TestOutcome::Failed(format!("panicked: {m}")),
        Err(_) => TestOutcome::Failed(format!("timed out after {:?}", ctx.fx.test_timeout)),
    }
}

/// A test that panicked: a failure of that test, never the end of the whole run (a suite run
/// in a guest must still print every group's line).
struct Panicked(String);

/// Polls a test future and turns a panic inside it into [`Panicked`].
///
/// Written by hand because the only dependency offering it (`futures`' `catch_unwind`) is not
/// otherwise needed here.
struct CatchPanic<'a>(BoxFut<'a>);

impl Future for CatchPanic<'_> {
    type Output = Result<TestResult, Panicked>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let fut = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(r)) => std::task::Poll::Ready(Ok(r)),
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_string());
                std::task::Poll::Ready(Err(Panicked(msg)))
            }
        }
    }
}

/// A backend type used only to list test names; never constructed.
struct NeverBackend;

#[async_trait::async_trait]
impl Backend for NeverBackend {
    async fn probe(&self) -> Result<Vec<(SubchannelId, ccw_types::Schib)>, BackendError> {
        Err(BackendError::unsupported("probe"))
    }
    async fn enable(
        &self,
        sch: SubchannelId,
        _: u32,
    ) -> Result<crate::ConditionCode, BackendError> {
        Err(BackendError::unsupported("enable").on(sch))
    }
    async fn disable(&self, sch: SubchannelId) -> Result<crate::ConditionCode, BackendError> {
        Err(BackendError::unsupported("disable").on(sch))
    }
    async fn start(
        &self,
        sch: SubchannelId,
        _: &Orb,
    ) -> Result<crate::ConditionCode, BackendError> {
        Err(BackendError::unsupported("start").on(sch))
    }
    async fn halt(&self, sch: SubchannelId) -> Result<crate::ConditionCode, BackendError> {
        Err(BackendError::unsupported("halt").on(sch))
    }
    async fn clear(&self, sch: SubchannelId) -> Result<crate::ConditionCode, BackendError> {
        Err(BackendError::unsupported("clear").on(sch))
    }
    async fn store_schib(&self, sch: SubchannelId) -> Result<ccw_types::Schib, BackendError> {
        Err(BackendError::unsupported("store_schib").on(sch))
    }
    fn mapper(&self, sch: SubchannelId) -> Result<Arc<dyn ccw_translate::Mapper>, BackendError> {
        Err(BackendError::unsupported("mapper").on(sch))
    }
    fn take_events(&self) -> Result<crate::EventReceiver, BackendError> {
        Err(BackendError::unsupported("take_events"))
    }
}

#[cfg(test)]
mod catch_panic_tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_test_is_a_failure_not_the_end_of_the_run() {
        let fut: BoxFut<'static> = Box::pin(async {
            let v: Vec<u8> = Vec::new();
            // Index an empty slice, as the unknown-command test once did with QEMU's IRB.
            Ok(Verdict::Undecided(format!("{}", v[0])))
        });
        match CatchPanic(fut).await {
            Err(Panicked(msg)) => assert!(msg.contains("index out of bounds"), "{msg}"),
            Ok(_) => panic!("the panic was not caught"),
        }
        let fine: BoxFut<'static> = Box::pin(async { Ok(Verdict::Pass) });
        assert!(matches!(CatchPanic(fine).await, Ok(Ok(Verdict::Pass))));
    }
}
