// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Device group `virtio-blk`: the byte answers of a virtio-blk-ccw device as QEMU gives them
//! (anchors.md, QEMU css.c and virtio-ccw: CU 0x3832, command codes).

use ccw_types::{CcwFlags, DeviceStatus, SubchannelId, SubchannelStatus};
use css_core::Backend;

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

/// VDEV_RESET, SET_VIRTIO_REV 2 (READ_STATUS exists from revision 2 on in QEMU), then
/// READ_STATUS: status 0; WRITE_STATUS 1 then READ_STATUS: 1 (virtio-ccw WRITE_STATUS /
/// READ_STATUS, anchors.md).
pub(crate) async fn virtio_status_round_trip<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    c.write(DATA, &[0x01])?;
    c.write(DATA + 8, &[0, 2, 0, 0])?;
    c.poison(DATA2, 2)?;
    c.poison(DATA3, 2)?;
    c.program(
        PROG,
        &[
            ccw(VDEV_RESET, CcwFlags::CC | CcwFlags::SLI, 0, 0),
            ccw(SET_VIRTIO_REV, CcwFlags::CC, 4, DATA + 8),
            ccw(READ_STATUS, CcwFlags::CC, 1, DATA2),
            ccw(WRITE_STATUS, CcwFlags::CC, 1, DATA),
            ccw(READ_STATUS, CcwFlags::CC, 1, DATA3),
            ccw(VDEV_RESET, CcwFlags::SLI, 0, 0),
        ],
    )?;
    let done = c.run_on(sch, &orb(4, PROG)).await?;
    ends_ok(&done, PROG + 48, 0)?;
    ensure!(
        c.read(DATA2, 1)? == [0],
        "status after reset {:02x?}",
        c.read(DATA2, 1)?
    );
    ensure!(
        c.read(DATA3, 1)? == [1],
        "status after WRITE_STATUS 1: {:02x?}",
        c.read(DATA3, 1)?
    );
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

/// SET_VIRTIO_REV once is accepted; again is a command reject (unit check) (virtio-ccw:
/// the revision is negotiated once per reset).
pub(crate) async fn virtio_revision_once<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    c.write(DATA, &[0, 1, 0, 0])?;
    c.program(
        PROG,
        &[
            ccw(VDEV_RESET, CcwFlags::CC | CcwFlags::SLI, 0, 0),
            ccw(SET_VIRTIO_REV, CcwFlags::CC, 4, DATA),
            ccw(SET_VIRTIO_REV, none(), 4, DATA),
        ],
    )?;
    let done = c.run_on(sch, &orb(7, PROG)).await?;
    let s = &done.irb.scsw;
    ensure!(
        s.device_status().contains(DeviceStatus::UNIT_CHECK),
        "second SET_VIRTIO_REV: device status {} (want UC): {s}",
        s.device_status()
    );
    ensure!(
        s.cpa.get() == PROG + 24,
        "cpa {:#x} (want the second SET_VIRTIO_REV + 8)",
        s.cpa.get()
    );
    ensure!(
        s.subchannel_status() == SubchannelStatus::from_bits(0),
        "subchannel status {}",
        s.subchannel_status()
    );
    // Leave the device reset for the next case.
    c.program(PROG, &[ccw(VDEV_RESET, CcwFlags::SLI, 0, 0)])?;
    ends_ok(&c.run_on(sch, &orb(8, PROG)).await?, PROG + 8, 0)
        .map_err(|f| Failure(format!("reset afterwards: {}", f.0)))?;
    Ok(Verdict::Pass)
}
