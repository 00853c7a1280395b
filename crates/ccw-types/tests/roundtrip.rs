// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Property tests: every block round-trips (bytes -> block -> bytes, and validated repr ->
//! bytes -> repr), and no decoder panics on arbitrary bytes of arbitrary length.

use ccw_types::*;
use proptest::prelude::*;

/// For a stored block with `from_bytes`/`into_bytes`/`read_from`/`parse`: the stored view
/// gives back any byte pattern; `read_from` and `parse` never panic on any slice; whatever
/// `parse` accepts re-encodes to the same bytes; `Display` and `Debug` never panic.
macro_rules! stored_roundtrip {
    ($($name:ident: $t:ty, $n:literal;)+) => {
        proptest! {
            #![proptest_config(ccw_testkit::proptest_config(256))]
            $(
                #[test]
                fn $name(bytes in proptest::collection::vec(any::<u8>(), 0..($n * 2))) {
                    if let Ok(arr) = <[u8; $n]>::try_from(&bytes[..bytes.len().min($n)]) {
                        prop_assert_eq!(<$t>::from_bytes(arr).into_bytes(), arr);
                    }
                    match <$t>::read_from(&bytes) {
                        Ok(block) => {
                            prop_assert!(bytes.len() >= $n);
                            prop_assert_eq!(&block.into_bytes()[..], &bytes[..$n]);
                            let _ = (block.to_string(), format!("{block:?}"));
                        }
                        Err(e) => prop_assert_eq!(e.reason, DecodeReason::TooShort { needed: $n, got: bytes.len() }),
                    }
                    if let Ok(block) = <$t>::parse(&bytes) {
                        prop_assert_eq!(&block.into_bytes()[..], &bytes[..$n]);
                    }
                }
            )+
        }
    };
}

stored_roundtrip! {
    scsw: Scsw, 12;
    tm_scsw: TmScsw, 12;
    erw: Erw, 4;
    subchannel_logout: SubchannelLogout, 4;
    emw: Emw, 32;
    pmcw: Pmcw, 28;
    schib: Schib, 52;
    measurement_block0: MeasurementBlock0, 32;
    measurement_block1: MeasurementBlock1, 64;
    crw: Crw, 4;
    interruption_id: InterruptionId, 4;
    interruption_code: IoInterruptionCode, 12;
    midaw: Midaw, 16;
    ciw_stored: Ciw, 4;
    io_region: IoRegion, 124;
    cmd_region: CmdRegion, 8;
    schib_region: SchibRegion, 52;
    crw_region: CrwRegion, 8;
    subchannel_id_word: SubchannelIdWord, 4;
}

fn ccw_flags() -> impl Strategy<Value = CcwFlags> {
    any::<u8>().prop_map(CcwFlags::from_bits)
}

fn ccw_repr(max_cda: u32) -> impl Strategy<Value = CcwRepr> {
    (any::<u8>(), ccw_flags(), any::<u16>(), 0..=max_cda).prop_map(|(cmd, flags, count, cda)| {
        CcwRepr {
            cmd,
            flags,
            count,
            cda,
        }
    })
}

fn priorities() -> impl Strategy<Value = Option<OrbPriorities>> {
    proptest::option::of((any::<u8>(), any::<u8>()).prop_map(|(css, cu)| OrbPriorities { css, cu }))
}

fn command_orb() -> impl Strategy<Value = CommandOrb> {
    (
        (
            any::<u32>(),
            0u8..16,
            any::<[bool; 4]>(),
            any::<bool>(),
            any::<[bool; 4]>(),
        ),
        (
            any::<[bool; 4]>(),
            any::<u8>(),
            priorities(),
            0u32..0x8000_0000,
        ),
    )
        .prop_map(
            |((intparm, key, [s, c, m, y], f, [p, i, a, u]), ([h, t, l, d], lpm, prio, cpa))| {
                CommandOrb {
                    intparm,
                    key,
                    suspend: s,
                    streaming: c,
                    modification: m,
                    synchronization: y,
                    format: if f {
                        CcwFormat::Format1
                    } else {
                        CcwFormat::Format0
                    },
                    prefetch: p,
                    initial_status: i,
                    address_limit: a,
                    suppress_suspended: u,
                    format2_idaw: h,
                    idaw_2k: t,
                    lpm,
                    ils: l,
                    midaw: d,
                    priorities: prio,
                    cpa,
                }
            },
        )
}

fn transport_orb() -> impl Strategy<Value = TransportOrb> {
    (
        any::<u32>(),
        0u8..16,
        any::<u8>(),
        any::<u32>(),
        priorities(),
    )
        .prop_map(|(intparm, key, lpm, tcw, priorities)| TransportOrb {
            intparm,
            key,
            lpm,
            tcw,
            priorities,
        })
}

fn ciw() -> impl Strategy<Value = Ciw> {
    (0u8..16, any::<u8>(), any::<u16>())
        .prop_map(|(ct, cmd, count)| Ciw::entry(CiwType::from_ct(ct), cmd, count))
}

fn sense_id() -> impl Strategy<Value = SenseId> {
    (
        any::<(u16, u8, u16, u8)>(),
        proptest::collection::vec(ciw(), 0..=SenseId::MAX_CIWS),
    )
        .prop_map(|((cu, cm, dt, dm), ciws)| {
            ciws.into_iter()
                .try_fold(SenseId::new(cu, cm, dt, dm), SenseId::with_ciw)
                .expect("at most 62 well-formed CIWs")
        })
}

fn subchannel_id() -> impl Strategy<Value = SubchannelId> {
    (any::<u8>(), 0u8..4, any::<u16>()).prop_map(|(c, s, n)| SubchannelId::new(c, s, n))
}

proptest! {
    #![proptest_config(ccw_testkit::proptest_config(256))]

    #[test]
    fn ccw_repr_roundtrip_format1(ccw in ccw_repr(0x7FFF_FFFF)) {
        let bytes = ccw.emit(CcwFormat::Format1).unwrap();
        prop_assert_eq!(CcwRepr::parse(bytes, CcwFormat::Format1).unwrap(), ccw);
        prop_assert_eq!(Ccw1::from_bytes(bytes).into_bytes(), bytes);
    }

    #[test]
    fn ccw_repr_roundtrip_format0(ccw in ccw_repr(0x00FF_FFFF)) {
        let bytes = ccw.emit(CcwFormat::Format0).unwrap();
        prop_assert_eq!(CcwRepr::parse(bytes, CcwFormat::Format0).unwrap(), ccw);
        prop_assert_eq!(Ccw0::from_bytes(bytes).into_bytes(), bytes);
    }

    #[test]
    fn ccw_bytes_roundtrip(bytes in any::<[u8; 8]>()) {
        let _ = (Ccw1::from_bytes(bytes).to_string(), Ccw0::from_bytes(bytes).to_string());
        prop_assert_eq!(Ccw1::read_from(&bytes).unwrap().into_bytes(), bytes);
        if let Ok(ccw) = CcwRepr::parse(bytes, CcwFormat::Format1) {
            prop_assert_eq!(ccw.emit(CcwFormat::Format1).unwrap(), bytes);
        } else {
            prop_assert!(bytes[4] & 0x80 != 0);
        }
        // Format 0 accepts everything; its ignored byte 5 is emitted as zero.
        let ccw = CcwRepr::parse(bytes, CcwFormat::Format0).unwrap();
        let mut canonical = bytes;
        canonical[5] = 0;
        prop_assert_eq!(ccw.emit(CcwFormat::Format0).unwrap(), canonical);
    }

    #[test]
    fn command_orb_roundtrip(orb in command_orb()) {
        let stored = orb.emit();
        let bytes = stored.into_bytes();
        prop_assert_eq!(OrbRepr::parse(&bytes).unwrap(), OrbRepr::Command(orb));
        prop_assert_eq!(Orb::from_bytes(bytes), stored);
        if orb.priorities.is_none() {
            prop_assert_eq!(OrbRepr::parse(&stored.short_bytes()).unwrap(), OrbRepr::Command(orb));
        }
    }

    #[test]
    fn transport_orb_roundtrip(orb in transport_orb()) {
        let bytes = orb.emit().into_bytes();
        prop_assert_eq!(OrbRepr::parse(&bytes).unwrap(), OrbRepr::Transport(orb));
    }

    #[test]
    fn orb_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(orb) = Orb::read_from(&bytes) {
            let _ = (orb.to_string(), format!("{orb:?}"));
        }
        if let Ok(repr) = OrbRepr::parse(&bytes) {
            // What validates re-encodes to the architected bytes: 12 of them without X.
            let n = if bytes[7] & 1 == 1 { 32 } else { 12 };
            prop_assert_eq!(&repr.emit().into_bytes()[..n], &bytes[..n]);
            let _ = repr.to_string();
        }
    }

    #[test]
    fn irb_roundtrip(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        match Irb::read_from(&bytes) {
            Ok(irb) => {
                let n = bytes.len().min(96);
                prop_assert_eq!(&irb.into_bytes()[..n], &bytes[..n]);
                prop_assert!(irb.into_bytes()[n..].iter().all(|&b| b == 0));
                let _ = (irb.to_string(), format!("{irb:?}"), irb.sense(), irb.concurrent_sense());
                prop_assert_eq!(Irb::from_bytes(irb.into_bytes()), irb);
            }
            Err(e) => prop_assert!(bytes.len() < 64, "{}", e),
        }
        if let Ok(irb) = Irb::parse(&bytes) {
            prop_assert_eq!(&irb.into_bytes()[..64], &bytes[..64]);
        }
    }

    #[test]
    fn esw_roundtrip(bytes in any::<[u8; 20]>(), l in any::<bool>()) {
        let esw = Esw::from_bytes(bytes);
        prop_assert_eq!(esw.into_bytes(), bytes);
        let format = if l { EswFormat::Format0 } else { EswFormat::Format1To3 };
        let _ = (esw.display(format).to_string(), esw.to_string(), esw.validate(format));
        prop_assert_eq!(esw.logout().into_bytes(), [bytes[0], bytes[1], bytes[2], bytes[3]]);
    }

    #[test]
    fn sense_id_header_roundtrip(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
        match SenseIdHeader::read_from(&bytes) {
            Ok(h) => {
                prop_assert_eq!(&h.into_bytes()[..], &bytes[..8]);
                let _ = (h.to_string(), format!("{h:?}"));
            }
            Err(e) => prop_assert_eq!(e.reason, DecodeReason::TooShort { needed: 8, got: bytes.len() }),
        }
    }

    #[test]
    fn erw_lenient_count(count in 0u8..64, qemu in any::<bool>()) {
        let word = if qemu { 0x0100_0000 | (u32::from(count) << 8) } else { 0x0100_0000 | (u32::from(count) << 16) };
        let erw = Erw::from_bytes(word.to_be_bytes());
        prop_assert_eq!(erw.sense_count_lenient(), count);
        prop_assert_eq!(erw.scnt(), if qemu { 0 } else { count });
        prop_assert_eq!(erw.validate().is_ok(), !qemu || count == 0);
    }

    #[test]
    fn scsw_modes_share_bytes(bytes in any::<[u8; 12]>()) {
        let scsw = Scsw::from_bytes(bytes);
        let tm = scsw.to_transport();
        prop_assert_eq!(tm.into_bytes(), bytes);
        prop_assert_eq!(tm.to_command(), scsw);
        prop_assert_eq!(tm.ctrl.fc(), scsw.ctrl.fc());
        prop_assert_eq!(tm.ctrl.sc(), scsw.ctrl.sc());
    }

    #[test]
    fn midaw_repr_roundtrip(flags in 0u8..8, count in 1u16.., addr in any::<u64>()) {
        let m = MidawRepr { flags: MidawFlags::from_bits(flags << 5), count, addr };
        let bytes = m.emit().into_bytes();
        prop_assert_eq!(MidawRepr::parse(&bytes).unwrap(), m);
        prop_assert_eq!(Midaw::parse(&bytes).unwrap().into_bytes(), bytes);
        let _ = (m.crosses_page(), m.crosses_page_backward());
    }

    #[test]
    fn midaw_page_rule(addr in any::<u64>(), count in 1u16..=4096) {
        let m = MidawRepr { flags: MidawFlags::NONE, count, addr };
        let start_page = addr >> 12;
        let end = u128::from(addr) + u128::from(count) - 1;
        prop_assert_eq!(m.crosses_page(), (end >> 12) as u64 != start_page || end > u128::from(u64::MAX));
    }

    #[test]
    fn ciw_roundtrip(c in ciw()) {
        let bytes = c.into_bytes();
        prop_assert_eq!(Ciw::parse(&bytes).unwrap(), c);
        prop_assert_eq!(CiwType::from_ct(c.ct()).ct(), c.ct());
    }

    #[test]
    fn sense_id_roundtrip(id in sense_id(), extra in 0usize..16) {
        let len = (id.encoded_len() + extra).min(SenseId::MAX_LEN);
        let mut buf = vec![0xAAu8; len];
        prop_assert_eq!(id.emit(&mut buf).unwrap(), id.encoded_len());
        prop_assert_eq!(SenseId::parse(&buf).unwrap(), id);
        let _ = (id.to_string(), format!("{id:?}"));
    }

    #[test]
    fn sense_id_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(id) = SenseId::parse(&bytes) {
            let mut out = vec![0u8; bytes.len()];
            id.emit(&mut out).unwrap();
            prop_assert_eq!(out, bytes);
        }
    }

    #[test]
    fn basic_sense_roundtrip(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        match BasicSense::parse(&bytes) {
            Ok(s) => {
                prop_assert_eq!(s.as_bytes(), &bytes[..]);
                prop_assert_eq!(s.byte0().bits(), bytes[0]);
                let _ = (s.to_string(), format!("{s:?}"), s.eckd_byte1(), s.eckd_byte2());
            }
            Err(_) => prop_assert!(bytes.is_empty() || bytes.len() > 32),
        }
    }

    #[test]
    fn subchannel_id_roundtrip(id in subchannel_id()) {
        prop_assert_eq!(SubchannelId::from_word(id.to_word()).unwrap(), id);
        prop_assert_eq!(id.to_string().parse::<SubchannelId>().unwrap(), id);
        let dev = DeviceId::new(id.cssid, id.ssid, id.sch_no);
        prop_assert_eq!(dev.to_string().parse::<DeviceId>().unwrap(), dev);
    }

    #[test]
    fn subchannel_id_word_never_panics(word in any::<u32>(), text in "[0-9a-fA-F.]{0,12}") {
        if let Ok(id) = SubchannelId::from_word(word) {
            // The repr canonicalizes an explicit CSS 0 (M = 1, CSSID 0) to M = 0.
            let canonical = if word >> 24 == 0 { word & !0x0008_0000 } else { word };
            prop_assert_eq!(id.to_word(), canonical);
        }
        let _ = text.parse::<SubchannelId>();
        let _ = text.parse::<DeviceId>();
    }

    #[test]
    fn crw_report_roundtrip(id in subchannel_id(), erc in 0u8..64, chained in any::<bool>()) {
        let report = CrwReport::subchannel(erc, id, chained);
        let mut chain = CrwChain::new();
        let mut out = None;
        for crw in [Some(report.first), report.second].into_iter().flatten() {
            let bytes = crw.into_bytes();
            out = chain.push(Crw::parse(&bytes).unwrap()).unwrap();
        }
        let out = out.unwrap();
        prop_assert_eq!(out, report);
        let expect = if chained { id } else { SubchannelId::new(0, 0, id.sch_no) };
        prop_assert_eq!(out.subchannel_id(), Some(expect));
    }

    #[test]
    fn crw_chain_never_panics(words in proptest::collection::vec(any::<u32>(), 0..8)) {
        let mut chain = CrwChain::new();
        for w in words {
            if let Ok(Some(r)) = chain.push(Crw::from_bytes(w.to_be_bytes())) {
                let _ = (r.to_string(), r.subchannel_id());
            }
        }
    }

    #[test]
    fn idaw_roundtrip(addr in any::<u64>(), count in 0u64..0x10000, which in 0usize..3) {
        let f = [IdawFormat::Format1, IdawFormat::Format2K2, IdawFormat::Format2K4][which];
        // Keep the whole transfer within what the format can address (format 1: below 2 GiB);
        // transfers that leave it are `idaw_arithmetic_never_panics`' domain.
        let max = f.max_address();
        let addr = (addr & max).min(max - count.max(1) + 1);
        let list: Vec<u64> = f.idaw_addresses(addr, count).unwrap().collect();
        prop_assert_eq!(list.len() as u64, f.idaws_needed(addr, count));
        for (i, a) in list.iter().enumerate() {
            let mut buf = [0u8; 8];
            let n = f.encode(*a, &mut buf).unwrap();
            prop_assert_eq!(f.decode(&buf[..n]).unwrap(), *a);
            prop_assert!(f.check_address(i, *a, false).is_ok());
        }
        // The list covers exactly [addr, addr + count) (at least one byte).
        let bs = f.block_size();
        let end = addr + count.max(1);
        prop_assert!(list.last().unwrap() < &end);
        prop_assert!(list.last().unwrap() / bs * bs + bs >= end);
    }

    #[test]
    fn idaw_arithmetic_never_panics(addr in any::<u64>(), count in any::<u64>(), which in 0usize..3) {
        let f = [IdawFormat::Format1, IdawFormat::Format2K2, IdawFormat::Format2K4][which];
        let n = f.idaws_needed(addr, count);
        prop_assert!(n >= 1);
        // A list exists exactly when the transfer stays within the format's reach.
        let reachable = addr.checked_add(count.max(1) - 1).is_some_and(|l| l <= f.max_address());
        match f.idaw_addresses(addr, count) {
            Ok(list) => {
                prop_assert!(reachable);
                let _ = list.take(4).count();
            }
            Err(e) => {
                prop_assert!(!reachable);
                prop_assert_eq!(e.block, "IDAW list");
            }
        }
        let _ = (f.check_address(1, addr, true), f.check_address(1, addr, false));
    }

    #[test]
    fn idaw_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..10), which in 0usize..3) {
        let f = [IdawFormat::Format1, IdawFormat::Format2K2, IdawFormat::Format2K4][which];
        if let Ok(a) = f.decode(&bytes) {
            let mut buf = [0u8; 8];
            let n = f.encode(a, &mut buf).unwrap();
            prop_assert_eq!(&buf[..n], &bytes[..n]);
        }
    }
}
