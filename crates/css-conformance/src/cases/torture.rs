// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Group `kernel-torture`: hostile programs written straight into vfio-ccw's io region,
//! bypassing ccw-translate, one per entry of vfio-ccw's bug history that user space can
//! trigger (anchors.md, "Bugs and fixes"). Expected every time: a clean errno or a channel
//! status, no hang, and the device usable afterwards (a raw SENSE ID ends with CE|DE). A
//! failure here is a kernel finding, reported apart. Vfio backends only: without a
//! [`RawChannel`](crate::RawChannel) in the fixture every case skips.

use std::sync::Arc;
use std::time::Duration;

use ccw_types::{CcwFlags, CommandOrb, DeviceStatus, Orb, TransportOrb};
use css_core::Backend;

use crate::fixture::{RawChannel, RawOutcome};
use crate::prog::*;
use crate::{CaseResult, Ctx, Failure, Verdict, ensure};

const WAIT: Duration = Duration::from_secs(5);

fn raw<B: Backend>(c: &Ctx<B>) -> Result<Arc<dyn RawChannel>, Verdict> {
    c.fx.raw
        .clone()
        .ok_or_else(|| Verdict::Skip("no raw vfio-ccw io region (vfio backends only)".into()))
}

macro_rules! raw {
    ($c:expr) => {
        match raw($c) {
            Ok(r) => r,
            Err(v) => return Ok(v),
        }
    };
}

fn f(e: String) -> Failure {
    Failure(e)
}

/// Submits `o` and waits for its interruption; a refused write is the errno.
fn start(r: &dyn RawChannel, o: &Orb) -> RawOutcome {
    match r.submit(o) {
        Err(errno) => RawOutcome::Errno(errno),
        Ok(()) => r.wait(WAIT),
    }
}

/// Writes CCWs at a fresh allocation; returns its address.
fn program(r: &dyn RawChannel, ccws: &[[u8; 8]], room: usize) -> Result<u32, Failure> {
    let at = r.alloc(room.max(ccws.len() * 8)).map_err(f)?;
    let bytes: Vec<u8> = ccws.iter().flatten().copied().collect();
    r.write(at, &bytes).map_err(f)?;
    Ok(at)
}

/// The device answers a plain SENSE ID afterwards.
fn usable(r: &dyn RawChannel) -> Result<(), Failure> {
    let data = r.alloc(256).map_err(f)?;
    let at = program(r, &[ccw(cmd::SENSE_ID, CcwFlags::SLI, 256, data)], 8)?;
    match start(r, &orb(0x600D, at)) {
        RawOutcome::Irb(irb) => {
            let s = irb.scsw;
            ensure!(
                s.is_final()
                    && s.device_status() == DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END
                    && s.cstat == 0,
                "the device is not usable afterwards: SENSE ID ended {s}"
            );
            let mut b = [0u8; 1];
            r.read(data, &mut b).map_err(f)?;
            ensure!(b[0] == 0xFF, "SENSE ID byte 0 {:#04x} afterwards", b[0]);
            Ok(())
        }
        other => Err(Failure(format!(
            "the device is not usable afterwards: SENSE ID {other:?}"
        ))),
    }
}

/// A hostile program must end cleanly (an errno, or a final status) and leave the device
/// usable; `errnos` are the errnos a fixed kernel may give.
fn clean(r: &dyn RawChannel, o: &Orb, what: &str) -> CaseResult {
    match start(r, o) {
        RawOutcome::Errno(_) => {}
        RawOutcome::Irb(irb) => {
            ensure!(irb.scsw.is_final(), "{what}: non-final status {}", irb.scsw);
        }
        RawOutcome::NoInterrupt => {
            // Stop whatever runs before reporting.
            let _ = r.halt_or_clear(true);
            let _ = r.wait(WAIT);
            return Err(Failure(format!(
                "{what}: no errno and no interruption within {WAIT:?}"
            )));
        }
    }
    usable(r)?;
    Ok(Verdict::Pass)
}

/// 256 chained CCWs in one segment: the kernel must refuse (EINVAL) instead of reading CCW
/// 257 past its buffer (anchors.md 2026: OOB read of CCW 257; ccwchain_calc_length).
pub(crate) async fn raw_256_ccws<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let r = raw!(c);
    let mut p: Vec<[u8; 8]> = (0..255)
        .map(|_| ccw(cmd::NOP, CcwFlags::CC, 0, 0))
        .collect();
    p.push(ccw(cmd::NOP, none(), 0, 0));
    let at = program(&*r, &p, 4096)?;
    clean(&*r, &orb(1, at), "256 CCWs")
}

/// 17 chain segments linked by TICs: refused (ENOMEM) instead of unbounded recursion
/// (anchors.md 2026: max 16 segments; unbounded TIC recursion).
pub(crate) async fn raw_17_segments<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let r = raw!(c);
    let base = r.alloc(17 * 0x100).map_err(f)?;
    for i in 0..17u32 {
        let at = base + i * 0x100;
        let bytes: Vec<u8> = if i < 16 {
            [
                ccw(cmd::NOP, CcwFlags::CC, 0, 0),
                ccw(cmd::TIC, none(), 0, at + 0x100),
            ]
            .concat()
        } else {
            ccw(cmd::NOP, none(), 0, 0).to_vec()
        };
        r.write(at, &bytes).map_err(f)?;
    }
    clean(&*r, &orb(2, base), "17 segments")
}

/// A TIC to itself: no endless recursion in the translator (anchors.md 2019: recursive
/// TICs).
pub(crate) async fn raw_tic_self_loop<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let r = raw!(c);
    let at = r.alloc(8).map_err(f)?;
    r.write(at, &ccw(cmd::TIC, none(), 0, at)).map_err(f)?;
    clean(&*r, &orb(3, at), "TIC to itself")
}

/// Two segments that TIC to each other (a TIC loop over segments): refused or ended, no
/// hang (anchors.md: ccwchain_loop_tic; 2019 recursive TICs).
pub(crate) async fn raw_tic_ping_pong<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let r = raw!(c);
    let a = r.alloc(0x200).map_err(f)?;
    let b = a + 0x100;
    r.write(
        a,
        &[
            ccw(cmd::NOP, CcwFlags::CC, 0, 0),
            ccw(cmd::TIC, none(), 0, b),
        ]
        .concat(),
    )
    .map_err(f)?;
    r.write(
        b,
        &[
            ccw(cmd::NOP, CcwFlags::CC, 0, 0),
            ccw(cmd::TIC, none(), 0, a),
        ]
        .concat(),
    )
    .map_err(f)?;
    match start(&*r, &orb(4, a)) {
        RawOutcome::NoInterrupt => {
            // A running loop is legal (the channel has no loop limit): stop it.
            r.halt_or_clear(true)
                .map_err(|e| Failure(format!("clear of the loop: errno {e}")))?;
            match r.wait(WAIT) {
                RawOutcome::Irb(irb) => ensure!(irb.scsw.is_final(), "clear status {}", irb.scsw),
                other => return Err(Failure(format!("clear of the loop: {other:?}"))),
            }
        }
        RawOutcome::Errno(_) | RawOutcome::Irb(_) => {}
    }
    usable(&*r)?;
    Ok(Verdict::Pass)
}

/// An IDAL whose data runs past the end of the mapped memory: a clean errno (pin fails) or
/// program check, never a fault (anchors.md: IDAL/pin -> -EINVAL/-ENOMEM; partial pin).
pub(crate) async fn raw_idal_past_mapped_end<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let r = raw!(c);
    let end = r.end_of_mapped();
    let idal = r.alloc(8).map_err(f)?;
    r.write(idal, &u64::from(end - 0x40).to_be_bytes())
        .map_err(f)?;
    let at = program(
        &*r,
        &[ccw(cmd::SENSE_ID, CcwFlags::IDA | CcwFlags::SLI, 256, idal)],
        8,
    )?;
    clean(
        &*r,
        &orb_idaw(5, at, true, false),
        "IDAL past the mapped end",
    )
}

/// A format-1 IDAL in the last four bytes of mapped memory: the kernel must read 4-byte
/// IDAWs, not 8 (anchors.md 2026: IDAL over-read by IDAW type).
pub(crate) async fn raw_fmt1_idal_at_mapped_end<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let r = raw!(c);
    let end = r.end_of_mapped();
    let data = r.alloc(256).map_err(f)?;
    let list = end - 4;
    if r.write(list, &data.to_be_bytes()).is_err() {
        return Ok(Verdict::Skip(
            "the last mapped word is not writable through the raw channel".into(),
        ));
    }
    let at = program(
        &*r,
        &[ccw(cmd::SENSE_ID, CcwFlags::IDA | CcwFlags::SLI, 256, list)],
        8,
    )?;
    clean(
        &*r,
        &orb_idaw(6, at, false, false),
        "format-1 IDAL at the mapped end",
    )
}

/// Zero-length CCWs (count 0 reads and a zero-length data chain): nothing pinned, a clean
/// end (anchors.md 2019: zero-length CCWs, don't pin empty transfers).
pub(crate) async fn raw_zero_length_ccws<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let r = raw!(c);
    let data = r.alloc(16).map_err(f)?;
    let at = program(
        &*r,
        &[
            ccw(cmd::SENSE_ID, CcwFlags::CC | CcwFlags::SLI, 0, data),
            ccw(cmd::NOP, CcwFlags::CC, 0, 0),
            ccw(cmd::SENSE_ID, CcwFlags::SLI, 0, 0),
        ],
        24,
    )?;
    clean(&*r, &orb(7, at), "zero-length CCWs")
}

/// HALT written right after START of an endless loop: one final status, the device usable
/// (anchors.md 2021: HALT/CLEAR interrupt serialization; fsm CP_PENDING + ASYNC_REQ).
pub(crate) async fn raw_halt_racing_start<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let r = raw!(c);
    let at = r.alloc(16).map_err(f)?;
    r.write(
        at,
        &[
            ccw(cmd::NOP, CcwFlags::CC | CcwFlags::SLI, 1, 0),
            ccw(cmd::TIC, none(), 0, at),
        ]
        .concat(),
    )
    .map_err(f)?;
    if let Err(e) = r.submit(&orb(8, at)) {
        return Err(Failure(format!("the loop was refused: errno {e}")));
    }
    let halted = r.halt_or_clear(false);
    let first = r.wait(WAIT);
    let needs_clear = match (&halted, &first) {
        (Ok(()), RawOutcome::Irb(irb)) => !irb.scsw.is_final() || irb.scsw.ctrl.ac().bits() != 0,
        _ => true,
    };
    if needs_clear {
        r.halt_or_clear(true)
            .map_err(|e| Failure(format!("clear after the halt race: errno {e}")))?;
        let _ = r.wait(WAIT);
    }
    usable(&*r)?;
    Ok(Verdict::Pass)
}

/// CLEAR written right after START of an endless loop (anchors.md 2021 serialization).
pub(crate) async fn raw_clear_racing_start<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let r = raw!(c);
    let at = r.alloc(16).map_err(f)?;
    r.write(
        at,
        &[
            ccw(cmd::NOP, CcwFlags::CC | CcwFlags::SLI, 1, 0),
            ccw(cmd::TIC, none(), 0, at),
        ]
        .concat(),
    )
    .map_err(f)?;
    if let Err(e) = r.submit(&orb(9, at)) {
        return Err(Failure(format!("the loop was refused: errno {e}")));
    }
    r.halt_or_clear(true)
        .map_err(|e| Failure(format!("clear: errno {e}")))?;
    match r.wait(WAIT) {
        RawOutcome::Irb(irb) => ensure!(irb.scsw.is_final(), "clear status {}", irb.scsw),
        other => return Err(Failure(format!("after the clear: {other:?}"))),
    }
    usable(&*r)?;
    Ok(Verdict::Pass)
}

/// A second START while the first program runs: EBUSY, the first unaffected (anchors.md
/// fsm: CP_PENDING + IO_REQ -> io_busy; cp_init -EBUSY if initialized).
pub(crate) async fn raw_start_while_busy<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let r = raw!(c);
    let at = r.alloc(16).map_err(f)?;
    r.write(
        at,
        &[
            ccw(cmd::NOP, CcwFlags::CC | CcwFlags::SLI, 1, 0),
            ccw(cmd::TIC, none(), 0, at),
        ]
        .concat(),
    )
    .map_err(f)?;
    r.submit(&orb(10, at))
        .map_err(|e| Failure(format!("the loop was refused: errno {e}")))?;
    let second = r.submit(&orb(11, at));
    r.halt_or_clear(true)
        .map_err(|e| Failure(format!("clear: errno {e}")))?;
    let _ = r.wait(WAIT);
    match second {
        Err(16) => {}
        Err(e) => return Err(Failure(format!("second start: errno {e} (want EBUSY 16)"))),
        Ok(()) => return Err(Failure("second start accepted while the first ran".into())),
    }
    usable(&*r)?;
    Ok(Verdict::Pass)
}

/// A transport-mode ORB: EOPNOTSUPP (anchors.md: TM ORB -> -EOPNOTSUPP).
pub(crate) async fn raw_transport_orb<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let r = raw!(c);
    let tcw = r.alloc(64).map_err(f)?;
    let o = TransportOrb {
        intparm: 12,
        key: 0,
        lpm: 0xFF,
        tcw,
        priorities: None,
    }
    .emit();
    match start(&*r, &o) {
        RawOutcome::Errno(95) => {}
        other => {
            return Err(Failure(format!(
                "transport-mode ORB: {other:?} (want EOPNOTSUPP 95)"
            )));
        }
    }
    usable(&*r)?;
    Ok(Verdict::Pass)
}

/// A CPA outside the mapped memory: EFAULT from the guest read, no oops (anchors.md: cp_init
/// reads via vfio_dma_rw; guest fault -> -EFAULT).
pub(crate) async fn raw_cpa_unmapped<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let r = raw!(c);
    let end = r.end_of_mapped();
    clean(&*r, &orb(13, end + 0x1000), "unmapped CPA")
}

/// A TIC whose target is unmapped: EFAULT (anchors.md: TIC target missing -> -EFAULT; 2024
/// TIC target address truncation).
pub(crate) async fn raw_tic_target_unmapped<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let r = raw!(c);
    let end = r.end_of_mapped();
    let at = program(
        &*r,
        &[
            ccw(cmd::NOP, CcwFlags::CC, 0, 0),
            ccw(cmd::TIC, none(), 0, end + 0x1000),
        ],
        16,
    )?;
    clean(&*r, &orb(14, at), "TIC to unmapped memory")
}

/// A format-0 program with a format-0 TIC whose high nibble is set: converted safely
/// (anchors.md cp_init: format-0 converted in place, TIC flags/count zeroed).
pub(crate) async fn raw_format0_tic<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let r = raw!(c);
    let data = r.alloc(256).map_err(f)?;
    let a = r.alloc(0x200).map_err(f)?;
    let b = a + 0x100;
    r.write(
        a,
        &[
            ccw0(cmd::NOP, CcwFlags::CC.bits(), 1, 0),
            ccw0(0x18, 0xFF, 0xFFFF, b),
        ]
        .concat(),
    )
    .map_err(f)?;
    r.write(b, &ccw0(cmd::SENSE_ID, CcwFlags::SLI.bits(), 256, data))
        .map_err(f)?;
    let mut o = CommandOrb::new(15, a);
    o.format = ccw_types::CcwFormat::Format0;
    clean(&*r, &o.emit(), "format-0 TIC")
}
