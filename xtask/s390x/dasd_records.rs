// SPDX-License-Identifier: Apache-2.0 OR MIT

// The DASD test records both sides agree on: included by the guest's probe (xtask/s390x/probe.rs)
// and by the host's Hercules lane (xtask/src/s390x/hercules.rs), so the data the host writes
// into the image is the data the guest expects, and the other way round.

/// Data length of every record on the lane's 3390 (`dasdinit -linux`: R1-R12 of 4096 bytes).
pub(crate) const RECORD_LEN: usize = 4096;
/// The record the host fills before boot and the guest reads: (cylinder, head, record).
pub(crate) const READ_AT: (u16, u16, u8) = (0, 2, 1);
/// The record the guest writes and the host checks after power-off.
pub(crate) const WRITE_AT: (u16, u16, u8) = (0, 3, 1);
/// Pattern seed of the record at `READ_AT`.
pub(crate) const READ_SEED: u8 = 0x5A;
/// Pattern seed of the record written at `WRITE_AT`.
pub(crate) const WRITE_SEED: u8 = 0xC3;

/// Byte `i` of a test record: position-dependent, so a transfer that lands at a wrong offset (a
/// misplaced IDAW or data-chaining boundary) cannot match.
pub(crate) fn pattern(seed: u8, i: usize) -> u8 {
    ((i as u32).wrapping_mul(0x9E37_79B1) >> 24) as u8 ^ seed ^ (i >> 8) as u8
}
