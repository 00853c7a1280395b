// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `Vcss::ipl`'s refusals, each typed (the loads themselves run against mock-backend's 3390 in
//! its `tests/vcss_devices.rs`).

use ccw_types::DeviceStatus;
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::{Mode, get, memory, one_device, sid};
use crate::{ConditionCode, IplError};

#[test]
fn ipl_places_the_implied_ccw_and_names_a_bad_ending() {
    // The test device rejects Read IPL (0x02): unit check after CE + DE.
    let (mut css, seen) = one_device(Mode::Run);
    let mem = memory();
    assert_eq!(
        css.ipl(&mem, 0),
        Err(IplError::Status {
            sch: 0,
            dstat: 0x0E,
            cstat: 0,
            cpa: 8,
        })
    );
    assert_eq!(get(&mem, 0, 8), [0x02, 0, 0, 0, 0x60, 0, 0, 0x18]);
    // The status was taken; the subchannel stays enabled; nothing was announced.
    assert!(css.subchannel(0).unwrap().schib.pmcw.flags.enabled());
    assert!(!css.subchannel(0).unwrap().status_pending());
    assert!(!css.interruption_pending(u64::MAX));
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn ipl_refusals() {
    let mem = memory();
    let (mut css, _) = one_device(Mode::Run);
    assert_eq!(css.ipl(&mem, 1), Err(IplError::NotProvided(1)));

    // Status pending: the start gets cc 1.
    css.subchannel_mut(0)
        .unwrap()
        .schib
        .pmcw
        .flags
        .set_enabled(true);
    assert!(css.unsolicited(0, DeviceStatus::ATTENTION));
    assert_eq!(css.ipl(&mem, 0), Err(IplError::Busy(0, 1)));
    assert_eq!(css.tsch(&mem, sid(0), 0x2000), Ok(ConditionCode::Cc0));

    // No path available.
    css.subchannel_mut(0).unwrap().schib.pmcw.pam = 0;
    assert_eq!(css.ipl(&mem, 0), Err(IplError::NotOperational(0)));
    assert!(!css.subchannel(0).unwrap().status_pending());

    // A device that runs programs asynchronously (passthrough), or suspends.
    let (mut css, _) = one_device(Mode::Async);
    assert_eq!(css.ipl(&mem, 0), Err(IplError::Asynchronous(0)));
    let (mut css, _) = one_device(Mode::Suspend);
    assert_eq!(css.ipl(&mem, 0), Err(IplError::Suspended(0)));

    // Absolute 0 is not guest storage.
    let high = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0x1_0000), 0x1_0000)]).unwrap();
    let (mut css, _) = one_device(Mode::Run);
    assert_eq!(css.ipl(&high, 0), Err(IplError::Storage(0)));
}

fn scsw(dstat: u8, cstat: u8, cpa: u32) -> ccw_types::Scsw {
    let mut b = [0u8; 12];
    b[3] = 0x07;
    b[4..8].copy_from_slice(&cpa.to_be_bytes());
    b[8] = dstat;
    b[9] = cstat;
    ccw_types::Scsw::read_from(&b).unwrap()
}

/// The firmware method's decisions over guest memory alone (the loads themselves run
/// against mock-backend's 3390 and, in the Hercules lane, a 3390 behind vfio-ccw).
#[test]
fn prefetch_ipl_walks_pieces_and_refuses_bad_programs() {
    use crate::{IplStep, PrefetchIpl};
    let ok = scsw(0x0C, 0, 0);
    let mem = memory();
    let mut ipl = PrefetchIpl::new(3);
    assert_eq!(ipl.begin(&mem), Ok(IplStep::Start { cpa: 0 }));
    assert_eq!(get(&mem, 0, 8), [0x02, 0, 0, 0, 0, 0, 0, 0x18]);
    let orb = PrefetchIpl::orb(0x08);
    assert!(orb.prefetch && orb.format == ccw_types::CcwFormat::Format0 && orb.lpm == 0xFF);
    // IPL1: PSW, READ 0x50 bytes to 0x2000 (CC), TIC 0x2000.
    super::put(
        &mem,
        0,
        &[
            0, 8, 0, 0, 0x80, 1, 0, 0, 0x06, 0, 0x20, 0, 0x60, 0, 0, 0x50, 0x08, 0, 0x20, 0, 0, 0,
            0, 0,
        ],
    );
    assert_eq!(ipl.ended(&mem, &ok), Ok(IplStep::Start { cpa: 8 }));
    assert_eq!(get(&mem, 0x18, 8), [0x08, 0, 0, 0x10, 0, 0, 0, 0]);
    assert_eq!(get(&mem, 0x20, 8), [0x06, 0, 0x20, 0, 0x20, 0, 0, 0x50]);
    assert_eq!(get(&mem, 0x38, 5), [0, 0, 0, 0, 2]);
    // IPL2: seek, search, TIC back, READ (CC) to 0x3000, TIC 0x3000: one piece.
    super::put(
        &mem,
        0x2000,
        &[
            0x07, 0, 0x20, 0x40, 0x40, 0, 0, 6, // seek
            0x31, 0, 0x20, 0x48, 0x40, 0, 0, 5, // search
            0x08, 0, 0x20, 0x08, 0, 0, 0, 0, // TIC back
            0x06, 0, 0x30, 0, 0x60, 0, 0, 0x50, // READ, chained
            0x08, 0, 0x30, 0, 0, 0, 0, 0, // TIC to what it read
        ],
    );
    assert_eq!(ipl.ended(&mem, &ok), Ok(IplStep::Start { cpa: 0x2000 }));
    assert_eq!(
        get(&mem, 0x2018 + 4, 1),
        [0x20],
        "the READ's chaining cleared"
    );
    // The piece it read: one unchained READ ends the load.
    super::put(&mem, 0x3000, &[0x06, 0, 0x40, 0, 0x20, 0, 0, 0x10]);
    assert_eq!(ipl.ended(&mem, &ok), Ok(IplStep::Start { cpa: 0x3000 }));
    assert_eq!(
        ipl.ended(&mem, &ok),
        Ok(IplStep::Loaded {
            psw: [0, 8, 0, 0, 0x80, 1, 0, 0]
        })
    );

    // An ending with unit check is the IPL's failure.
    let mut ipl = PrefetchIpl::new(3);
    ipl.begin(&mem).unwrap();
    assert_eq!(
        ipl.ended(&mem, &scsw(0x0E, 0, 8)),
        Err(IplError::Status {
            sch: 3,
            dstat: 0x0E,
            cstat: 0,
            cpa: 8
        })
    );
    // A TIC that is no search loop; a chain that never ends.
    let mut ipl = PrefetchIpl::new(3);
    ipl.begin(&mem).unwrap();
    super::put(
        &mem,
        0,
        &[
            0, 0, 0, 0, 0, 0, 0, 0, 0x06, 0, 0x40, 0, 0x60, 0, 0, 8, 0x08, 0, 0x40, 0, 0, 0, 0, 0,
        ],
    );
    assert_eq!(ipl.ended(&mem, &ok), Ok(IplStep::Start { cpa: 8 }));
    super::put(
        &mem,
        0x4000,
        &[0x03, 0, 0, 0, 0x40, 0, 0, 1, 0x08, 0, 0x50, 0, 0, 0, 0, 0],
    );
    assert!(matches!(
        ipl.ended(&mem, &ok),
        Err(IplError::Program { why, .. }) if why.contains("TIC")
    ));
    let mut ipl = PrefetchIpl::new(3);
    ipl.begin(&mem).unwrap();
    super::put(
        &mem,
        0,
        &[
            0, 0, 0, 0, 0, 0, 0, 0, 0x06, 0, 0x40, 0, 0x60, 0, 0, 8, 0x08, 0, 0x40, 0, 0, 0, 0, 0,
        ],
    );
    ipl.ended(&mem, &ok).unwrap();
    super::put(&mem, 0x4000, &[0x03, 0, 0, 0, 0x40, 0, 0, 1].repeat(300));
    assert!(matches!(
        ipl.ended(&mem, &ok),
        Err(IplError::Program { why, .. }) if why.contains("256 CCWs")
    ));
    // No start outstanding.
    assert!(matches!(
        ipl.ended(&mem, &ok),
        Err(IplError::Program { .. })
    ));
    assert!(matches!(ipl.begin(&mem), Err(IplError::Program { .. })));
}
