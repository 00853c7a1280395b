// SPDX-License-Identifier: Apache-2.0 OR MIT

//! CHANNEL SUBSYSTEM CALL (B25F): the commands a Linux guest issues at boot and on path events
//! (vcss-reference §1, s390-io-reference §10.13).
//!
//! Every request is answered in the response block at `block + L1`; a command vcss does not
//! implement gets response code 0x0004 "command not installed", as QEMU answers (Linux maps it
//! to -EOPNOTSUPP and falls back).

use css_core::ConditionCode;

use crate::GuestIo;
use crate::css::{fetch, store};
use crate::{InstrError, ProgramInterruption, Vcss};

/// Command codes.
pub mod cmd {
    /// Store channel-path description.
    pub const SCPD: u16 = 0x0002;
    /// Store subchannel description.
    pub const SSD: u16 = 0x0004;
    /// Store event information.
    pub const SEI: u16 = 0x000E;
    /// Store channel-subsystem characteristics.
    pub const SCSC: u16 = 0x0010;
}

/// Response codes.
pub mod rc {
    /// Success.
    pub const OK: u16 = 0x0001;
    /// Request-block error: length or reserved fields.
    pub const REQUEST_ERROR: u16 = 0x0003;
    /// Command not installed.
    pub const NOT_INSTALLED: u16 = 0x0004;
    /// No event information.
    pub const NO_DATA: u16 = 0x0005;
    /// Invalid request format.
    pub const INVALID_FORMAT: u16 = 0x0007;
    /// Invalid CSSID.
    pub const INVALID_CSSID: u16 = 0x0008;
    /// Invalid response format.
    pub const INVALID_RESPONSE_FORMAT: u16 = 0x0009;
    /// Invalid SSID.
    pub const INVALID_SSID: u16 = 0x000A;
}

/// SCSC general-characteristics bits vcss sets: 6 cancel-I/O (XSCH), 7 concurrent sense,
/// 46 FCS (SCPD format-1 descriptors). QEMU also sets 45 (MCSS), 47, 48 (extended measurement
/// block), 51 and 108; vcss does not install those facilities (or does not know what they
/// name), so it does not claim them.
pub const GENERAL_CHARACTERISTICS: &[u32] = &[6, 7, 46];
/// SCSC CHSC-characteristics bits vcss sets: 1 (command 0x0002) and 3 (command 0x0004), as
/// Hercules names them. QEMU sets 1 and 109 (meaning unverified).
pub const CHSC_CHARACTERISTICS: &[u32] = &[1, 3];

const PAGE: usize = 4096;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn header(code: u16, word: u32, len: usize) -> Vec<u8> {
    let mut r = vec![0u8; len];
    r[0..2].copy_from_slice(&(len as u16).to_be_bytes());
    r[2..4].copy_from_slice(&code.to_be_bytes());
    r[4..8].copy_from_slice(&word.to_be_bytes());
    r
}

fn code_only(code: u16) -> Vec<u8> {
    header(code, 0, 8)
}

fn set_bit(area: &mut [u8], bit: u32) {
    area[(bit / 8) as usize] |= 0x80 >> (bit % 8);
}

impl Vcss {
    /// CHANNEL SUBSYSTEM CALL with R1 = `addr`, the 4 KiB command block. Specification
    /// exception when not 4 KiB aligned, operand exception when the request length is below
    /// 16, above 4088 or not a multiple of 8 (nothing stored); otherwise the response is
    /// stored at `addr + L1` and cc 0 is returned (all commands run synchronously).
    pub fn chsc<M: GuestIo>(&mut self, mem: &M, addr: u64) -> Result<ConditionCode, InstrError> {
        if addr % PAGE as u64 != 0 {
            return Err(ProgramInterruption::Specification("CHSC block not 4 KiB aligned").into());
        }
        let mut head = [0u8; 4];
        fetch(mem, addr, &mut head)?;
        let l1 = usize::from(be16(&head, 0));
        if !(16..=PAGE - 8).contains(&l1) || l1 % 8 != 0 {
            return Err(
                ProgramInterruption::Operand(crate::sch::OperandException::Operand(
                    ccw_types::DecodeError::new(
                        "CHSC",
                        "request length",
                        ccw_types::DecodeReason::Invalid { value: l1 as u64 },
                    ),
                ))
                .into(),
            );
        }
        let mut req = vec![0u8; l1];
        fetch(mem, addr, &mut req)?;
        let mut resp = match be16(&req, 2) {
            cmd::SCPD => self.scpd(&req),
            cmd::SSD => self.ssd(&req),
            cmd::SEI => self.sei(&req),
            cmd::SCSC => scsc(&req),
            _ => code_only(rc::NOT_INSTALLED),
        };
        resp.truncate(PAGE - l1);
        store(mem, addr + l1 as u64, &resp)?;
        Ok(ConditionCode::Cc0)
    }

    /// 0x0002: one descriptor per CHPID first..=last (Hercules' positions, vcss-reference §1.1
    /// DISAGREE), flags 0x80 only for a CHPID that exists.
    fn scpd(&self, r: &[u8]) -> Vec<u8> {
        if r.len() != 16 || r[4] & 0xC0 != 0 || r[6] & 0xF0 != 0 || r[8..11] != [0; 3] {
            return code_only(rc::REQUEST_ERROR);
        }
        if r[12..16] != [0; 4] {
            return code_only(rc::REQUEST_ERROR);
        }
        if r[4] & 0x0F != 0 {
            return code_only(rc::INVALID_FORMAT);
        }
        if r[5] != 0 {
            return code_only(rc::INVALID_CSSID);
        }
        let (first, last) = (r[7], r[11]);
        if last < first {
            return code_only(rc::REQUEST_ERROR);
        }
        let c = u8::from(r[4] & 0x10 != 0);
        let rfmt = match r[6] & 0x0F {
            0 | 1 => c,
            other => other,
        };
        let size = match rfmt {
            0 => 8,
            1 => 32,
            _ => return code_only(rc::INVALID_RESPONSE_FORMAT),
        };
        let n = (usize::from(last - first) + 1).min((PAGE - 16 - 8) / size);
        let mut resp = header(rc::OK, u32::from(rfmt), 8 + n * size);
        for (i, chpid) in (first..=last).take(n).enumerate() {
            let d = &mut resp[8 + i * size..8 + (i + 1) * size];
            d[3] = chpid;
            if let Some(&Some(ty)) = self.chpids.get(&chpid) {
                d[0] = 0x80;
                d[2] = ty;
            }
        }
        resp
    }

    /// 0x0004: a 32-byte entry per subchannel first..=last of set 0 (zero entries for numbers
    /// without a subchannel).
    fn ssd(&self, r: &[u8]) -> Vec<u8> {
        let hw = be16(r, 4);
        if r.len() != 16 || hw & 0xFFC0 != 0 || r[8..10] != [0; 2] || r[12..16] != [0; 4] {
            return code_only(rc::REQUEST_ERROR);
        }
        if hw & 0x000F != 0 {
            return code_only(rc::INVALID_FORMAT);
        }
        if hw & 0x0030 != 0 {
            return code_only(rc::INVALID_SSID);
        }
        let (first, last) = (be16(r, 6), be16(r, 10));
        if last < first {
            return code_only(rc::REQUEST_ERROR);
        }
        let n = (usize::from(last - first) + 1).min((PAGE - 16 - 8) / 32);
        let mut resp = header(rc::OK, 0, 8 + n * 32);
        for (i, no) in (first..=last).take(n).enumerate() {
            let Some(s) = self.subchannels.get(&no) else {
                continue;
            };
            let p = &s.state.schib.pmcw;
            let e = &mut resp[8 + i * 32..8 + (i + 1) * 32];
            let devno = p.flags.devno();
            e[0] = 0x80 | if p.flags.dnv() { 0x40 } else { 0 } | (p.chars.st() & 7) << 3;
            e[1] = devno as u8;
            e[2..4].copy_from_slice(&devno.to_be_bytes());
            e[4] = p.pim;
            e[5] = 0;
            e[6..8].copy_from_slice(&no.to_be_bytes());
            e[8..16].copy_from_slice(&p.chpid);
        }
        resp
    }

    /// 0x000E: one notification-type-0 event per call, flags 0x80 while more wait; code 0x0005
    /// when none is pending (or NT0 is not selected).
    fn sei(&mut self, r: &[u8]) -> Vec<u8> {
        if r.len() != 16 {
            return code_only(rc::REQUEST_ERROR);
        }
        let ntsm = u64::from_be_bytes(r[8..16].try_into().unwrap_or([0; 8]));
        let nt0 = ntsm == 0 || ntsm & 0x8000_0000_0000_0000 != 0;
        let Some(ev) = nt0.then(|| self.events.pop_front()).flatten() else {
            return code_only(rc::NO_DATA);
        };
        // Header, NT (byte 7 = 0), flags..RSID (8-15), reserved 16-23, 24 bytes of CCDF
        // (zero: the content codes vcss queues carry none).
        let mut resp = header(rc::OK, 0, 0x30);
        resp[8] = if self.events.is_empty() { 0 } else { 0x80 };
        resp[9] = ev.vf;
        resp[10] = ev.rs;
        resp[11] = ev.cc;
        resp[12..14].copy_from_slice(&ev.fla.to_be_bytes());
        resp[14..16].copy_from_slice(&ev.rsid.to_be_bytes());
        resp
    }
}

/// 0x0010: response length 0x0FF0, general characteristics at response byte 8, CHSC
/// characteristics at byte 2040 (block 0x810).
fn scsc(r: &[u8]) -> Vec<u8> {
    if r.len() != 16 {
        return code_only(rc::REQUEST_ERROR);
    }
    let param0 = u32::from_be_bytes([r[4], r[5], r[6], r[7]]);
    if r[5] & 0x0F != 0 {
        return code_only(rc::INVALID_FORMAT);
    }
    if r[6] != 0 {
        return code_only(rc::INVALID_CSSID);
    }
    if param0 & 0xDFF0_00FF != 0 || r[8..16] != [0; 8] {
        return code_only(rc::REQUEST_ERROR);
    }
    let mut resp = header(rc::OK, 0, 0x0FF0);
    for &b in GENERAL_CHARACTERISTICS {
        set_bit(&mut resp[8..2048], b);
    }
    for &b in CHSC_CHARACTERISTICS {
        set_bit(&mut resp[2048..], b);
    }
    resp
}
