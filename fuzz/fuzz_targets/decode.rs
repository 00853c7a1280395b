// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Fuzzes every ccw-types block decoder with arbitrary bytes. Checked on every input: no
//! panic, in decoding, validating, formatting or encoding; the raw level round-trips the
//! stored bytes exactly (`read_from` -> `into_bytes`); the validated level round-trips its
//! representation (`parse` -> encode -> `parse` gives the same value), and an encoded valid
//! block validates again.

#![no_main]

use ccw_types::region::{CmdRegion, CrwRegion, IoRegion, SchibRegion};
use ccw_types::{
    BasicSense, CcwFormat, CcwRepr, Ciw, Crw, CrwChain, Emw, Erw, Esw, IdawFormat, InterruptionId,
    IoInterruptionCode, Irb, MeasurementBlock0, MeasurementBlock1, Midaw, MidawRepr, Orb, OrbRepr,
    Pmcw, Schib, Scsw, SenseId, SenseIdHeader, SubchannelId, SubchannelIdWord, SubchannelLogout,
    TmScsw,
};
use libfuzzer_sys::fuzz_target;

/// A fixed-size stored block: raw read round-trips the bytes; where it validates, a valid
/// block re-validates from its own bytes; Debug (and Display, where given) never panic.
macro_rules! raw_block {
    ($data:expr, $t:ty) => {{
        if let Ok(b) = <$t>::read_from($data) {
            assert_eq!(&b.into_bytes()[..], &$data[..<$t>::LEN], stringify!($t));
            let _ = format!("{b:?}");
        } else {
            assert!($data.len() < <$t>::LEN, stringify!($t));
        }
    }};
    ($data:expr, $t:ty, validate) => {{
        raw_block!($data, $t);
        match <$t>::parse($data) {
            Ok(b) => {
                let again = <$t>::parse(&b.into_bytes()).expect(stringify!($t));
                assert!(again == b, stringify!($t));
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }};
    ($data:expr, $t:ty, validate, display) => {{
        raw_block!($data, $t, validate);
        if let Ok(b) = <$t>::read_from($data) {
            let _ = b.to_string();
        }
    }};
}

fuzz_target!(|data: &[u8]| {
    raw_block!(data, Ciw, validate);
    raw_block!(data, SenseIdHeader);
    raw_block!(data, Erw, validate, display);
    raw_block!(data, SubchannelLogout, validate, display);
    raw_block!(data, Esw);
    raw_block!(data, Emw, validate, display);
    raw_block!(data, IoRegion, validate);
    raw_block!(data, CmdRegion, validate);
    raw_block!(data, SchibRegion, validate);
    raw_block!(data, CrwRegion, validate);
    raw_block!(data, SubchannelIdWord, validate);
    raw_block!(data, Pmcw, validate);
    raw_block!(data, Schib, validate);
    raw_block!(data, MeasurementBlock0, validate, display);
    raw_block!(data, MeasurementBlock1, validate, display);
    raw_block!(data, Scsw, validate);
    raw_block!(data, TmScsw, validate);
    raw_block!(data, Midaw, validate, display);
    raw_block!(data, Crw, validate, display);
    raw_block!(data, InterruptionId, validate, display);
    raw_block!(data, IoInterruptionCode, validate, display);

    // CCWs in both formats: the representation round-trips through its encoding.
    if let Some(b) = data.first_chunk::<8>() {
        for fmt in [CcwFormat::Format0, CcwFormat::Format1] {
            if let Ok(c) = CcwRepr::parse(*b, fmt) {
                let _ = c.to_string();
                let bytes = c.emit(fmt).expect("a parsed CCW encodes in its own format");
                assert_eq!(CcwRepr::parse(bytes, fmt), Ok(c));
                // The other format may refuse the address, never panic.
                let _ = c.emit(match fmt {
                    CcwFormat::Format0 => CcwFormat::Format1,
                    CcwFormat::Format1 => CcwFormat::Format0,
                });
            }
        }
    }

    // ORBs of 12 and 32 bytes.
    if let Ok(o) = Orb::read_from(data) {
        let _ = format!("{o:?}");
        if let Ok(r) = OrbRepr::from_orb(&o) {
            let e = r.emit();
            assert_eq!(OrbRepr::from_orb(&e), Ok(r), "ORB");
        }
    }
    let _ = OrbRepr::parse(data);

    // MIDAWs.
    if let Ok(m) = MidawRepr::parse(data) {
        assert_eq!(MidawRepr::from_midaw(&m.emit()), Ok(m));
        let _ = (m.crosses_page(), m.crosses_page_backward());
    }

    // IRBs: raw 64/96 bytes, strict validation, the lenient concurrent-sense reader.
    if let Ok(irb) = Irb::read_from(data) {
        let _ = irb.to_string();
        let _ = irb.concurrent_sense_lenient();
        let n = data.len().min(Irb::LEN);
        assert_eq!(&irb.into_bytes()[..n], &data[..n]);
    }
    if let Ok(irb) = Irb::parse(data) {
        assert_eq!(Irb::parse(&irb.into_bytes()), Ok(irb));
    }

    // Variable-length device data.
    if let Ok(s) = SenseId::parse(data) {
        let mut out = [0u8; 256];
        let n = s.emit(&mut out).expect("a parsed SENSE ID encodes");
        assert_eq!(SenseId::parse(&out[..n]), Ok(s));
    }
    if let Ok(s) = BasicSense::parse(data) {
        let _ = format!("{s:?}");
    }

    // IDAWs of every format: decode, then encode what was decoded.
    for fmt in [
        IdawFormat::Format1,
        IdawFormat::Format2K2,
        IdawFormat::Format2K4,
    ] {
        if let Ok(addr) = fmt.decode(data) {
            let mut out = [0u8; 8];
            let n = fmt.encode(addr, &mut out).expect("a decoded IDAW encodes");
            assert_eq!(fmt.decode(&out[..n]), Ok(addr));
            let _ = fmt.check_address(0, addr, false);
            let _ = fmt.check_address(1, addr, true);
            let count = u64::from(data.len() as u16);
            // A list exists exactly when the whole transfer is within the format's reach.
            match fmt.idaw_addresses(addr, count) {
                Ok(list) => assert!(list.take(64).count() >= 1),
                Err(_) => assert!(fmt.check_transfer(addr, count).is_err()),
            }
        }
    }

    // Subchannel ids and CRW chains.
    if let Some(w) = data.first_chunk::<4>()
        && let Ok(id) = SubchannelId::from_word(u32::from_be_bytes(*w))
    {
        let _ = id.to_string();
    }
    let mut chain = CrwChain::new();
    for w in data.chunks_exact(4).take(16) {
        let crw = Crw::read_from(w).expect("4 bytes");
        if let Ok(Some(report)) = chain.push(crw) {
            let _ = report.to_string();
        }
    }
});
