// SPDX-License-Identifier: Apache-2.0 OR MIT

//! What an I/O request is answered with: the condition code an instruction sets, the errno
//! vfio-ccw's regions answer with, and QEMU's table from the one to the other.
//!
//! Both backends and css-core speak this vocabulary; it is written here once.

use core::fmt;

/// The condition code an I/O instruction set (PSW bits 18-19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionCode {
    /// cc 0: the function was initiated (or the operation succeeded).
    Cc0,
    /// cc 1: status pending (start, halt, modify); nothing was done.
    Cc1,
    /// cc 2: busy or not applicable; nothing was done.
    Cc2,
    /// cc 3: not operational.
    Cc3,
}

impl ConditionCode {
    /// Every condition code, for exhaustive tests.
    pub const ALL: [ConditionCode; 4] = [
        ConditionCode::Cc0,
        ConditionCode::Cc1,
        ConditionCode::Cc2,
        ConditionCode::Cc3,
    ];

    /// The numeric condition code.
    pub const fn value(self) -> u8 {
        match self {
            ConditionCode::Cc0 => 0,
            ConditionCode::Cc1 => 1,
            ConditionCode::Cc2 => 2,
            ConditionCode::Cc3 => 3,
        }
    }
}

/// The errno a vfio-ccw request can fail with: the set the kernel's io and async regions
/// and its state machine answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Errno {
    /// EBUSY: a program is in flight or the subchannel is busy (cc 1 / cc 2).
    Busy,
    /// EAGAIN: a request is being processed: retry.
    Again,
    /// EIO: the subchannel is not open (or another I/O failure).
    Io,
    /// ENODEV: the device is not operational (cc 3, no path left).
    NoDevice,
    /// EACCES: cc 3 on the requested paths, but other paths remain.
    Access,
    /// EOPNOTSUPP: not supported (transport mode, halt/clear through the I/O region).
    NotSupported,
    /// EINVAL: the request itself is invalid.
    Invalid,
    /// EFAULT: guest memory could not be read.
    Fault,
    /// ENOMEM: a translation resource was exhausted.
    NoMemory,
}

/// How QEMU's vfio-ccw (`vfio_ccw_handle_request`) turns a request's errno into what the
/// guest sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuestAnswer {
    /// The instruction ends with this condition code.
    Cc(ConditionCode),
    /// cc 0, followed by an interruption with unit exception.
    UnitException,
    /// QEMU repeats the write (EAGAIN).
    Retry,
}

impl Errno {
    /// Every errno of the set, for exhaustive tests.
    pub const ALL: [Errno; 9] = [
        Errno::Busy,
        Errno::Again,
        Errno::Io,
        Errno::NoDevice,
        Errno::Access,
        Errno::NotSupported,
        Errno::Invalid,
        Errno::Fault,
        Errno::NoMemory,
    ];

    /// The Linux errno value (positive).
    pub const fn raw(self) -> i32 {
        match self {
            Errno::Busy => 16,
            Errno::Again => 11,
            Errno::Io => 5,
            Errno::NoDevice => 19,
            Errno::Access => 13,
            Errno::NotSupported => 95,
            Errno::Invalid => 22,
            Errno::Fault => 14,
            Errno::NoMemory => 12,
        }
    }

    /// The errno for a positive Linux errno value, if it is one vfio-ccw uses.
    pub const fn from_raw(raw: i32) -> Option<Errno> {
        Some(match raw {
            16 => Errno::Busy,
            11 => Errno::Again,
            5 => Errno::Io,
            19 => Errno::NoDevice,
            13 => Errno::Access,
            95 => Errno::NotSupported,
            22 => Errno::Invalid,
            14 => Errno::Fault,
            12 => Errno::NoMemory,
            _ => return None,
        })
    }

    /// QEMU's mapping to the guest: EBUSY -> cc 2, ENODEV/EACCES -> cc 3, EAGAIN -> retry,
    /// anything else -> unit exception.
    pub const fn guest_answer(self) -> GuestAnswer {
        match self {
            Errno::Busy => GuestAnswer::Cc(ConditionCode::Cc2),
            Errno::NoDevice | Errno::Access => GuestAnswer::Cc(ConditionCode::Cc3),
            Errno::Again => GuestAnswer::Retry,
            _ => GuestAnswer::UnitException,
        }
    }

    /// The errno a request fails with when its instruction set `cc` (vfio-ccw's
    /// `fsm_io_helper` for START, the same for HALT and CLEAR): cc 1/2 -> EBUSY,
    /// cc 3 -> ENODEV, and cc 0, which is no failure, -> EINVAL.
    pub const fn of_cc(cc: ConditionCode) -> Errno {
        match cc {
            ConditionCode::Cc0 => Errno::Invalid,
            ConditionCode::Cc1 | ConditionCode::Cc2 => Errno::Busy,
            ConditionCode::Cc3 => Errno::NoDevice,
        }
    }

    /// The name, as `<errno.h>` spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Errno::Busy => "EBUSY",
            Errno::Again => "EAGAIN",
            Errno::Io => "EIO",
            Errno::NoDevice => "ENODEV",
            Errno::Access => "EACCES",
            Errno::NotSupported => "EOPNOTSUPP",
            Errno::Invalid => "EINVAL",
            Errno::Fault => "EFAULT",
            Errno::NoMemory => "ENOMEM",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConditionCode::*;

    #[test]
    fn qemu_condition_codes() {
        assert_eq!(Errno::Busy.guest_answer(), GuestAnswer::Cc(Cc2));
        assert_eq!(Errno::NoDevice.guest_answer(), GuestAnswer::Cc(Cc3));
        assert_eq!(Errno::Access.guest_answer(), GuestAnswer::Cc(Cc3));
        assert_eq!(Errno::Again.guest_answer(), GuestAnswer::Retry);
        for e in [
            Errno::Io,
            Errno::NotSupported,
            Errno::Invalid,
            Errno::Fault,
            Errno::NoMemory,
        ] {
            assert_eq!(e.guest_answer(), GuestAnswer::UnitException);
        }
    }

    #[test]
    fn raw_values_round_trip_and_match_linux() {
        for e in Errno::ALL {
            assert_eq!(Errno::from_raw(e.raw()), Some(e));
        }
        // Linux's asm-generic/errno-base.h and errno.h.
        let linux = [
            ("EBUSY", 16),
            ("EAGAIN", 11),
            ("EIO", 5),
            ("ENODEV", 19),
            ("EACCES", 13),
            ("EOPNOTSUPP", 95),
            ("EINVAL", 22),
            ("EFAULT", 14),
            ("ENOMEM", 12),
        ];
        for (e, (name, raw)) in Errno::ALL.into_iter().zip(linux) {
            assert_eq!((e.name(), e.raw()), (name, raw));
        }
        assert_eq!(Errno::from_raw(0), None);
        assert_eq!(Errno::from_raw(1), None);
    }

    #[test]
    fn condition_code_errnos() {
        assert_eq!(
            ConditionCode::ALL.map(Errno::of_cc),
            [Errno::Invalid, Errno::Busy, Errno::Busy, Errno::NoDevice]
        );
        assert_eq!(ConditionCode::ALL.map(ConditionCode::value), [0, 1, 2, 3]);
    }
}
