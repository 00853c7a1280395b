// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The virtio-blk-ccw control device beyond the guest's byte strings.

mod common;

use ccw_types::CcwFlags as F;
use common::*;
use mock_backend::devices::VirtioBlkCcw;

async fn run1(rig: &mut Rig, cmd: u8, flags: F, data: &[u8], count: u16) -> (ccw_types::Irb, u32) {
    let buf = rig.alloc(usize::from(count).max(1), 0);
    rig.poke(buf as u64, data);
    let prog = rig.program(&[ccw1(cmd, flags, count, buf)]);
    (rig.run(VIRTIO, &orb(prog)).await, buf)
}

#[tokio::test]
async fn read_feat_word_0_and_legacy_word_1() {
    let mut rig = Rig::default_enabled().await;
    let (irb, buf) = run1(&mut rig, 0x12, F::NONE, &[0, 0, 0, 0, 0], 5).await;
    assert_eq!(irb.scsw.dstat, 0x0c);
    let b = rig.peek(buf as u64, 5);
    let word = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    assert_ne!(word & (1 << 28), 0, "RING_INDIRECT_DESC offered");
    assert_eq!(b[4], 0);
    // Legacy: word 1 (VERSION_1) is not offered.
    let (_, buf) = run1(&mut rig, 0x12, F::NONE, &[0, 0, 0, 0, 1], 5).await;
    assert_eq!(rig.peek(buf as u64, 5), [0, 0, 0, 0, 1]);
}

#[tokio::test]
async fn status_byte_round_trip_and_queue_config() {
    let mut rig = Rig::default_enabled().await;
    let (irb, _) = run1(&mut rig, 0x31, F::NONE, &[0x07], 1).await;
    assert_eq!(irb.scsw.dstat, 0x0c);
    let (_, buf) = run1(&mut rig, 0x72, F::NONE, &[], 1).await;
    assert_eq!(rig.peek(buf as u64, 1), [0x07]);
    // READ_VQ_CONF: queue 0 has 256 entries; queue 1 does not exist.
    let (irb, buf) = run1(&mut rig, 0x32, F::NONE, &[0, 0], 4).await;
    assert_eq!(irb.scsw.dstat, 0x0c);
    assert_eq!(rig.peek(buf as u64, 4), [0, 0, 0x01, 0x00]);
    let (irb, _) = run1(&mut rig, 0x32, F::NONE, &[0, 1], 4).await;
    assert_eq!(irb.scsw.dstat, 0x02);
}

/// A legacy SET_VQ (queue, align, index, num: 16 bytes big-endian) that names queue 0 is taken
/// and recorded; one for a queue the device does not have, or a size it did not offer, or a
/// short count without SLI, is a command reject (as QEMU's `virtio_ccw_set_vqs`).
#[tokio::test]
async fn set_vq_is_checked_and_recorded() {
    let mut rig = Rig::default_enabled().await;
    let vq = |index: u16, num: u16| {
        let mut v = 0x10_0000u64.to_be_bytes().to_vec();
        v.extend_from_slice(&4096u32.to_be_bytes());
        v.extend_from_slice(&index.to_be_bytes());
        v.extend_from_slice(&num.to_be_bytes());
        v
    };
    let good = vq(0, 256);
    let (irb, _) = run1(&mut rig, 0x13, F::NONE, &good, 16).await;
    assert_eq!(irb.scsw.dstat, 0x0c);
    let seen = rig
        .backend
        .with_device(VIRTIO, |d| {
            let v = d.as_any_mut()?.downcast_mut::<VirtioBlkCcw>()?;
            v.recorded(0x13).map(<[u8]>::to_vec)
        })
        .unwrap();
    assert_eq!(seen, Some(good.clone()));
    for (bad, count) in [
        (vq(1, 256), 16),
        (vq(0, 512), 16),
        (vq(0, 100), 16),
        (good, 12),
    ] {
        let (irb, _) = run1(&mut rig, 0x13, F::NONE, &bad, count).await;
        assert_eq!(irb.scsw.dstat, 0x02, "{bad:02x?} count {count}");
        assert_eq!(irb.concurrent_sense().map(|s| s[0]), Some(0x80));
    }
}

#[tokio::test]
async fn unsupported_revision_is_rejected() {
    let mut rig = Rig::default_enabled().await;
    let (irb, _) = run1(&mut rig, 0x83, F::NONE, &[0, 3, 0, 0], 4).await;
    assert_eq!(irb.scsw.dstat, 0x02);
    assert_eq!(irb.concurrent_sense().map(|s| s[0]), Some(0x80));
    // Revision 1 with a non-zero length: rejected as well.
    let (irb, _) = run1(&mut rig, 0x83, F::NONE, &[0, 1, 0, 4], 4).await;
    assert_eq!(irb.scsw.dstat, 0x02);
    // Revision 2 is accepted while nothing else came first.
    let (irb, _) = run1(&mut rig, 0x83, F::NONE, &[0, 2, 0, 0], 4).await;
    assert_eq!(irb.scsw.dstat, 0x0c);
}

#[tokio::test]
async fn read_conf_longer_than_the_config_is_incorrect_length() {
    let mut rig = Rig::default_enabled().await;
    let (irb, _) = run1(&mut rig, 0x22, F::NONE, &[], 64).await;
    // 24 bytes of configuration: residual 40, incorrect length.
    assert_eq!(irb.scsw.cstat, 0x40);
    assert_eq!(irb.scsw.count.get(), 40);
    let (irb, _) = run1(&mut rig, 0x22, F::SLI, &[], 64).await;
    assert_eq!(irb.scsw.cstat, 0);
}

#[tokio::test]
async fn a_channel_check_during_a_write_is_not_a_command_reject() {
    // The data address is outside guest memory: the channel ends with a program check. The
    // device must not also claim a command reject in its sense data.
    let mut rig = Rig::default_enabled().await;
    for cmd in [0x31, 0x11] {
        let prog = rig.program(&[ccw1(cmd, F::NONE, 5, 0x7FFF_F000)]);
        let irb = rig.run(VIRTIO, &orb(prog)).await;
        assert_ne!(irb.scsw.cstat & 0x20, 0, "program check: {}", irb.scsw);
        let (irb, buf) = run1(&mut rig, 0x04, F::SLI, &[], 32).await;
        assert_eq!(irb.scsw.dstat, 0x0c);
        assert_eq!(rig.peek(buf as u64, 1), [0], "sense after {cmd:#04x}");
    }
}

/// Virtio 1.x 4.3.2.1.1: the revision is unset from the time the subchannel is enabled until
/// the driver sets it, once; VDEV_RESET does not unset it (QEMU keeps it too), disabling and
/// enabling the subchannel does.
#[tokio::test]
async fn the_revision_survives_vdev_reset_and_is_unset_by_enabling_the_subchannel() {
    use css_core::Backend;
    let revision = |rig: &Rig| {
        rig.backend
            .with_device(VIRTIO, |d| {
                d.as_any_mut()?.downcast_mut::<VirtioBlkCcw>()?.revision()
            })
            .unwrap()
    };
    let mut rig = Rig::default_enabled().await;
    let (irb, _) = run1(&mut rig, 0x83, F::NONE, &[0, 1, 0, 0], 4).await;
    assert_eq!(irb.scsw.dstat, 0x0c);
    let (irb, _) = run1(&mut rig, 0x33, F::SLI, &[], 0).await;
    assert_eq!(irb.scsw.dstat, 0x0c);
    assert_eq!(revision(&rig), Some(1), "VDEV_RESET keeps the revision");
    let (irb, _) = run1(&mut rig, 0x83, F::NONE, &[0, 1, 0, 0], 4).await;
    assert_eq!(irb.scsw.dstat, 0x02, "set once per enablement");
    rig.backend.disable(VIRTIO).await.unwrap();
    assert_eq!(revision(&rig), Some(1), "disabling alone does not matter");
    rig.backend.enable(VIRTIO, 0).await.unwrap();
    assert_eq!(revision(&rig), None, "enabling unsets it");
    let (irb, _) = run1(&mut rig, 0x83, F::NONE, &[0, 2, 0, 0], 4).await;
    assert_eq!(irb.scsw.dstat, 0x0c);
    assert_eq!(revision(&rig), Some(2));
}
