// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The interruption-response block: SCSW + ESW + ECW + EMW, 96 bytes (reference §4).

use core::fmt;

use bitfield_struct::bitfield;
use zerocopy::big_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::block::{reserved_zero, stored_block, write_names};
use crate::emw::Emw;
use crate::error::DecodeError;
use crate::scsw::Scsw;
use crate::sense::BasicSense;

/// The extended-report word (ESW word 1, reference §4.4).
///
/// ```
/// use ccw_types::Erw;
/// // Architected encoding of "32 bytes of concurrent sense": S=1, SCNT=32 in bits 10-15.
/// let erw = Erw::from_bytes([0x01, 0x20, 0x00, 0x00]);
/// assert!(erw.concurrent_sense());
/// assert_eq!(erw.scnt(), 32);
/// assert_eq!(erw.to_string(), "ERW S scnt=32");
/// ```
#[bitfield(u32, repr = U32, from = U32::new, into = U32::get, order = Msb)]
#[derive(PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Erw {
    /// Reserved.
    pub reserved0: bool,
    /// L: request logging only.
    pub logging_only: bool,
    /// E: extended-logout pending.
    pub extended_logout: bool,
    /// A: authorization check.
    pub authorization_check: bool,
    /// P: path-verification required.
    pub path_verification: bool,
    /// T: channel-path timeout.
    pub channel_path_timeout: bool,
    /// F: failing-storage address valid.
    pub failing_address_valid: bool,
    /// S: concurrent sense (the ECW holds `scnt` bytes of sense data).
    pub concurrent_sense: bool,
    /// C: secondary-CCW address valid.
    pub secondary_ccw_valid: bool,
    /// R: failing-storage-address format (1 = 64-bit).
    pub failing_address_64: bool,
    /// Sense count.
    #[bits(6)]
    pub scnt: u8,
    /// Reserved.
    #[bits(16)]
    pub reserved1: u16,
}

stored_block!(Erw, "ERW", 4, validate);

impl Erw {
    /// Rejects the reserved bits 0 and 16-31.
    ///
    /// QEMU's emulated channel subsystem stores the sense count in bits 16-23 (reference §4.4
    /// DISAGREE), so the ERW of a real QEMU device fails this check; see
    /// [`Erw::sense_count_lenient`].
    pub fn validate(&self) -> Result<(), DecodeError> {
        reserved_zero("ERW", "bit 0", self.reserved0() as u64)?;
        reserved_zero("ERW", "bits 16-31", self.reserved1() as u64)
    }

    /// Whether this ERW is QEMU's misencoded concurrent-sense report: S set, the architected
    /// SCNT (bits 10-15) zero, and the count in bits 18-23 instead (`count << 8`, as QEMU's
    /// `css.c` builds it), with every other reserved bit zero.
    ///
    /// ```
    /// use ccw_types::Erw;
    /// // What the real (QEMU) device stored for 32 bytes of concurrent sense.
    /// let qemu = Erw::from_bytes([0x01, 0x00, 0x20, 0x00]);
    /// assert!(qemu.is_qemu_sense_count());
    /// assert!(!Erw::from_bytes([0x01, 0x20, 0x00, 0x00]).is_qemu_sense_count());
    /// ```
    pub fn is_qemu_sense_count(&self) -> bool {
        let r = self.reserved1();
        self.concurrent_sense() && self.scnt() == 0 && r & 0xC0FF == 0 && r != 0
    }

    /// The concurrent-sense byte count, per the architecture (SCNT, bits 10-15) and, when that
    /// is zero, also recognizing QEMU's encoding of the same count in bits 18-23
    /// ([`Erw::is_qemu_sense_count`]). Use this when talking to a device that may be emulated
    /// by QEMU; [`Erw::scnt`] is the architected field alone.
    ///
    /// ```
    /// use ccw_types::Erw;
    /// let qemu = Erw::from_bytes([0x01, 0x00, 0x20, 0x00]);
    /// assert_eq!(qemu.scnt(), 0); // per the architecture: no sense count
    /// assert_eq!(qemu.sense_count_lenient(), 32); // what QEMU meant
    /// assert_eq!(Erw::from_bytes([0x01, 0x18, 0x00, 0x00]).sense_count_lenient(), 24);
    /// ```
    pub fn sense_count_lenient(&self) -> u8 {
        if self.is_qemu_sense_count() {
            ((self.reserved1() >> 8) & 0x3F) as u8
        } else {
            self.scnt()
        }
    }
}

impl fmt::Display for Erw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ERW ")?;
        write_names(
            f,
            &[
                (self.logging_only(), "L"),
                (self.extended_logout(), "E"),
                (self.authorization_check(), "A"),
                (self.path_verification(), "P"),
                (self.channel_path_timeout(), "T"),
                (self.failing_address_valid(), "F"),
                (self.concurrent_sense(), "S"),
                (self.secondary_ccw_valid(), "C"),
                (self.failing_address_64(), "R"),
            ],
        )?;
        if self.concurrent_sense() || self.scnt() != 0 {
            write!(f, " scnt={}", self.scnt())?;
        }
        if self.is_qemu_sense_count() {
            write!(f, " (qemu scnt={})", self.sense_count_lenient())?;
        } else if self.reserved0() || self.reserved1() != 0 {
            write!(f, " reserved={:#x}", self.into_bits().get() & 0x8000_FFFF)?;
        }
        Ok(())
    }
}

/// The subchannel logout: word 0 of a format-0 ESW (SCSW L = 1), reference §4.3.
///
/// ```
/// use ccw_types::SubchannelLogout;
/// // What QEMU stores for a channel-data check: CCW check, LPUM 0x80, LPUM valid.
/// let log = SubchannelLogout::from_bytes([0x04, 0x80, 0x40, 0x00]);
/// assert!(log.ccw_check() && log.lpum_valid());
/// assert_eq!(log.lpum(), 0x80);
/// assert_eq!(log.to_string(), "logout esf=CCW lpum=0x80 fvf=LPUM sa=0 tc=0 sc=0 flags=-");
/// ```
#[bitfield(u32, repr = U32, from = U32::new, into = U32::get, order = Msb)]
#[derive(PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct SubchannelLogout {
    /// Bit 0: reserved.
    pub reserved: bool,
    /// ESF: key check.
    pub key_check: bool,
    /// ESF: measurement-block program check.
    pub mb_program_check: bool,
    /// ESF: measurement-block data check.
    pub mb_data_check: bool,
    /// ESF: measurement-block protection check.
    pub mb_protection_check: bool,
    /// ESF: CCW check.
    pub ccw_check: bool,
    /// ESF: IDAW check.
    pub idaw_check: bool,
    /// ESF bit 7 (unnamed in the sources).
    pub esf_bit7: bool,
    /// Last-path-used mask.
    #[bits(8)]
    pub lpum: u8,
    /// R: ancillary report.
    pub ancillary: bool,
    /// FVF: LPUM valid.
    pub lpum_valid: bool,
    /// FVF: termination code valid.
    pub tc_valid: bool,
    /// FVF: sequence code valid.
    pub sc_valid: bool,
    /// FVF: device status valid.
    pub dstat_valid: bool,
    /// FVF: CCW address valid.
    pub ccw_address_valid: bool,
    /// SA: storage-access code (0 unknown, 1 read, 2 write, 3 read backward).
    #[bits(2)]
    pub storage_access: u8,
    /// TC: termination code (0 halt signal, 1 stop/stack/normal, 2 clear signal, 3 reserved).
    #[bits(2)]
    pub termination_code: u8,
    /// D: device-status check.
    pub device_status_check: bool,
    /// E: secondary error.
    pub secondary_error: bool,
    /// A: I/O-error alert.
    pub io_error_alert: bool,
    /// SC: sequence code.
    #[bits(3)]
    pub sequence_code: u8,
}

stored_block!(SubchannelLogout, "subchannel logout", 4, validate);

impl SubchannelLogout {
    /// Rejects reserved bit 0 and the reserved termination code 3.
    pub fn validate(&self) -> Result<(), DecodeError> {
        reserved_zero("subchannel logout", "bit 0", self.reserved() as u64)?;
        if self.termination_code() == 3 {
            return Err(DecodeError::new(
                "subchannel logout",
                "termination code",
                crate::DecodeReason::Invalid { value: 3 },
            ));
        }
        Ok(())
    }
}

impl fmt::Display for SubchannelLogout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("logout esf=")?;
        write_names(
            f,
            &[
                (self.key_check(), "KEY"),
                (self.mb_program_check(), "MBP"),
                (self.mb_data_check(), "MBD"),
                (self.mb_protection_check(), "MBK"),
                (self.ccw_check(), "CCW"),
                (self.idaw_check(), "IDAW"),
                (self.esf_bit7(), "ESF7"),
            ],
        )?;
        write!(f, " lpum={:#04x} fvf=", self.lpum())?;
        write_names(
            f,
            &[
                (self.lpum_valid(), "LPUM"),
                (self.tc_valid(), "TC"),
                (self.sc_valid(), "SC"),
                (self.dstat_valid(), "DSTAT"),
                (self.ccw_address_valid(), "CCWADDR"),
            ],
        )?;
        write!(
            f,
            " sa={} tc={} sc={} flags=",
            self.storage_access(),
            self.termination_code(),
            self.sequence_code()
        )?;
        write_names(
            f,
            &[
                (self.ancillary(), "R"),
                (self.device_status_check(), "D"),
                (self.secondary_error(), "E"),
                (self.io_error_alert(), "A"),
            ],
        )
    }
}

/// Which layout an ESW has, chosen by SCSW bit L ([`Scsw::esw_format`]).
///
/// ```
/// use ccw_types::{EswFormat, Scsw};
/// let scsw = Scsw::from_bytes([0x04, 0x82, 0x40, 0x17, 0, 0, 0, 0, 0x02, 0, 0, 0]);
/// assert_eq!(scsw.esw_format(), EswFormat::Format0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EswFormat {
    /// Format 0 (L = 1): subchannel logout, ERW, failing-storage address, secondary CCW.
    Format0,
    /// Formats 1-3 (L = 0): LPUM in byte 1 (format 2: DCTI in bytes 2-3), ERW, zero words.
    /// The rule choosing among 1, 2 and 3 is not in the accessible sources (reference §4.2).
    Format1To3,
}

impl Scsw {
    /// The format of the ESW that follows this SCSW in an IRB (bit L).
    pub fn esw_format(&self) -> EswFormat {
        if self.ctrl.esw_format0() {
            EswFormat::Format0
        } else {
            EswFormat::Format1To3
        }
    }
}

/// The extended-status word (20 bytes). Word 0 is the subchannel logout when SCSW L = 1
/// (format 0), else byte 1 is the last-path-used mask (formats 1-3).
///
/// ```
/// use ccw_types::{Esw, EswFormat};
/// // The real device's ESW after an unknown command (s390x-guest.md).
/// let esw = Esw::read_from(&[0x00, 0x80, 0x00, 0x00, 0x01, 0x00, 0x20, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])?;
/// assert_eq!(esw.logout().lpum(), 0x80);
/// assert!(esw.erw.concurrent_sense());
/// assert_eq!(esw.erw.sense_count_lenient(), 32);
/// assert!(esw.validate(EswFormat::Format0).is_err()); // QEMU's ERW misencoding
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Esw {
    /// Word 0: subchannel logout (format 0) or LPUM in byte 1 (formats 1-3).
    pub word0: U32,
    /// Extended-report word.
    pub erw: Erw,
    /// Failing-storage address (format 0, valid when ERW F).
    pub failing_address: U64,
    /// Secondary CCW address (format 0, valid when ERW C).
    pub secondary_ccw: U32,
}

stored_block!(Esw, "ESW", 20);

impl Esw {
    /// The last-path-used mask: byte 1 of word 0 in every format (format 0 keeps it in the
    /// subchannel logout at the same place).
    pub fn lpum(&self) -> u8 {
        (self.word0.get() >> 16) as u8
    }

    /// Word 0 read as the subchannel logout (meaningful for [`EswFormat::Format0`]).
    pub fn logout(&self) -> SubchannelLogout {
        SubchannelLogout::from_bits(self.word0)
    }

    /// Bytes 2-3 of word 0: the device-connect-time interval of a format-2 ESW.
    pub fn dcti(&self) -> u16 {
        self.word0.get() as u16
    }

    /// Checks the reserved parts of an ESW of `format`: the ERW's reserved bits, then for
    /// format 0 the logout's, and for formats 1-3 byte 0 and words 2-4, which must be zero.
    pub fn validate(&self, format: EswFormat) -> Result<(), DecodeError> {
        self.erw.validate()?;
        match format {
            EswFormat::Format0 => self.logout().validate(),
            EswFormat::Format1To3 => {
                reserved_zero("ESW", "word 0 byte 0", (self.word0.get() >> 24) as u64)?;
                reserved_zero("ESW", "failing address", self.failing_address.get())?;
                reserved_zero("ESW", "word 4", self.secondary_ccw.get() as u64)
            }
        }
    }

    /// Prints the ESW as a person reads it, in the layout of `format`.
    ///
    /// ```
    /// use ccw_types::{Esw, EswFormat};
    /// let esw = Esw::from_bytes([0x00, 0x80, 0, 0, 0x01, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    /// assert_eq!(esw.display(EswFormat::Format1To3).to_string(), "ESW lpum=0x80 ERW S scnt=32");
    /// ```
    pub fn display(&self, format: EswFormat) -> impl fmt::Display + '_ {
        EswDisplay { esw: self, format }
    }
}

struct EswDisplay<'a> {
    esw: &'a Esw,
    format: EswFormat,
}

impl fmt::Display for EswDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.esw;
        match self.format {
            EswFormat::Format0 => {
                write!(f, "ESW fmt-0 {} {}", e.logout(), e.erw)?;
                if e.erw.failing_address_valid() {
                    write!(f, " faddr={:#x}", e.failing_address.get())?;
                }
                if e.erw.secondary_ccw_valid() {
                    write!(f, " sccw={:#010x}", e.secondary_ccw.get())?;
                }
                Ok(())
            }
            EswFormat::Format1To3 => {
                write!(f, "ESW lpum={:#04x}", e.lpum())?;
                if e.dcti() != 0 {
                    write!(f, " dcti={}", e.dcti())?;
                }
                write!(f, " {}", e.erw)
            }
        }
    }
}

/// Prints the ESW without knowing its format: word 0 raw, then the ERW. Use
/// [`Esw::display`] with the SCSW's [`Scsw::esw_format`] for a decoded word 0.
impl fmt::Display for Esw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ESW word0={:#010x} {}", self.word0.get(), self.erw)
    }
}

impl fmt::Debug for Esw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Esw")
            .field("word0", &format_args!("{:#010x}", self.word0.get()))
            .field("erw", &self.erw)
            .field(
                "failing_address",
                &format_args!("{:#x}", self.failing_address.get()),
            )
            .field(
                "secondary_ccw",
                &format_args!("{:#010x}", self.secondary_ccw.get()),
            )
            .finish()
    }
}

/// The IRB as stored by TEST SUBCHANNEL (96 bytes; vfio-ccw's `irb_area`).
///
/// `read_from` accepts 64 bytes (what TSCH stores without an EMW) or 96; `parse` also
/// validates. ECW and EMW stay plain bytes: the ECW holds concurrent sense when ERW S is set
/// ([`Irb::sense`]), model-dependent data otherwise; [`Irb::measurement_word`] decodes the EMW.
///
/// ```
/// use ccw_types::{DeviceStatus, Irb};
/// // The unknown-command answer of the real device (s390x-guest.md): unit check with
/// // concurrent sense, command reject.
/// let mut bytes = [0u8; 96];
/// bytes[..12].copy_from_slice(&[0x04, 0x82, 0x40, 0x17, 0, 0, 0, 0, 0x02, 0, 0, 0]);
/// bytes[12..20].copy_from_slice(&[0x00, 0x80, 0x00, 0x00, 0x01, 0x00, 0x20, 0x00]);
/// bytes[32] = 0x80;
/// let irb = Irb::read_from(&bytes)?;
/// assert_eq!(irb.scsw.device_status(), DeviceStatus::UNIT_CHECK);
/// assert!(irb.scsw.ctrl.esw_format0() && irb.scsw.ctrl.extended_control());
/// assert_eq!(irb.ecw[0], 0x80);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Irb {
    /// Subchannel-status word.
    pub scsw: Scsw,
    /// Extended-status word.
    pub esw: Esw,
    /// Extended-control word (concurrent sense when ERW S).
    pub ecw: [u8; 32],
    /// Extended-measurement word.
    pub emw: [u8; 32],
}

const _: () = assert!(
    size_of::<Erw>() == 4
        && size_of::<SubchannelLogout>() == 4
        && size_of::<Esw>() == 20
        && size_of::<Emw>() == 32
        && size_of::<Irb>() == 96
);

impl Default for Irb {
    fn default() -> Self {
        zerocopy::FromZeros::new_zeroed()
    }
}

impl Irb {
    /// Size in bytes.
    pub const LEN: usize = 96;
    /// What TEST SUBCHANNEL stores when no EMW is stored (and Linux's `struct irb`).
    pub const SHORT_LEN: usize = 64;

    /// Reads an IRB from 64 (no EMW; the rest is zero) or 96 bytes.
    pub fn read_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < Self::SHORT_LEN {
            return Err(DecodeError::too_short("IRB", Self::SHORT_LEN, bytes.len()));
        }
        let mut buf = [0u8; 96];
        let n = bytes.len().min(Self::LEN);
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(zerocopy::transmute!(buf))
    }
    /// The IRB stored in `bytes`.
    pub fn from_bytes(bytes: [u8; 96]) -> Self {
        zerocopy::transmute!(bytes)
    }
    /// The 96 bytes as stored.
    pub fn into_bytes(self) -> [u8; 96] {
        zerocopy::transmute!(self)
    }

    /// The validated level: reads 64 or 96 bytes like [`Irb::read_from`], then rejects
    /// reserved bits in the SCSW, the ESW (in the format SCSW L selects) and the EMW.
    ///
    /// Strict per the architecture: the IRB a QEMU device stores for concurrent sense fails
    /// here on the ERW (reference §4.4 DISAGREE). Read such IRBs with [`Irb::read_from`] and
    /// [`Irb::concurrent_sense_lenient`].
    ///
    /// ```
    /// use ccw_types::Irb;
    /// let mut bytes = [0u8; 96];
    /// bytes[..16].copy_from_slice(&[0x00, 0xC0, 0x40, 0x07, 0, 0, 0x10, 0x08, 0x0C, 0, 0, 0, 0x00, 0x80, 0, 0]);
    /// let irb = Irb::parse(&bytes)?;
    /// assert_eq!(irb.esw.lpum(), 0x80);
    /// bytes[8 + 12] = 1; // a non-zero word 2 in a format-1 ESW
    /// let err = Irb::parse(&bytes).unwrap_err();
    /// assert_eq!((err.block, err.field), ("ESW", "failing address"));
    /// # Ok::<(), ccw_types::DecodeError>(())
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let irb = Self::read_from(bytes)?;
        irb.validate()?;
        Ok(irb)
    }

    /// See [`Irb::parse`].
    pub fn validate(&self) -> Result<(), DecodeError> {
        self.scsw.validate()?;
        self.esw.validate(self.scsw.esw_format())?;
        self.measurement_word().validate()
    }

    /// The EMW decoded (bytes 64-95).
    pub fn measurement_word(&self) -> Emw {
        Emw::from_bytes(self.emw)
    }

    /// The concurrent-sense bytes, counting like [`Erw::sense_count_lenient`] (so a QEMU
    /// device's sense is found too).
    pub fn concurrent_sense_lenient(&self) -> Option<&[u8]> {
        let erw = self.esw.erw;
        if erw.concurrent_sense() {
            let n = usize::from(erw.sense_count_lenient()).min(self.ecw.len());
            Some(&self.ecw[..n])
        } else {
            None
        }
    }

    /// The concurrent sense as basic sense data (bytes 0-2 decoded), counted leniently.
    pub fn sense(&self) -> Option<BasicSense> {
        self.concurrent_sense_lenient()
            .and_then(|s| BasicSense::parse(s).ok())
    }

    /// The concurrent-sense bytes, when the ERW says they are present.
    pub fn concurrent_sense(&self) -> Option<&[u8]> {
        let erw = self.esw.erw;
        if erw.concurrent_sense() {
            let n = usize::from(erw.scnt()).min(self.ecw.len());
            Some(&self.ecw[..n])
        } else {
            None
        }
    }
}

impl fmt::Debug for Irb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Irb")
            .field("scsw", &self.scsw)
            .field("esw", &self.esw)
            .field("ecw", &self.ecw)
            .field("emw", &self.emw)
            .finish()
    }
}

/// `IRB <SCSW> | <ESW> [| sense=<first bytes> (<byte-0 flags>)] [| <EMW>]`.
impl fmt::Display for Irb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IRB {} | {}",
            self.scsw,
            self.esw.display(self.scsw.esw_format())
        )?;
        if let Some(sense) = self.sense() {
            write!(f, " | sense={sense}")?;
        }
        if self.emw != [0; 32] {
            write!(f, " | {}", self.measurement_word())?;
        }
        Ok(())
    }
}
