// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Decodes the bytes a real vfio-ccw device answered (recorded in an emulated s390x guest) and
//! prints them as a person reads them.
//!
//! Run with `cargo run -p ccw-types --example decode`.

use ccw_types::{CcwFormat, CcwRepr, Irb, OrbRepr, Schib, SenseId};

fn main() -> Result<(), ccw_types::DecodeError> {
    // The ORB vfio-ccw received: intparm, F|P|C64, LPM 0xFF, cpa.
    let orb = OrbRepr::parse(&[0, 0, 0, 1, 0x00, 0xC2, 0xFF, 0x00, 0x00, 0x00, 0x10, 0x00])?;
    println!("{orb}");

    // SENSE ID, SLI, count 256.
    let ccw = CcwRepr::parse(
        [0xE4, 0x20, 0x01, 0x00, 0x00, 0x00, 0x20, 0x00],
        CcwFormat::Format1,
    )?;
    println!("{ccw}");

    // Its final status: CE+DE, cpa = last CCW + 8, residual 0.
    let mut irb = [0u8; 96];
    irb[..12].copy_from_slice(&[
        0x00, 0x80, 0x40, 0x07, 0x00, 0x00, 0x10, 0x08, 0x0C, 0, 0, 0,
    ]);
    println!("{}", Irb::read_from(&irb)?);

    // The SENSE ID data: control unit 0x3832 model 2 (virtio-blk), no CIWs.
    let mut data = [0u8; 256];
    data[..4].copy_from_slice(&[0xff, 0x38, 0x32, 0x02]);
    println!("{}", SenseId::parse(&data)?);

    // An unknown command: unit check with concurrent sense (command reject). QEMU encodes the
    // 32-byte sense count as `count << 8` (`01 00 20 00`); the display says so.
    let mut irb = [0u8; 96];
    irb[..12].copy_from_slice(&[
        0x04, 0x82, 0x40, 0x17, 0x00, 0x00, 0x10, 0x08, 0x02, 0, 0, 0,
    ]);
    irb[12..20].copy_from_slice(&[0x00, 0x80, 0x00, 0x00, 0x01, 0x00, 0x20, 0x00]);
    irb[32] = 0x80;
    println!("{}", Irb::read_from(&irb)?);

    // The subchannel's SCHIB: ISC 3, enabled, devno 0x0005.
    let mut schib = [0u8; 52];
    schib[..8].copy_from_slice(&[0x00, 0xd3, 0x00, 0x00, 0x18, 0x81, 0x00, 0x05]);
    println!("{}", Schib::read_from(&schib)?);
    Ok(())
}
