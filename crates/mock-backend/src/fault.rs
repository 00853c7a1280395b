// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Seeded, deterministic fault injection.
//!
//! A [`FaultPolicy`] decides, at each decision point of the simulated channel subsystem, whether
//! a fault happens. Decisions come from a per-policy pseudo-random sequence (splitmix64, written
//! by hand: a dozen lines, not worth a dependency) seeded by the caller, plus a script of faults
//! forced at the n-th start of a given subchannel. The same seed and the same sequence of
//! operations give the same faults.
//!
//! ```
//! use mock_backend::{Fault, FaultKind, FaultPolicy};
//! use ccw_types::SubchannelId;
//! let policy = FaultPolicy::seeded(42)
//!     .with_rate(FaultKind::StartBusy, 0.05)
//!     .with_script(SubchannelId::new(0, 0, 1), 0, Fault::UnitCheck { sense: [0x10; 4] });
//! assert!(!policy.is_disabled());
//! ```

use std::collections::HashMap;
use std::time::Duration;

use ccw_types::SubchannelId;

/// The kinds of fault, for rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// START SUBCHANNEL answers cc 3 (not operational) without changing anything.
    StartNotOperational,
    /// START SUBCHANNEL answers cc 2 (busy) without changing anything.
    StartBusy,
    /// START SUBCHANNEL finds unsolicited status pending (attention): cc 1, and that status is
    /// delivered as an interruption shortly after.
    StartStatusPending,
    /// The device becomes not operational during the channel program: the start function ends
    /// with deferred cc 3 (SC alert + pending) and a channel report (subchannel, ERC temporary
    /// error). The subchannel stays usable for later starts.
    NotOperationalDuringIo,
    /// A channel path is lost during the channel program: POM and PAM lose the path, PNOM shows
    /// it, SCSW N = 1 and deferred cc 3 end the program, a channel-path CRW (ERC permanent
    /// error) is reported; the path comes back (CRW, ERC initialized) after `path_restore`.
    PathLoss,
    /// The device presents unit check at the first command (equipment check sense).
    UnitCheck,
    /// The interruption is delivered late (by `interrupt_delay`): the subchannel stays status
    /// pending meanwhile.
    DelayedInterrupt,
    /// An extra, unsolicited interruption (attention, SC alert + pending) is delivered.
    SpuriousInterrupt,
    /// An interruption is delivered twice (a defect of some layer above the channel: consumers
    /// must tolerate it).
    DuplicateInterrupt,
    /// A channel report is lost; the next one carries the overflow flag (R).
    CrwOverflow,
}

impl FaultKind {
    /// Every kind, in declaration order.
    pub const ALL: [FaultKind; 10] = [
        FaultKind::StartNotOperational,
        FaultKind::StartBusy,
        FaultKind::StartStatusPending,
        FaultKind::NotOperationalDuringIo,
        FaultKind::PathLoss,
        FaultKind::UnitCheck,
        FaultKind::DelayedInterrupt,
        FaultKind::SpuriousInterrupt,
        FaultKind::DuplicateInterrupt,
        FaultKind::CrwOverflow,
    ];
}

/// One concrete fault, as scripted or drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// See [`FaultKind::StartNotOperational`].
    StartNotOperational,
    /// See [`FaultKind::StartBusy`].
    StartBusy,
    /// See [`FaultKind::StartStatusPending`].
    StartStatusPending,
    /// See [`FaultKind::NotOperationalDuringIo`].
    NotOperationalDuringIo,
    /// See [`FaultKind::PathLoss`].
    PathLoss,
    /// The device presents unit check at the first command with these first sense bytes.
    UnitCheck {
        /// Sense bytes 0-3 (the rest are zero).
        sense: [u8; 4],
    },
    /// See [`FaultKind::DelayedInterrupt`].
    DelayedInterrupt,
    /// See [`FaultKind::SpuriousInterrupt`].
    SpuriousInterrupt,
    /// See [`FaultKind::DuplicateInterrupt`].
    DuplicateInterrupt,
    /// See [`FaultKind::CrwOverflow`].
    CrwOverflow,
}

impl Fault {
    /// The kind of this fault.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::StartNotOperational => FaultKind::StartNotOperational,
            Fault::StartBusy => FaultKind::StartBusy,
            Fault::StartStatusPending => FaultKind::StartStatusPending,
            Fault::NotOperationalDuringIo => FaultKind::NotOperationalDuringIo,
            Fault::PathLoss => FaultKind::PathLoss,
            Fault::UnitCheck { .. } => FaultKind::UnitCheck,
            Fault::DelayedInterrupt => FaultKind::DelayedInterrupt,
            Fault::SpuriousInterrupt => FaultKind::SpuriousInterrupt,
            Fault::DuplicateInterrupt => FaultKind::DuplicateInterrupt,
            Fault::CrwOverflow => FaultKind::CrwOverflow,
        }
    }

    fn of_kind(kind: FaultKind) -> Fault {
        match kind {
            FaultKind::StartNotOperational => Fault::StartNotOperational,
            FaultKind::StartBusy => Fault::StartBusy,
            FaultKind::StartStatusPending => Fault::StartStatusPending,
            FaultKind::NotOperationalDuringIo => Fault::NotOperationalDuringIo,
            FaultKind::PathLoss => Fault::PathLoss,
            // Equipment check.
            FaultKind::UnitCheck => Fault::UnitCheck {
                sense: [0x10, 0, 0, 0],
            },
            FaultKind::DelayedInterrupt => Fault::DelayedInterrupt,
            FaultKind::SpuriousInterrupt => Fault::SpuriousInterrupt,
            FaultKind::DuplicateInterrupt => Fault::DuplicateInterrupt,
            FaultKind::CrwOverflow => Fault::CrwOverflow,
        }
    }
}

/// Where in an operation a decision is made; each point draws only the kinds that apply there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Point {
    /// At START SUBCHANNEL, before the instruction's own checks.
    Start,
    /// When the channel program begins executing.
    Execute,
    /// When an interruption is delivered.
    Deliver,
    /// When a channel report is queued.
    Report,
}

impl Point {
    fn kinds(self) -> &'static [FaultKind] {
        match self {
            Point::Start => &[
                FaultKind::StartNotOperational,
                FaultKind::StartBusy,
                FaultKind::StartStatusPending,
            ],
            Point::Execute => &[
                FaultKind::NotOperationalDuringIo,
                FaultKind::PathLoss,
                FaultKind::UnitCheck,
            ],
            Point::Deliver => &[
                FaultKind::DelayedInterrupt,
                FaultKind::SpuriousInterrupt,
                FaultKind::DuplicateInterrupt,
            ],
            Point::Report => &[FaultKind::CrwOverflow],
        }
    }
}

/// A seeded, deterministic fault policy. The default injects nothing.
#[derive(Debug, Clone)]
pub struct FaultPolicy {
    seed: u64,
    state: u64,
    /// Probability per decision, in parts of 2^32.
    rates: HashMap<FaultKind, u64>,
    /// Faults forced at the n-th start (0-based) of a subchannel.
    script: HashMap<(SubchannelId, u64), Fault>,
    starts: HashMap<SubchannelId, u64>,
    /// Script entries waiting for their decision point, per subchannel.
    armed: HashMap<SubchannelId, Vec<Fault>>,
    interrupt_delay: Duration,
    path_restore: Duration,
}

impl Default for FaultPolicy {
    fn default() -> Self {
        Self::seeded(0)
    }
}

impl FaultPolicy {
    /// A policy drawing from the sequence of `seed`, with no rates and no script (no faults).
    pub fn seeded(seed: u64) -> Self {
        Self {
            seed,
            state: seed,
            rates: HashMap::new(),
            script: HashMap::new(),
            starts: HashMap::new(),
            armed: HashMap::new(),
            interrupt_delay: Duration::from_millis(1),
            path_restore: Duration::from_millis(2),
        }
    }

    /// No faults at all.
    pub fn none() -> Self {
        Self::seeded(0)
    }

    /// Sets the probability (0.0 ..= 1.0) of `kind` at each of its decision points.
    pub fn with_rate(mut self, kind: FaultKind, probability: f64) -> Self {
        let p = probability.clamp(0.0, 1.0);
        self.rates.insert(kind, (p * 4_294_967_296.0) as u64);
        self
    }

    /// Sets every kind to `probability`.
    pub fn with_all_rates(mut self, probability: f64) -> Self {
        for k in FaultKind::ALL {
            self = self.with_rate(k, probability);
        }
        self
    }

    /// Forces `fault` at the `nth` (0-based) START SUBCHANNEL of `sch`; the fault fires at its
    /// decision point within that start (at the instruction, during execution or at delivery).
    pub fn with_script(mut self, sch: SubchannelId, nth: u64, fault: Fault) -> Self {
        self.script.insert((sch, nth), fault);
        self
    }

    /// How long a delayed interruption waits (default 1 ms).
    pub fn with_interrupt_delay(mut self, delay: Duration) -> Self {
        self.interrupt_delay = delay;
        self
    }

    /// How long a lost path stays lost (default 2 ms).
    pub fn with_path_restore(mut self, after: Duration) -> Self {
        self.path_restore = after;
        self
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Whether the policy can never inject anything.
    pub fn is_disabled(&self) -> bool {
        self.rates.values().all(|&r| r == 0) && self.script.is_empty()
    }

    pub(crate) fn interrupt_delay(&self) -> Duration {
        self.interrupt_delay
    }

    pub(crate) fn path_restore(&self) -> Duration {
        self.path_restore
    }

    fn next(&mut self) -> u64 {
        // splitmix64.
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Called once per START SUBCHANNEL: arms this start's scripted fault, if any.
    pub(crate) fn note_start(&mut self, sch: SubchannelId) {
        let n = self.starts.entry(sch).or_insert(0);
        let nth = *n;
        *n += 1;
        if let Some(f) = self.script.remove(&(sch, nth)) {
            self.armed.entry(sch).or_default().push(f);
        }
    }

    /// Decides whether a fault happens at `point` for `sch`.
    pub(crate) fn decide(&mut self, sch: SubchannelId, point: Point) -> Option<Fault> {
        let kinds = point.kinds();
        if let Some(list) = self.armed.get_mut(&sch) {
            if let Some(i) = list.iter().position(|f| kinds.contains(&f.kind())) {
                return Some(list.remove(i));
            }
        }
        if self.rates.is_empty() {
            return None;
        }
        for &k in kinds {
            let rate = self.rates.get(&k).copied().unwrap_or(0);
            if rate == 0 {
                continue;
            }
            if (self.next() & 0xFFFF_FFFF) < rate {
                return Some(Fault::of_kind(k));
            }
        }
        None
    }

    /// Drops armed script entries of `sch` that can no longer fire (the start did not execute).
    pub(crate) fn disarm(&mut self, sch: SubchannelId) {
        self.armed.remove(&sch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let sch = SubchannelId::new(0, 0, 7);
        let draw = |seed| {
            let mut p = FaultPolicy::seeded(seed).with_all_rates(0.3);
            (0..200)
                .map(|_| p.decide(sch, Point::Execute))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
        assert!(draw(5).iter().any(Option::is_some));
        assert!(draw(5).iter().any(Option::is_none));
    }

    #[test]
    fn no_rates_no_faults() {
        let mut p = FaultPolicy::none();
        assert!(p.is_disabled());
        for _ in 0..100 {
            assert_eq!(p.decide(SubchannelId::new(0, 0, 0), Point::Start), None);
        }
    }

    #[test]
    fn script_fires_at_its_start_and_point() {
        let sch = SubchannelId::new(0, 0, 1);
        let mut p = FaultPolicy::none().with_script(sch, 1, Fault::StartBusy);
        p.note_start(sch);
        assert_eq!(p.decide(sch, Point::Start), None);
        p.note_start(sch);
        assert_eq!(p.decide(sch, Point::Execute), None);
        assert_eq!(p.decide(sch, Point::Start), Some(Fault::StartBusy));
        assert_eq!(p.decide(sch, Point::Start), None);
    }

    #[test]
    fn rate_one_always_fires() {
        let mut p = FaultPolicy::seeded(1).with_rate(FaultKind::CrwOverflow, 1.0);
        for _ in 0..50 {
            assert_eq!(
                p.decide(SubchannelId::new(0, 0, 0), Point::Report),
                Some(Fault::CrwOverflow)
            );
        }
    }
}
