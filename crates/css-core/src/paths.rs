// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The channel paths of one subchannel: the SCHIB css-core last stored and the path masks
//! derived from it, as pure values. [`crate::core::Core`] owns one [`Paths`] per subchannel
//! behind its lock and is its only writer; nothing here locks or talks to a backend.
//!
//! The rules are Linux's (`vfio_ccw_chp_event`, `ccw_device_start`, `sch_event`):
//! - a SCHIB stored for a subchannel report sets the operational-path mask to the available
//!   and operational paths (`opm = pam & pom`) and the logical-path mask to all of them;
//! - only the operator's vary changes `opm`; a path that goes away (channel report, ERC 6/7)
//!   keeps its masks, so the matching online report (ERC 2/4) makes it usable again;
//! - a start that ends with cc 3 removes the paths it tried from `lpm`.
//!
//! So `lpm` is always a subset of `opm` (the unit tests check every rule keeps it).

use ccw_types::{Crw, Schib, crw};

/// A channel-path event (Linux `chp_event`), from a channel report or an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathEvent {
    /// The operator varied the path off (no report is queued).
    VaryOff,
    /// The operator varied the path on.
    VaryOn,
    /// The path went away (CRW RSC 4, ERC 6/7); a CRW is queued to each affected subchannel.
    Offline,
    /// The path came (back) (CRW RSC 4, ERC 2/4); a CRW is queued to each affected subchannel.
    Online,
}

impl PathEvent {
    /// The event a channel-path report with error-recovery code `erc` stands for, if any.
    pub(crate) fn of_erc(erc: u8) -> Option<Self> {
        match erc {
            crw::erc::INIT | crw::erc::IPI => Some(Self::Online),
            crw::erc::PERRN | crw::erc::PERRI => Some(Self::Offline),
            _ => None,
        }
    }

    /// The channel report forwarded to each subchannel using `chpid` (vfio-ccw's CRW
    /// region): none for the operator's vary.
    pub(crate) fn report(self, chpid: u8) -> Option<Crw> {
        let erc = match self {
            Self::Offline => crw::erc::PERRN,
            Self::Online => crw::erc::INIT,
            Self::VaryOff | Self::VaryOn => return None,
        };
        Some(Crw::report(crw::rsc::CHANNEL_PATH, erc, u16::from(chpid)))
    }

    /// Whether the event takes the path away from a program that is using it.
    pub(crate) fn ends_use(self) -> bool {
        matches!(self, Self::VaryOff | Self::Offline)
    }
}

/// One subchannel's SCHIB and path masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paths {
    schib: Schib,
    /// Logical-path mask css-core uses for ORBs with LPM 0 (vfio-ccw's `sch->lpm`).
    lpm: u8,
    /// Operational-path mask (vfio-ccw's `sch->opm`).
    opm: u8,
}

impl Paths {
    /// The paths of a freshly probed subchannel.
    pub(crate) fn new(schib: Schib) -> Self {
        let mut p = Self {
            schib,
            lpm: 0,
            opm: 0,
        };
        p.refresh(schib);
        p
    }

    /// A subchannel report stored `schib`: the masks start anew from it.
    pub(crate) fn refresh(&mut self, schib: Schib) {
        let pmcw = &schib.pmcw;
        self.opm = pmcw.pam & pmcw.pom;
        self.lpm = self.opm;
        self.schib = schib;
    }

    /// The owner stored `schib` (STORE SUBCHANNEL): the masks css-core keeps stay.
    pub(crate) fn store(&mut self, schib: Schib) {
        self.schib = schib;
    }

    /// Whether the device number is valid in the stored SCHIB.
    pub(crate) fn device_valid(&self) -> bool {
        self.schib.pmcw.flags.dnv()
    }

    /// The logical-path mask.
    pub(crate) fn lpm(&self) -> u8 {
        self.lpm
    }

    /// The operational-path mask.
    pub(crate) fn opm(&self) -> u8 {
        self.opm
    }

    /// The stored SCHIB with the current logical-path mask in its `lpm`.
    pub(crate) fn schib(&self) -> Schib {
        let mut s = self.schib;
        s.pmcw.lpm = self.lpm;
        s
    }

    /// The installed paths (PIM bits) that go through channel path `chpid`.
    pub(crate) fn mask_of(&self, chpid: u8) -> u8 {
        let pmcw = &self.schib.pmcw;
        pmcw.chpid
            .iter()
            .enumerate()
            .filter(|&(i, &c)| c == chpid && pmcw.pim & (0x80 >> i) != 0)
            .fold(0, |m, (i, _)| m | (0x80 >> i))
    }

    /// Whether the last path used (LPUM) is one of `mask`.
    pub(crate) fn last_used_in(&self, mask: u8) -> bool {
        self.schib.pmcw.lpum & mask != 0
    }

    /// Applies `event` to the paths in `mask`.
    pub(crate) fn apply(&mut self, mask: u8, event: PathEvent) {
        match event {
            PathEvent::VaryOff => {
                self.opm &= !mask;
                self.lpm &= !mask;
            }
            PathEvent::VaryOn => {
                self.opm |= mask;
                self.lpm |= mask;
            }
            PathEvent::Offline => {}
            PathEvent::Online => self.lpm |= mask & self.opm,
        }
    }

    /// A start on the paths `used` ended with cc 3: they leave `lpm`. Returns whether any
    /// logical path is left.
    pub(crate) fn not_operational(&mut self, used: u8) -> bool {
        self.lpm &= !used;
        self.lpm != 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn schib(pim: u8, pam: u8, pom: u8, chpids: [u8; 8]) -> Schib {
        let mut s = Schib::from_bytes([0; 52]);
        s.pmcw.flags = s.pmcw.flags.with_dnv(true);
        (s.pmcw.pim, s.pmcw.pam, s.pmcw.pom, s.pmcw.chpid) = (pim, pam, pom, chpids);
        s
    }

    const EVENTS: [PathEvent; 4] = [
        PathEvent::VaryOff,
        PathEvent::VaryOn,
        PathEvent::Offline,
        PathEvent::Online,
    ];

    #[test]
    fn masks_follow_linux_rules() {
        let mut p = Paths::new(schib(0xE0, 0xC0, 0xFF, [0x10, 0x11, 0x12, 0, 0, 0, 0, 0]));
        assert_eq!((p.opm(), p.lpm()), (0xC0, 0xC0));
        assert_eq!(
            (p.mask_of(0x11), p.mask_of(0x12), p.mask_of(0x99)),
            (0x40, 0x20, 0)
        );
        p.apply(0x40, PathEvent::Offline);
        assert_eq!(
            (p.opm(), p.lpm()),
            (0xC0, 0xC0),
            "a gone path keeps its masks"
        );
        assert!(p.not_operational(0x40), "cc 3 on it: 0x80 is left");
        assert_eq!(p.lpm(), 0x80);
        p.apply(0x40, PathEvent::Online);
        assert_eq!(p.lpm(), 0xC0, "online restores it in lpm");
        p.apply(0x80, PathEvent::VaryOff);
        assert_eq!((p.opm(), p.lpm()), (0x40, 0x40));
        p.apply(0x80, PathEvent::Online);
        assert_eq!(
            p.lpm(),
            0x40,
            "online does not undo the operator's vary off"
        );
        p.apply(0x80, PathEvent::VaryOn);
        assert_eq!((p.opm(), p.lpm()), (0xC0, 0xC0));
        assert_eq!(p.schib().pmcw.lpm, 0xC0);
        p.store(schib(0xE0, 0x80, 0xFF, [0; 8]));
        assert_eq!(p.lpm(), 0xC0, "the owner's STSCH keeps the masks");
        p.refresh(schib(0xE0, 0x80, 0xFF, [0; 8]));
        assert_eq!(
            (p.opm(), p.lpm()),
            (0x80, 0x80),
            "a subchannel report sets them anew"
        );
    }

    /// Every sequence of up to four rules over three paths keeps `lpm` inside `opm`.
    #[test]
    fn lpm_stays_inside_opm_under_every_sequence() {
        let base = schib(0xE0, 0xE0, 0xFF, [1, 2, 3, 0, 0, 0, 0, 0]);
        let step = |p: &mut Paths, k: usize| match k {
            0..12 => p.apply(0x80 >> (k % 3), EVENTS[k / 3]),
            12..15 => {
                p.not_operational(0x80 >> (k - 12));
            }
            _ => p.refresh(schib(0xE0, 0x60, 0xFF, [1, 2, 3, 0, 0, 0, 0, 0])),
        };
        for seq in 0..16usize.pow(4) {
            let mut p = Paths::new(base);
            let mut s = seq;
            for _ in 0..4 {
                step(&mut p, s % 16);
                s /= 16;
                assert_eq!(p.lpm() & !p.opm(), 0, "sequence {seq:#x}: {p:?}");
            }
        }
    }

    #[test]
    fn reports_and_ercs() {
        assert_eq!(PathEvent::of_erc(crw::erc::INIT), Some(PathEvent::Online));
        assert_eq!(PathEvent::of_erc(crw::erc::PERRI), Some(PathEvent::Offline));
        assert_eq!(PathEvent::of_erc(0x3F), None);
        let c = PathEvent::Offline.report(0x42).unwrap();
        assert_eq!(
            (c.rsc(), c.erc(), c.rsid()),
            (crw::rsc::CHANNEL_PATH, crw::erc::PERRN, 0x42)
        );
        assert_eq!(PathEvent::VaryOn.report(0x42), None);
        assert!(PathEvent::Offline.ends_use() && !PathEvent::Online.ends_use());
    }
}
