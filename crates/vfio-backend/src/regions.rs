// SPDX-License-Identifier: Apache-2.0 OR MIT

//! vfio-ccw region discovery: `VFIO_DEVICE_GET_REGION_INFO` answers and their capability
//! chains, parsed from bytes (pure functions, so every malformed answer is testable).

use std::fmt;

use css_core::{BackendError, BackendErrorKind};
use vfio_bindings::bindings::vfio as vb;

use crate::error::error;
use crate::uapi;

/// Size of `struct vfio_region_info`.
pub(crate) const REGION_INFO_LEN: usize = 32;
/// Size of `struct vfio_region_info_cap_type` (header + type + subtype).
const CAP_TYPE_LEN: usize = 16;
/// The first `argsz` we ask with: the struct plus one type capability, which is exactly what
/// vfio-ccw returns. Larger answers are retried with the size the kernel asks for.
pub(crate) const FIRST_ARGSZ: u32 = (REGION_INFO_LEN + CAP_TYPE_LEN) as u32;
/// We never follow an `argsz` request larger than this (a hostile or broken answer).
pub(crate) const MAX_ARGSZ: u32 = 4096;
/// Capability chains longer than this are rejected (vfio-ccw has one entry).
const MAX_CAPS: usize = 16;

/// One region as `VFIO_DEVICE_GET_REGION_INFO` described it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionInfo {
    /// Region index.
    pub index: u32,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Size in bytes.
    pub size: u64,
    /// File offset in the device fd.
    pub offset: u64,
    /// `(type, subtype)` from the `VFIO_REGION_INFO_CAP_TYPE` capability, if any.
    pub cap_type: Option<(u32, u32)>,
}

impl RegionInfo {
    /// Whether the region may be read.
    pub fn readable(&self) -> bool {
        self.flags & vb::VFIO_REGION_INFO_FLAG_READ != 0
    }
    /// Whether the region may be written.
    pub fn writable(&self) -> bool {
        self.flags & vb::VFIO_REGION_INFO_FLAG_WRITE != 0
    }
}

impl fmt::Display for RegionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "region {} size={} offset={:#x} flags={:#x}{}{}",
            self.index,
            self.size,
            self.offset,
            self.flags,
            if self.readable() { " R" } else { "" },
            if self.writable() { "W" } else { "" },
        )?;
        if let Some((t, s)) = self.cap_type {
            write!(f, " type={t}/{s}")?;
            if t == vb::VFIO_REGION_TYPE_CCW {
                let name = match s {
                    vb::VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD => " (async cmd)",
                    vb::VFIO_REGION_SUBTYPE_CCW_SCHIB => " (schib)",
                    vb::VFIO_REGION_SUBTYPE_CCW_CRW => " (crw)",
                    _ => "",
                };
                f.write_str(name)?;
            }
        } else if self.index == uapi::VFIO_CCW_CONFIG_REGION_INDEX {
            f.write_str(" (io)")?;
        }
        Ok(())
    }
}

/// The answer to one `GET_REGION_INFO` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// Complete.
    Info(RegionInfo),
    /// The capability chain did not fit: ask again with this `argsz`.
    NeedArgsz(u32),
}

fn ne_u32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(w)
}

fn ne_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(w)
}

fn ne_u16(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn malformed(index: u32, what: impl fmt::Display) -> BackendError {
    error(
        BackendErrorKind::Io,
        "VFIO_DEVICE_GET_REGION_INFO",
        format!("region {index}: malformed answer: {what}"),
    )
}

/// Parses the buffer the kernel filled for region `index`.
pub(crate) fn parse_region_info(index: u32, buf: &[u8]) -> Result<Parsed, BackendError> {
    if buf.len() < REGION_INFO_LEN {
        return Err(malformed(
            index,
            format_args!("{} bytes, need {REGION_INFO_LEN}", buf.len()),
        ));
    }
    let argsz = ne_u32(buf, 0);
    let flags = ne_u32(buf, 4);
    let got_index = ne_u32(buf, 8);
    let cap_offset = ne_u32(buf, 12) as usize;
    let size = ne_u64(buf, 16);
    let offset = ne_u64(buf, 24);
    if got_index != index {
        return Err(malformed(
            index,
            format_args!("answered for index {got_index}"),
        ));
    }
    let mut info = RegionInfo {
        index,
        flags,
        size,
        offset,
        cap_type: None,
    };
    if flags & vb::VFIO_REGION_INFO_FLAG_CAPS == 0 {
        return Ok(Parsed::Info(info));
    }
    if argsz as usize > buf.len() {
        if argsz > MAX_ARGSZ {
            return Err(malformed(
                index,
                format_args!("argsz {argsz} exceeds {MAX_ARGSZ}"),
            ));
        }
        return Ok(Parsed::NeedArgsz(argsz));
    }
    let mut at = cap_offset;
    let mut seen = 0;
    while at != 0 {
        seen += 1;
        if seen > MAX_CAPS {
            return Err(malformed(index, "capability chain too long"));
        }
        if at < REGION_INFO_LEN || at % 4 != 0 || at + 8 > buf.len() {
            return Err(malformed(
                index,
                format_args!("capability at offset {at} out of bounds"),
            ));
        }
        let id = ne_u16(buf, at);
        let next = ne_u32(buf, at + 4) as usize;
        if id as u32 == vb::VFIO_REGION_INFO_CAP_TYPE {
            if at + CAP_TYPE_LEN > buf.len() {
                return Err(malformed(index, "truncated type capability"));
            }
            info.cap_type = Some((ne_u32(buf, at + 8), ne_u32(buf, at + 12)));
        }
        if next != 0 && next <= at {
            return Err(malformed(
                index,
                format_args!("capability chain loops ({at} -> {next})"),
            ));
        }
        at = next;
    }
    Ok(Parsed::Info(info))
}

/// The vfio-ccw regions of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regions {
    /// The io region (always present).
    pub io: RegionInfo,
    /// The async command region (HALT / CLEAR), if the kernel has it.
    pub async_cmd: Option<RegionInfo>,
    /// The schib region (STORE SUBCHANNEL), if the kernel has it.
    pub schib: Option<RegionInfo>,
    /// The crw region (channel reports), if the kernel has it.
    pub crw: Option<RegionInfo>,
    /// Every region, in index order (including ones this crate does not use).
    pub all: Vec<RegionInfo>,
}

fn check_region(r: &RegionInfo, name: &str, min: usize, write: bool) -> Result<(), BackendError> {
    if r.size < min as u64 || !r.readable() || (write && !r.writable()) {
        return Err(error(
            BackendErrorKind::Unsupported,
            "VFIO_DEVICE_GET_REGION_INFO",
            format!(
                "{name} region {} is {} bytes with flags {:#x}; vfio-ccw's is {min} bytes, {}",
                r.index,
                r.size,
                r.flags,
                if write { "read/write" } else { "readable" }
            ),
        ));
    }
    Ok(())
}

impl Regions {
    /// Classifies the regions of a device: index 0 is the io region, the others are found
    /// by their capability type.
    pub(crate) fn classify(all: Vec<RegionInfo>) -> Result<Self, BackendError> {
        let io = *all
            .iter()
            .find(|r| r.index == uapi::VFIO_CCW_CONFIG_REGION_INDEX)
            .ok_or_else(|| {
                error(
                    BackendErrorKind::Unsupported,
                    "VFIO_DEVICE_GET_REGION_INFO",
                    "no io region",
                )
            })?;
        check_region(&io, "io", uapi::IoRegion::LEN, true)?;
        let mut regions = Regions {
            io,
            async_cmd: None,
            schib: None,
            crw: None,
            all: Vec::new(),
        };
        for r in &all {
            let Some((vb::VFIO_REGION_TYPE_CCW, subtype)) = r.cap_type else {
                continue;
            };
            match subtype {
                vb::VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD => {
                    check_region(r, "async cmd", size_of::<uapi::CmdRegion>(), true)?;
                    regions.async_cmd = Some(*r);
                }
                vb::VFIO_REGION_SUBTYPE_CCW_SCHIB => {
                    check_region(r, "schib", size_of::<uapi::SchibRegion>(), false)?;
                    regions.schib = Some(*r);
                }
                vb::VFIO_REGION_SUBTYPE_CCW_CRW => {
                    check_region(r, "crw", size_of::<uapi::CrwRegion>(), false)?;
                    regions.crw = Some(*r);
                }
                other => tracing::debug!(index = r.index, subtype = other, "unknown ccw region"),
            }
        }
        regions.all = all;
        Ok(regions)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A region-info answer as the kernel writes it (native-endian), with an optional type
    /// capability at offset 32.
    pub(crate) fn encode(
        argsz: u32,
        index: u32,
        flags: u32,
        size: u64,
        offset: u64,
        cap: Option<(u32, u32)>,
        buf_len: usize,
    ) -> Vec<u8> {
        let mut b = vec![0u8; buf_len];
        let needed = if cap.is_some() { 48 } else { 32 };
        let fits = buf_len >= needed;
        let flags = if cap.is_some() {
            flags | vb::VFIO_REGION_INFO_FLAG_CAPS
        } else {
            flags
        };
        b[0..4].copy_from_slice(&argsz.max(needed as u32).to_ne_bytes());
        b[4..8].copy_from_slice(&flags.to_ne_bytes());
        b[8..12].copy_from_slice(&index.to_ne_bytes());
        let cap_off: u32 = if cap.is_some() && fits { 32 } else { 0 };
        b[12..16].copy_from_slice(&cap_off.to_ne_bytes());
        b[16..24].copy_from_slice(&size.to_ne_bytes());
        b[24..32].copy_from_slice(&offset.to_ne_bytes());
        if let (Some((t, s)), true) = (cap, fits) {
            b[32..34].copy_from_slice(&(vb::VFIO_REGION_INFO_CAP_TYPE as u16).to_ne_bytes());
            b[34..36].copy_from_slice(&1u16.to_ne_bytes());
            b[36..40].copy_from_slice(&0u32.to_ne_bytes());
            b[40..44].copy_from_slice(&t.to_ne_bytes());
            b[44..48].copy_from_slice(&s.to_ne_bytes());
        }
        b
    }

    const RW: u32 = vb::VFIO_REGION_INFO_FLAG_READ | vb::VFIO_REGION_INFO_FLAG_WRITE;
    const R: u32 = vb::VFIO_REGION_INFO_FLAG_READ;

    #[test]
    fn parses_io_region_without_caps() {
        let b = encode(32, 0, RW, 124, 0, None, 48);
        let Parsed::Info(r) = parse_region_info(0, &b).unwrap() else {
            panic!()
        };
        assert_eq!((r.size, r.offset, r.cap_type), (124, 0, None));
        assert!(r.readable() && r.writable());
        assert_eq!(
            r.to_string(),
            "region 0 size=124 offset=0x0 flags=0x3 RW (io)"
        );
    }

    #[test]
    fn parses_type_capability() {
        let b = encode(48, 2, R, 52, 0x800, Some((2, 2)), 48);
        let Parsed::Info(r) = parse_region_info(2, &b).unwrap() else {
            panic!()
        };
        assert_eq!(r.cap_type, Some((2, 2)));
        assert_eq!(
            r.to_string(),
            "region 2 size=52 offset=0x800 flags=0x9 R type=2/2 (schib)"
        );
    }

    #[test]
    fn asks_again_when_chain_does_not_fit() {
        let b = encode(48, 1, RW, 8, 0x400, Some((2, 1)), 32);
        assert_eq!(parse_region_info(1, &b).unwrap(), Parsed::NeedArgsz(48));
        let mut huge = b.clone();
        huge[0..4].copy_from_slice(&(MAX_ARGSZ + 1).to_ne_bytes());
        assert!(parse_region_info(1, &huge).is_err());
    }

    #[test]
    fn rejects_malformed_answers() {
        // Short buffer.
        assert!(parse_region_info(0, &[0u8; 16]).is_err());
        // Wrong index.
        let b = encode(32, 3, RW, 124, 0, None, 48);
        assert!(parse_region_info(0, &b).is_err());
        // Capability offset beyond the buffer.
        let mut b = encode(48, 1, RW, 8, 0x400, Some((2, 1)), 48);
        b[12..16].copy_from_slice(&44u32.to_ne_bytes());
        let e = parse_region_info(1, &b).unwrap_err();
        assert!(e.detail.contains("out of bounds"), "{e}");
        // Capability offset inside the struct.
        b[12..16].copy_from_slice(&8u32.to_ne_bytes());
        assert!(parse_region_info(1, &b).is_err());
        // A loop.
        let mut b = encode(48, 1, RW, 8, 0x400, Some((2, 1)), 48);
        b[36..40].copy_from_slice(&32u32.to_ne_bytes());
        let e = parse_region_info(1, &b).unwrap_err();
        assert!(e.detail.contains("loops"), "{e}");
        // Truncated type capability.
        let mut b = encode(48, 1, RW, 8, 0x400, Some((2, 1)), 48);
        b.truncate(44);
        b[0..4].copy_from_slice(&44u32.to_ne_bytes());
        assert!(parse_region_info(1, &b).is_err());
    }

    fn region(index: u32, flags: u32, size: u64, cap: Option<(u32, u32)>) -> RegionInfo {
        RegionInfo {
            index,
            flags,
            size,
            offset: (index as u64) << 10,
            cap_type: cap,
        }
    }

    #[test]
    fn classifies_regions_and_tolerates_absent_optional_ones() {
        let all = vec![
            region(0, RW, 124, None),
            region(1, RW, 8, Some((2, 1))),
            region(2, R, 52, Some((2, 2))),
            region(3, R, 8, Some((2, 3))),
            region(4, R, 8, Some((2, 9))),
        ];
        let r = Regions::classify(all).unwrap();
        assert_eq!(r.async_cmd.unwrap().index, 1);
        assert_eq!(r.schib.unwrap().offset, 0x800);
        assert_eq!(r.crw.unwrap().index, 3);
        assert_eq!(r.all.len(), 5);

        let r = Regions::classify(vec![region(0, RW, 124, None)]).unwrap();
        assert!(r.async_cmd.is_none() && r.schib.is_none() && r.crw.is_none());
    }

    #[test]
    fn rejects_wrong_region_shapes() {
        assert!(Regions::classify(vec![]).is_err());
        assert!(Regions::classify(vec![region(0, R, 124, None)]).is_err());
        assert!(Regions::classify(vec![region(0, RW, 100, None)]).is_err());
        let e = Regions::classify(vec![
            region(0, RW, 124, None),
            region(2, R, 40, Some((2, 2))),
        ])
        .unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::Unsupported);
        assert!(e.detail.contains("schib"), "{e}");
    }
}
