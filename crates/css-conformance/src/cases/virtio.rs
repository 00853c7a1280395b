// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Device group `virtio-blk`: the byte answers of a virtio-blk-ccw device as QEMU gives them
//! (anchors.md, QEMU css.c and virtio-ccw: CU 0x3832, command codes).

use ccw_types::{CcwFlags, DeviceStatus, SubchannelId, SubchannelStatus};
use css_core::{Backend, Subchannel};

use crate::fixture::DeviceKind;
use crate::prog::*;
use crate::{CaseResult, Ctx, Failure, Verdict, ensure};

const WRITE_STATUS: u8 = 0x31;
const READ_STATUS: u8 = 0x72;
const READ_FEAT: u8 = 0x12;
const READ_VQ_CONF: u8 = 0x32;
const VDEV_RESET: u8 = 0x33;
const SET_VIRTIO_REV: u8 = 0x83;

/// The virtio-blk device of the fixture, or why the case skips.
fn device<B: Backend>(c: &Ctx<B>) -> Result<(SubchannelId, u64), Verdict> {
    match c.fx.device(|k| matches!(k, DeviceKind::VirtioBlk { .. })) {
        Some(d) => match d.kind {
            DeviceKind::VirtioBlk { capacity } => Ok((d.sch, capacity)),
            _ => unreachable!("filtered on VirtioBlk"),
        },
        None => Err(Verdict::Skip(
            "no virtio-blk-ccw device in this fixture".into(),
        )),
    }
}

macro_rules! dev {
    ($c:expr) => {
        match device($c) {
            Ok(d) => d,
            Err(v) => return Ok(v),
        }
    };
}

/// SENSE ID: `ff 3832 02 0000 00` (CU type 0x3832, model = virtio device id 2 for block,
/// device type 0) (§9.1; anchors.md virtio-ccw: CU 0x3832).
pub(crate) async fn virtio_sense_id<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    c.poison(DATA, 8)?;
    c.program(PROG, &[ccw(cmd::SENSE_ID, CcwFlags::SLI, 8, DATA)])?;
    let done = c.run_on(sch, &orb(1, PROG)).await?;
    ends_ok(&done, PROG + 8, 0)?;
    let got = c.read(DATA, 8)?;
    ensure!(
        got == [0xFF, 0x38, 0x32, 0x02, 0, 0, 0, 0],
        "SENSE ID {got:02x?}"
    );
    Ok(Verdict::Pass)
}

/// READ_CONF (0x22) in legacy mode: the capacity in sectors, big-endian, and nothing past
/// the count (anchors.md virtio-ccw READ_CONF).
pub(crate) async fn virtio_read_conf<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, cap) = dev!(c);
    c.poison(DATA, 16)?;
    c.program(PROG, &[ccw(cmd::READ_CONF, CcwFlags::SLI, 8, DATA)])?;
    let done = c.run_on(sch, &orb(2, PROG)).await?;
    ends_ok(&done, PROG + 8, 0)?;
    let got = c.read(DATA, 9)?;
    ensure!(
        got[..8] == cap.to_be_bytes(),
        "READ_CONF {got:02x?} (want capacity {cap})"
    );
    ensure!(got[8] == POISON, "READ_CONF stored past its count");
    Ok(Verdict::Pass)
}

/// READ_CONF with a count shorter than the config: exactly the count, residual 0 (QEMU
/// transfers at most the count; §1.7).
pub(crate) async fn virtio_read_conf_short<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, cap) = dev!(c);
    c.poison(DATA, 8)?;
    c.program(PROG, &[ccw(cmd::READ_CONF, CcwFlags::SLI, 3, DATA)])?;
    let done = c.run_on(sch, &orb(3, PROG)).await?;
    ends_ok(&done, PROG + 8, 0)?;
    let got = c.read(DATA, 4)?;
    ensure!(
        got[..3] == cap.to_be_bytes()[..3] && got[3] == POISON,
        "READ_CONF(3) {got:02x?}"
    );
    Ok(Verdict::Pass)
}

/// SET_VIRTIO_REV on its own: accepted (CE|DE) while the revision is unset, command reject
/// (unit check alone, cpa one past it) once it is fixed. Virtio 1.x 4.3.2.1.1: the revision is
/// unset from the time the subchannel is enabled until it is set, and only once; VDEV_RESET
/// does not unset it. Whether it is still unset depends on what ran on this enablement before
/// (QEMU fixes it at 0 with the first other virtio command), so either answer is checked for
/// its exact status; returns whether it was accepted.
async fn set_revision<B: Backend>(
    c: &Ctx<B>,
    sub: &Subchannel<B>,
    rev: u16,
    intparm: u32,
) -> Result<bool, Failure> {
    let r = rev.to_be_bytes();
    c.write(DATA + 8, &[r[0], r[1], 0, 0])?;
    c.program(PROG, &[ccw(SET_VIRTIO_REV, none(), 4, DATA + 8)])?;
    let done = c.submit(sub, &orb(intparm, PROG)).await?;
    let s = &done.irb.scsw;
    if s.device_status().contains(DeviceStatus::UNIT_CHECK) {
        check(
            s,
            DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END | DeviceStatus::UNIT_CHECK,
            SubchannelStatus::from_bits(0),
        )
        .or_else(|_| check(s, DeviceStatus::UNIT_CHECK, SubchannelStatus::from_bits(0)))
        .map_err(|f| Failure(format!("SET_VIRTIO_REV {rev} rejected: {}", f.0)))?;
        ensure!(
            s.cpa.get() == PROG + 8,
            "rejected SET_VIRTIO_REV: cpa {:#x} (want {:#x})",
            s.cpa.get(),
            PROG + 8
        );
        return Ok(false);
    }
    ends_ok(&done, PROG + 8, 0).map_err(|f| Failure(format!("SET_VIRTIO_REV {rev}: {}", f.0)))?;
    Ok(true)
}

/// WRITE_STATUS 1 then READ_STATUS: 1; VDEV_RESET then READ_STATUS: 0 (virtio-ccw
/// WRITE_STATUS / READ_STATUS, anchors.md). READ_STATUS exists from revision 2 on: the case
/// asks for revision 2 first; when the revision was already fixed on this enablement
/// (virtio 1.x 4.3.2.1.1, see `set_revision`), READ_STATUS must either be a command reject
/// (revision below 2) or read back exactly what was written (revision 2).
pub(crate) async fn virtio_status_round_trip<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    // One open: one enablement of the subchannel for the whole case.
    let sub = c.open_sch(sch).await?;
    let rev2 = set_revision(c, &sub, 2, 4).await?;
    c.write(DATA, &[0x01])?;
    c.poison(DATA2, 2)?;
    c.poison(DATA3, 2)?;
    c.program(
        PROG,
        &[
            ccw(WRITE_STATUS, CcwFlags::CC, 1, DATA),
            ccw(READ_STATUS, CcwFlags::CC, 1, DATA2),
            ccw(VDEV_RESET, CcwFlags::CC | CcwFlags::SLI, 0, 0),
            ccw(READ_STATUS, none(), 1, DATA3),
        ],
    )?;
    let done = c.submit(&sub, &orb(4, PROG)).await?;
    let s = &done.irb.scsw;
    if !rev2 && s.device_status().contains(DeviceStatus::UNIT_CHECK) {
        // Revision below 2: WRITE_STATUS ends normally, READ_STATUS is rejected.
        ensure!(
            s.cpa.get() == PROG + 16,
            "READ_STATUS rejected at cpa {:#x} (want {:#x}: WRITE_STATUS must end normally)",
            s.cpa.get(),
            PROG + 16
        );
        ensure!(
            s.subchannel_status() == SubchannelStatus::from_bits(0),
            "subchannel status {}",
            s.subchannel_status()
        );
        ensure!(
            c.read(DATA2, 1)? == [POISON],
            "a rejected READ_STATUS stored data"
        );
    } else {
        ends_ok(&done, PROG + 32, 0)?;
        ensure!(
            c.read(DATA2, 1)? == [1],
            "status after WRITE_STATUS 1: {:02x?}",
            c.read(DATA2, 1)?
        );
        ensure!(
            c.read(DATA3, 1)? == [0],
            "status after VDEV_RESET: {:02x?}",
            c.read(DATA3, 1)?
        );
    }
    // Leave the device reset for the next case.
    c.program(PROG, &[ccw(VDEV_RESET, CcwFlags::SLI, 0, 0)])?;
    ends_ok(&c.submit(&sub, &orb(8, PROG)).await?, PROG + 8, 0)
        .map_err(|f| Failure(format!("reset afterwards: {}", f.0)))?;
    sub.close().await?;
    Ok(Verdict::Pass)
}

/// READ_FEAT for feature word 0: a non-zero little-endian word and the index byte left as
/// the driver wrote it (virtio-ccw VirtioFeatDesc, anchors.md).
pub(crate) async fn virtio_read_feat<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    c.write(DATA, &[POISON, POISON, POISON, POISON, 0])?;
    c.program(
        PROG,
        &[
            ccw(VDEV_RESET, CcwFlags::CC | CcwFlags::SLI, 0, 0),
            ccw(READ_FEAT, none(), 5, DATA),
        ],
    )?;
    let done = c.run_on(sch, &orb(5, PROG)).await?;
    ends_ok(&done, PROG + 16, 0)?;
    let got = c.read(DATA, 5)?;
    ensure!(got[..4] != [POISON; 4], "features not stored");
    ensure!(got[..4] != [0; 4], "no host features in word 0");
    ensure!(got[4] == 0, "index byte changed to {}", got[4]);
    Ok(Verdict::Pass)
}

/// READ_VQ_CONF for queue 0: the index then the queue size 256, big-endian (virtio-ccw
/// VqConfigBlock; QEMU's virtio-blk default queue size).
pub(crate) async fn virtio_read_vq_conf<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    c.write(DATA, &[0, 0, POISON, POISON])?;
    c.program(PROG, &[ccw(READ_VQ_CONF, none(), 4, DATA)])?;
    let done = c.run_on(sch, &orb(6, PROG)).await?;
    ends_ok(&done, PROG + 8, 0)?;
    let got = c.read(DATA, 4)?;
    ensure!(
        got == [0, 0, 1, 0],
        "READ_VQ_CONF {got:02x?} (want 00 00 01 00)"
    );
    Ok(Verdict::Pass)
}

/// Once the revision is fixed, SET_VIRTIO_REV is a command reject, and VDEV_RESET does not
/// unset it (virtio 1.x 4.3.2.1.1: the revision is set once per subchannel enablement). The
/// first SET_VIRTIO_REV may be accepted or, when the revision was fixed earlier on this
/// enablement, rejected; the second must be rejected, and so must one after VDEV_RESET.
pub(crate) async fn virtio_revision_once<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    // One open: one enablement of the subchannel for the whole case.
    let sub = c.open_sch(sch).await?;
    set_revision(c, &sub, 1, 7).await?;
    ensure!(
        !set_revision(c, &sub, 1, 8).await?,
        "a second SET_VIRTIO_REV was accepted"
    );
    c.program(PROG, &[ccw(VDEV_RESET, CcwFlags::SLI, 0, 0)])?;
    ends_ok(&c.submit(&sub, &orb(9, PROG)).await?, PROG + 8, 0)
        .map_err(|f| Failure(format!("VDEV_RESET: {}", f.0)))?;
    ensure!(
        !set_revision(c, &sub, 1, 10).await?,
        "SET_VIRTIO_REV accepted after VDEV_RESET: the reset unset the revision"
    );
    sub.close().await?;
    Ok(Verdict::Pass)
}
