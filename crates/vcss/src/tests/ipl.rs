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
