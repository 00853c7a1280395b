// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Control blocks shared by the unit tests and the loom models.

use ccw_types::{FunctionControl, Irb, Schib, StatusControl};

/// The channel path of [`schib`]'s one path.
pub(crate) const CHPID: u8 = 0x10;

/// A valid, operational subchannel (devno 5, one installed and available path, channel path
/// [`CHPID`], last used).
pub(crate) fn schib() -> Schib {
    let mut s = Schib::from_bytes([0; 52]);
    s.pmcw.flags = s.pmcw.flags.with_dnv(true).with_devno(5);
    s.pmcw.pim = 0x80;
    s.pmcw.pam = 0x80;
    s.pmcw.pom = 0xFF;
    s.pmcw.lpum = 0x80;
    s.pmcw.chpid[0] = CHPID;
    s
}

/// Final, solicited status of a start function (CE|DE) at `cpa`.
pub(crate) fn final_irb(cpa: u32) -> Irb {
    let mut irb = Irb::read_from(&[0; 96]).expect("96 bytes");
    irb.scsw.ctrl = irb
        .scsw
        .ctrl
        .with_fc(FunctionControl::START)
        .with_sc(StatusControl::PRIMARY | StatusControl::SECONDARY | StatusControl::PENDING);
    irb.scsw.cpa = cpa.into();
    irb.scsw.dstat = 0x0C;
    irb
}
