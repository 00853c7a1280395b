// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The subchannel-status word, command mode (reference §3).

use core::fmt;

use bitfield_struct::bitfield;
use zerocopy::big_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::block::{reserved_zero, stored_block};
use crate::error::DecodeError;
use crate::flags::flag_set;

flag_set! {
    /// Function control (SCSW bits 17-19): which functions are in progress or pending.
    ///
    /// ```
    /// use ccw_types::FunctionControl;
    /// let fc = FunctionControl::START | FunctionControl::HALT;
    /// assert_eq!((fc.bits(), fc.to_string()), (0x6, "start|halt".into()));
    /// ```
    pub struct FunctionControl: 3 bits {
        /// Start function.
        const START = 0x4, "start";
        /// Halt function.
        const HALT = 0x2, "halt";
        /// Clear function.
        const CLEAR = 0x1, "clear";
    }
}

flag_set! {
    /// Activity control (SCSW bits 20-26).
    ///
    /// ```
    /// use ccw_types::ActivityControl;
    /// let ac = ActivityControl::SUBCHANNEL_ACTIVE | ActivityControl::DEVICE_ACTIVE;
    /// assert_eq!(ac.to_string(), "sch-active|dev-active");
    /// ```
    pub struct ActivityControl: 7 bits {
        /// Resume pending.
        const RESUME_PENDING = 0x40, "resume-pend";
        /// Start pending.
        const START_PENDING = 0x20, "start-pend";
        /// Halt pending.
        const HALT_PENDING = 0x10, "halt-pend";
        /// Clear pending.
        const CLEAR_PENDING = 0x08, "clear-pend";
        /// Subchannel active.
        const SUBCHANNEL_ACTIVE = 0x04, "sch-active";
        /// Device active.
        const DEVICE_ACTIVE = 0x02, "dev-active";
        /// Suspended.
        const SUSPENDED = 0x01, "suspended";
    }
}

flag_set! {
    /// Status control (SCSW bits 27-31).
    ///
    /// ```
    /// use ccw_types::StatusControl;
    /// // Program check / unit check: primary + secondary + alert + pending (0x17).
    /// assert_eq!(StatusControl::from_bits(0x17).to_string(), "alert|primary|secondary|pending");
    /// ```
    pub struct StatusControl: 5 bits {
        /// Alert status.
        const ALERT = 0x10, "alert";
        /// Intermediate status.
        const INTERMEDIATE = 0x08, "intermediate";
        /// Primary status.
        const PRIMARY = 0x04, "primary";
        /// Secondary status.
        const SECONDARY = 0x02, "secondary";
        /// Status pending.
        const PENDING = 0x01, "pending";
    }
}

flag_set! {
    /// Device status (SCSW byte 8).
    ///
    /// ```
    /// use ccw_types::DeviceStatus;
    /// assert_eq!(DeviceStatus::from_bits(0x0C), DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END);
    /// assert_eq!(DeviceStatus::from_bits(0x0C).to_string(), "CE|DE");
    /// ```
    pub struct DeviceStatus: 8 bits {
        /// Attention.
        const ATTENTION = 0x80, "ATTN";
        /// Status modifier.
        const STATUS_MODIFIER = 0x40, "SM";
        /// Control-unit end.
        const CONTROL_UNIT_END = 0x20, "CUE";
        /// Busy.
        const BUSY = 0x10, "BUSY";
        /// Channel end.
        const CHANNEL_END = 0x08, "CE";
        /// Device end.
        const DEVICE_END = 0x04, "DE";
        /// Unit check.
        const UNIT_CHECK = 0x02, "UC";
        /// Unit exception.
        const UNIT_EXCEPTION = 0x01, "UX";
    }
}

flag_set! {
    /// Subchannel status (SCSW byte 9).
    ///
    /// ```
    /// use ccw_types::SubchannelStatus;
    /// let s = SubchannelStatus::PROGRAM_CHECK | SubchannelStatus::INCORRECT_LENGTH;
    /// assert_eq!((s.bits(), s.to_string()), (0x60, "IL|PGM".into()));
    /// ```
    pub struct SubchannelStatus: 8 bits {
        /// Program-controlled interruption.
        const PCI = 0x80, "PCI";
        /// Incorrect length.
        const INCORRECT_LENGTH = 0x40, "IL";
        /// Program check.
        const PROGRAM_CHECK = 0x20, "PGM";
        /// Protection check.
        const PROTECTION_CHECK = 0x10, "PROT";
        /// Channel-data check.
        const CHANNEL_DATA_CHECK = 0x08, "CDC";
        /// Channel-control check.
        const CHANNEL_CONTROL_CHECK = 0x04, "CCC";
        /// Interface-control check.
        const INTERFACE_CONTROL_CHECK = 0x02, "ICC";
        /// Chaining check.
        const CHAINING_CHECK = 0x01, "CHN";
    }
}

/// SCSW word 0, command mode (reference §3.1).
///
/// ```
/// use ccw_types::{FunctionControl, ScswControl};
/// // The SCSW vfio-ccw is given to start an I/O: function control start, word 0 = 0x00004000.
/// let c = ScswControl::new().with_fc(FunctionControl::START);
/// assert_eq!(c.into_bits().get(), 0x0000_4000);
/// ```
#[bitfield(u32, repr = U32, from = U32::new, into = U32::get, order = Msb)]
#[derive(PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct ScswControl {
    /// Storage key (copied from the ORB).
    #[bits(4)]
    pub key: u8,
    /// S: suspend control.
    pub suspend: bool,
    /// L: ESW format (1 = format 0 with subchannel logout).
    pub esw_format0: bool,
    /// Deferred condition code.
    #[bits(2)]
    pub deferred_cc: u8,
    /// F: format-1 CCWs.
    pub format1: bool,
    /// P: prefetch.
    pub prefetch: bool,
    /// I: initial-status interruption control.
    pub initial_status: bool,
    /// A: address-limit checking.
    pub address_limit: bool,
    /// U: suppress suspended interruption.
    pub suppress_suspended: bool,
    /// Z: zero condition code (initial status).
    pub zero_cc: bool,
    /// E: extended control (the ECW is valid).
    pub extended_control: bool,
    /// N: path not operational.
    pub path_not_operational: bool,
    /// Bit 16: reserved (Hercules: QDIO active). Stored as zero.
    pub reserved: bool,
    /// Function control.
    #[bits(3)]
    pub fc: FunctionControl,
    /// Activity control.
    #[bits(7)]
    pub ac: ActivityControl,
    /// Status control.
    #[bits(5)]
    pub sc: StatusControl,
}

/// The SCSW as stored (12 bytes).
///
/// ```
/// use ccw_types::{DeviceStatus, FunctionControl, Scsw, StatusControl};
/// // Reference §13.3: successful completion of a one-CCW program at 0x1000.
/// let scsw = Scsw::read_from(&[0x00, 0xC0, 0x40, 0x07, 0x00, 0x00, 0x10, 0x08, 0x0C, 0, 0, 0])?;
/// assert_eq!(scsw.ctrl.fc(), FunctionControl::START);
/// assert_eq!(scsw.ctrl.sc(), StatusControl::PRIMARY | StatusControl::SECONDARY | StatusControl::PENDING);
/// assert_eq!(scsw.device_status(), DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END);
/// assert_eq!(scsw.to_string(),
///     "SCSW fctl=start actl=- stctl=primary|secondary|pending dstat=CE|DE cstat=- cpa=0x00001008 count=0");
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Scsw {
    /// Word 0: flags, FC, AC, SC.
    pub ctrl: ScswControl,
    /// CCW address: the last CCW executed + 8 (for final status).
    pub cpa: U32,
    /// Device status.
    pub dstat: u8,
    /// Subchannel status.
    pub cstat: u8,
    /// Residual count.
    pub count: U16,
}

const _: () = assert!(size_of::<Scsw>() == 12);

stored_block!(Scsw, "SCSW", 12, validate);

impl Scsw {
    /// Device status as a set.
    pub fn device_status(&self) -> DeviceStatus {
        DeviceStatus::from_bits(self.dstat)
    }
    /// Subchannel status as a set.
    pub fn subchannel_status(&self) -> SubchannelStatus {
        SubchannelStatus::from_bits(self.cstat)
    }

    /// Validates the reserved bit (bit 16 must be zero).
    ///
    /// Nothing else in a command-mode SCSW is reserved: every combination of the other bits is
    /// something a channel subsystem can store (the validity rules of reference §3.3 say which
    /// fields *mean* something, not which bit patterns are allowed).
    pub fn validate(&self) -> Result<(), DecodeError> {
        reserved_zero("SCSW", "bit 16", self.ctrl.reserved() as u64)
    }

    /// The same 12 bytes read as a transport-mode SCSW. Only the caller knows which mode the
    /// subchannel runs in (the ORB's B bit); the bytes alone cannot tell.
    ///
    /// ```
    /// use ccw_types::Scsw;
    /// let scsw = Scsw::from_bytes([0x00, 0x10, 0x40, 0x07, 0x00, 0x02, 0x00, 0x00, 0x0C, 0, 0, 0]);
    /// let tm = scsw.to_transport();
    /// assert!(tm.ctrl.x());
    /// assert_eq!(tm.tcw.get(), 0x0002_0000);
    /// assert_eq!(tm.into_bytes(), scsw.into_bytes());
    /// ```
    pub fn to_transport(&self) -> TmScsw {
        TmScsw::from_bytes(self.into_bytes())
    }

    /// Whether status is pending and it is final for the start function (primary or secondary
    /// status without the subchannel or device still active): what ends an I/O for vfio-ccw.
    pub fn is_final(&self) -> bool {
        let ac = self.ctrl.ac();
        self.ctrl.sc().contains(StatusControl::PENDING)
            && !ac.intersects(ActivityControl::SUBCHANNEL_ACTIVE | ActivityControl::DEVICE_ACTIVE)
    }

    /// Whether the status was solicited (Linux's definition: `cc != 0 || SC != alert|pending`).
    pub fn is_solicited(&self) -> bool {
        self.ctrl.deferred_cc() != 0
            || self.ctrl.sc() != (StatusControl::ALERT | StatusControl::PENDING)
    }
}

impl fmt::Debug for Scsw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.ctrl;
        f.debug_struct("Scsw")
            .field("key", &c.key())
            .field("suspend", &c.suspend())
            .field("esw_format0", &c.esw_format0())
            .field("deferred_cc", &c.deferred_cc())
            .field("format1", &c.format1())
            .field("prefetch", &c.prefetch())
            .field("initial_status", &c.initial_status())
            .field("address_limit", &c.address_limit())
            .field("suppress_suspended", &c.suppress_suspended())
            .field("zero_cc", &c.zero_cc())
            .field("extended_control", &c.extended_control())
            .field("path_not_operational", &c.path_not_operational())
            .field("fc", &c.fc())
            .field("ac", &c.ac())
            .field("sc", &c.sc())
            .field("cpa", &format_args!("{:#010x}", self.cpa.get()))
            .field("dstat", &self.device_status())
            .field("cstat", &self.subchannel_status())
            .field("count", &self.count.get())
            .finish()
    }
}

impl fmt::Display for Scsw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.ctrl;
        write!(
            f,
            "SCSW fctl={} actl={} stctl={} dstat={} cstat={} cpa={:#010x} count={}",
            c.fc(),
            c.ac(),
            c.sc(),
            self.device_status(),
            self.subchannel_status(),
            self.cpa.get(),
            self.count.get()
        )?;
        if c.deferred_cc() != 0 {
            write!(f, " cc={}", c.deferred_cc())?;
        }
        let extra = [
            (c.esw_format0(), " L"),
            (c.zero_cc(), " Z"),
            (c.extended_control(), " E"),
            (c.path_not_operational(), " N"),
        ];
        for (set, s) in extra {
            if set {
                f.write_str(s)?;
            }
        }
        Ok(())
    }
}

/// SCSW word 0, transport mode (reference §3.5). Bit 11 is X here (A in command mode).
///
/// ```
/// use ccw_types::{FunctionControl, TmScswControl};
/// let c = TmScswControl::from_bits(zerocopy::big_endian::U32::new(0x0010_4007));
/// assert!(c.x());
/// assert_eq!(c.fc(), FunctionControl::START);
/// ```
#[bitfield(u32, repr = U32, from = U32::new, into = U32::get, order = Msb)]
#[derive(PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct TmScswControl {
    /// Storage key.
    #[bits(4)]
    pub key: u8,
    /// Bit 4: reserved.
    pub reserved0: bool,
    /// L: ESW format (1 = format 0 with subchannel logout).
    pub esw_format0: bool,
    /// Deferred condition code.
    #[bits(2)]
    pub deferred_cc: u8,
    /// FMT: IRB format.
    #[bits(3)]
    pub fmt: u8,
    /// X: IRB-format control / transport-mode indicator.
    pub x: bool,
    /// Q: interrogate complete.
    pub interrogate_complete: bool,
    /// Bit 13: reserved.
    pub reserved1: bool,
    /// E: extended control.
    pub extended_control: bool,
    /// N: path not operational.
    pub path_not_operational: bool,
    /// Bit 16: reserved.
    pub reserved2: bool,
    /// Function control.
    #[bits(3)]
    pub fc: FunctionControl,
    /// Activity control.
    #[bits(7)]
    pub ac: ActivityControl,
    /// Status control.
    #[bits(5)]
    pub sc: StatusControl,
}

/// The transport-mode SCSW as stored (12 bytes): TCW address instead of the CCW address,
/// FCX status and IFOB/SESQ instead of the residual count.
///
/// It occupies the same bytes as a command-mode [`Scsw`]; which one a subchannel stored is
/// known only from how the I/O was started, so the caller picks the type
/// ([`Scsw::to_transport`], [`TmScsw::to_command`]). ccw-rs does not execute transport-mode
/// programs; this type exists so such status can be shown and rejected precisely.
///
/// ```
/// use ccw_types::TmScsw;
/// let scsw = TmScsw::parse(&[0x00, 0x10, 0x40, 0x07, 0x00, 0x02, 0x00, 0x00, 0x0C, 0x00, 0x00, 0x00])?;
/// assert_eq!(scsw.to_string(),
///     "TM-SCSW fctl=start actl=- stctl=primary|secondary|pending dstat=CE|DE cstat=- tcw=0x00020000 fcxs=0x00 sesq=0x00 X");
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct TmScsw {
    /// Word 0: flags, FC, AC, SC.
    pub ctrl: TmScswControl,
    /// Address of the transport-control word.
    pub tcw: U32,
    /// Device status.
    pub dstat: u8,
    /// Subchannel status.
    pub cstat: u8,
    /// FCX status.
    pub fcx_status: u8,
    /// Bit 0: IFOB; bits 1-7: SESQ.
    pub ifob_sesq: u8,
}

const _: () = assert!(size_of::<TmScsw>() == 12);

stored_block!(TmScsw, "TM-SCSW", 12, validate);

impl TmScsw {
    /// Rejects the reserved bits 4, 13 and 16 of word 0.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let c = self.ctrl;
        reserved_zero(
            "TM-SCSW",
            "reserved bits 4/13/16",
            ((c.reserved0() as u64) << 2) | ((c.reserved1() as u64) << 1) | c.reserved2() as u64,
        )
    }
    /// The same bytes read as a command-mode SCSW.
    pub fn to_command(&self) -> Scsw {
        Scsw::from_bytes(self.into_bytes())
    }
    /// Device status as a set.
    pub fn device_status(&self) -> DeviceStatus {
        DeviceStatus::from_bits(self.dstat)
    }
    /// Subchannel status as a set.
    pub fn subchannel_status(&self) -> SubchannelStatus {
        SubchannelStatus::from_bits(self.cstat)
    }
    /// IFOB (byte 11 bit 0).
    pub fn ifob(&self) -> bool {
        self.ifob_sesq & 0x80 != 0
    }
    /// SESQ (byte 11 bits 1-7).
    pub fn sesq(&self) -> u8 {
        self.ifob_sesq & 0x7F
    }
}

impl fmt::Debug for TmScsw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.ctrl;
        f.debug_struct("TmScsw")
            .field("key", &c.key())
            .field("esw_format0", &c.esw_format0())
            .field("deferred_cc", &c.deferred_cc())
            .field("fmt", &c.fmt())
            .field("x", &c.x())
            .field("interrogate_complete", &c.interrogate_complete())
            .field("extended_control", &c.extended_control())
            .field("path_not_operational", &c.path_not_operational())
            .field("fc", &c.fc())
            .field("ac", &c.ac())
            .field("sc", &c.sc())
            .field("tcw", &format_args!("{:#010x}", self.tcw.get()))
            .field("dstat", &self.device_status())
            .field("cstat", &self.subchannel_status())
            .field("fcx_status", &format_args!("{:#04x}", self.fcx_status))
            .field("ifob", &self.ifob())
            .field("sesq", &format_args!("{:#04x}", self.sesq()))
            .finish()
    }
}

impl fmt::Display for TmScsw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.ctrl;
        write!(
            f,
            "TM-SCSW fctl={} actl={} stctl={} dstat={} cstat={} tcw={:#010x} fcxs={:#04x} sesq={:#04x}",
            c.fc(),
            c.ac(),
            c.sc(),
            self.device_status(),
            self.subchannel_status(),
            self.tcw.get(),
            self.fcx_status,
            self.sesq(),
        )?;
        if c.deferred_cc() != 0 {
            write!(f, " cc={}", c.deferred_cc())?;
        }
        if c.fmt() != 0 {
            write!(f, " fmt={}", c.fmt())?;
        }
        for (set, s) in [
            (c.esw_format0(), " L"),
            (c.x(), " X"),
            (c.interrogate_complete(), " Q"),
            (c.extended_control(), " E"),
            (c.path_not_operational(), " N"),
            (self.ifob(), " IFOB"),
        ] {
            if set {
                f.write_str(s)?;
            }
        }
        Ok(())
    }
}
