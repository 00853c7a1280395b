// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The byte strings the real device (QEMU's virtio-blk-ccw behind vfio_ccw in the emulated
//! s390x guest, s390x-guest.md) answered, reproduced by the default simulated subsystem.

mod common;

use ccw_types::CcwFlags as F;
use common::*;
use css_core::Backend;
use mock_backend::{GUEST_BASE, devices::VirtioBlkCcw};

/// A format-2 IDAL (4 KiB blocks) for `len` bytes at guest address `gpa`, in the arena.
fn idal(rig: &mut Rig, gpa: u64, len: u64) -> u32 {
    rig.pin(gpa, len);
    let mut idaws = Vec::new();
    let mut at = gpa;
    while at < gpa + len {
        idaws.extend_from_slice(&(GUEST_BASE + at).to_be_bytes());
        at = (at / 4096 + 1) * 4096;
    }
    let addr = rig.alloc(idaws.len(), 0);
    rig.poke(addr as u64, &idaws);
    addr
}

#[tokio::test]
async fn schib_after_enable_matches_the_vfio_schib_region() {
    let rig = Rig::default_enabled().await;
    let schib = rig.backend.store_schib(VIRTIO).await.unwrap().into_bytes();
    assert_eq!(
        &schib[..8],
        &[0x00, 0xd3, 0x00, 0x00, 0x18, 0x81, 0x00, 0x05]
    );
    let schib = rig.backend.store_schib(TESTDEV).await.unwrap().into_bytes();
    assert_eq!(
        &schib[..8],
        &[0x00, 0xd3, 0x00, 0x00, 0x18, 0x81, 0x00, 0x06]
    );
}

#[tokio::test]
async fn sense_id_answers_virtio_blk() {
    let mut rig = Rig::default_enabled().await;
    let data = idal(&mut rig, 0x3000, 256);
    let prog = rig.program(&[ccw1(0xE4, F::SLI | F::IDA, 256, data)]);
    let irb = rig.run(VIRTIO, &orb(prog)).await;
    // `00 80 40 07 | cpa = last CCW + 8 | 0c 00 00 00`: CE+DE, residual 0.
    assert_eq!(scsw(&irb), scsw_bytes(0x0080_4007, prog + 8, 0x0c, 0x00, 0));
    let bytes = irb.into_bytes();
    assert_eq!(
        &bytes[12..16],
        &[0x00, 0x80, 0x00, 0x00],
        "ESW word 0: LPUM 0x80"
    );
    assert!(bytes[16..].iter().all(|&b| b == 0));
    let got = rig.guest_read(0x3000, 256);
    assert_eq!(&got[..8], &[0xff, 0x38, 0x32, 0x02, 0x00, 0x00, 0x00, 0x00]);
    assert!(got[8..].iter().all(|&b| b == 0));
    rig.unpin(0x3000, 256);
    rig.release();
    assert!(rig.backend.mapping_stats().is_idle());
}

async fn read_conf(rig: &mut Rig) -> Vec<u8> {
    let data = idal(rig, 0x5000, 8);
    let prog = rig.program(&[ccw1(0x22, F::IDA, 8, data)]);
    let irb = rig.run(VIRTIO, &orb(prog)).await;
    assert_eq!(
        scsw(&irb),
        scsw_bytes(0x0080_4007, prog + 8, 0x0c, 0, 0),
        "{}",
        irb.scsw
    );
    rig.unpin(0x5000, 8);
    rig.guest_read(0x5000, 8)
}

#[tokio::test]
async fn read_conf_legacy_is_big_endian() {
    let mut rig = Rig::default_enabled().await;
    assert_eq!(read_conf(&mut rig).await, [0, 0, 0, 0, 0, 0x02, 0, 0]);
}

#[tokio::test]
async fn revision_1_with_version_1_reads_little_endian_and_reset_returns_to_legacy() {
    let mut rig = Rig::default_enabled().await;
    let rev = rig.alloc(4, 0);
    rig.poke(rev as u64, &[0x00, 0x01, 0x00, 0x00]);
    let feat = rig.alloc(5, 0);
    rig.poke(feat as u64, &[0x01, 0x00, 0x00, 0x00, 0x01]);
    let prog = rig.program(&[
        ccw1(0x33, F::CC, 0, 0),
        ccw1(0x83, F::CC, 4, rev),
        ccw1(0x11, F::NONE, 5, feat),
    ]);
    let irb = rig.run(VIRTIO, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(0x0080_4007, prog + 24, 0x0c, 0, 0));
    assert_eq!(read_conf(&mut rig).await, [0, 0, 0x02, 0, 0, 0, 0, 0]);
    // READ_FEAT index 1 now shows VERSION_1.
    let rf = rig.alloc(5, 0);
    rig.poke(rf as u64, &[0xAA, 0xAA, 0xAA, 0xAA, 0x01]);
    let prog = rig.program(&[ccw1(0x12, F::NONE, 5, rf)]);
    let irb = rig.run(VIRTIO, &orb(prog)).await;
    assert_eq!(irb.scsw.dstat, 0x0c);
    assert_eq!(rig.peek(rf as u64, 5), [0x01, 0, 0, 0, 0x01]);
    // VDEV_RESET: legacy again.
    let prog = rig.program(&[ccw1(0x33, F::NONE, 0, 0)]);
    rig.run(VIRTIO, &orb(prog)).await;
    assert_eq!(read_conf(&mut rig).await, [0, 0, 0, 0, 0, 0x02, 0, 0]);
    let legacy = rig.backend.with_device(VIRTIO, |d| d.name()).unwrap();
    assert_eq!(legacy, "virtio-blk-ccw");
}

/// SCSW, ESW and ECW of a command reject with concurrent sense.
fn assert_command_reject(irb: &ccw_types::Irb, prog: u32) {
    let b = irb.into_bytes();
    assert_eq!(&b[..4], &[0x04, 0x82, 0x40, 0x17], "{}", irb.scsw);
    assert_eq!(&b[4..8], &(prog + 8).to_be_bytes());
    assert_eq!(&b[8..10], &[0x02, 0x00]);
    // ESW: word 0 LPUM 0x80; ERW S = 1 with SCNT 32 in bits 10-15 (QEMU stores `01 00 20 00`,
    // an encoding defect the reference documents, §14 #8).
    assert_eq!(
        &b[12..20],
        &[0x00, 0x80, 0x00, 0x00, 0x01, 0x20, 0x00, 0x00]
    );
    assert_eq!(b[32], 0x80, "ECW: command reject");
    assert!(b[33..64].iter().all(|&x| x == 0));
    assert_eq!(irb.concurrent_sense().map(|s| s[0]), Some(0x80));
}

#[tokio::test]
async fn unknown_command_is_command_reject_with_concurrent_sense() {
    let mut rig = Rig::default_enabled().await;
    let prog = rig.program(&[ccw1(0x99, F::SLI, 0, 0)]);
    let irb = rig.run(VIRTIO, &orb(prog)).await;
    assert_command_reject(&irb, prog);
    // The unit-check condition was consumed by concurrent sense: SENSE now reports no error.
    let buf = rig.alloc(32, 0xEE);
    let prog = rig.program(&[ccw1(0x04, F::NONE, 32, buf)]);
    let irb = rig.run(VIRTIO, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(0x0080_4007, prog + 8, 0x0c, 0, 0));
    assert_eq!(rig.peek(buf as u64, 32), vec![0; 32]);
}

#[tokio::test]
async fn set_virtio_rev_must_come_first() {
    let mut rig = Rig::default_enabled().await;
    assert_eq!(read_conf(&mut rig).await.len(), 8);
    let rev = rig.alloc(4, 0);
    rig.poke(rev as u64, &[0x00, 0x01, 0x00, 0x00]);
    let prog = rig.program(&[ccw1(0x83, F::NONE, 4, rev)]);
    let irb = rig.run(VIRTIO, &orb(prog)).await;
    assert_command_reject(&irb, prog);
}

#[test]
fn default_disk_is_64_mib() {
    // 131072 sectors of 512 bytes.
    let d = VirtioBlkCcw::new(131_072);
    assert_eq!(d.revision(), None);
    assert!(!d.is_little_endian());
}
