// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The fixtures of the targets the guest runner knows: QEMU's virtio-blk-ccw (the s390x
//! lane) and Hercules' 3390 DASD. Each names what its emulator cannot run, with the reason
//! printed as the case's `skipped:` line; `--strict` (real hardware) skips nothing.

use std::fmt;
use std::str::FromStr;

use ccw_types::SubchannelId;
use css_conformance::Fixture;

/// Which device the guest's vfio-ccw mdev is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// QEMU's virtio-blk-ccw (the s390x lane's disk).
    VirtioBlk,
    /// A Hercules-emulated 3390 (control unit 3990).
    Dasd3390,
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "virtio-blk" => Ok(Target::VirtioBlk),
            "3390" => Ok(Target::Dasd3390),
            other => Err(format!("unknown fixture `{other}` (virtio-blk or 3390)")),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::VirtioBlk => "virtio-blk",
            Target::Dasd3390 => "3390",
        })
    }
}

/// The group QEMU's emulated device gets wrong, reported apart by the verdict.
pub(crate) const QEMU_DEFECT_GROUP: &str = "multi-idaw";
/// Why.
pub(crate) const QEMU_DEFECT: &str =
    "known QEMU defect: ccw_dstream_rw_ida() does not advance between IDAWs";
/// The group whose failures are kernel findings, reported apart from the project's results.
pub(crate) const KERNEL_GROUP: &str = "kernel-torture";
/// The group the cases of [`open_findings`] run in: run and printed with their results, but
/// reported apart and not counted until each is decided (fixed, or named an emulator or kernel
/// defect).
pub(crate) const OPEN_GROUP: &str = "open-findings";

/// vfio-ccw gives user space no MODIFY SUBCHANNEL: the kernel enables the subchannel when the
/// device is opened and disables it when it is closed, so a close of css-core's subchannel
/// cannot disable it.
const VFIO_NO_MSCH: &str = "vfio-ccw gives user space no MSCH: the subchannel stays enabled \
     until the device itself is closed";

/// A suspected kernel finding (vfio-ccw `cp_update_scsw`): each CCW chain of a translated
/// program is its own kmalloc allocation, and the final cpa is mapped back to the guest through
/// the first chain (in list order) whose range, taken one CCW past its end, contains it. When
/// the chain the program ended in lies directly before another chain of the same size, its
/// one-past-the-end address is that chain's head, and the guest is told the other chain's start
/// (seen: cpa 0x1000, the program's first CCW, for `tic_first` and `tic_to_tic`, on either
/// API, by chance). Programs that leave their first chain through a TIC can meet it.
const KERNEL_CPA: &str = "suspected kernel finding: vfio-ccw's cp_update_scsw maps a final cpa \
     one past a chain's end to the head of an adjacent chain (first match in list order), so a \
     program ending after a TIC can report the first chain's start; by chance, per allocation";

/// The cases whose programs leave their first chain through a TIC and check the final cpa.
const KERNEL_CPA_CASES: &[&str] = &[
    "tic_forward",
    "tic_backward",
    "tic_first",
    "tic_to_tic",
    "tic_carries_data_chain",
    "format0_tic",
    "tic_with_count",
];

/// Cases that fail on a target for a reason not yet decided. Each is still run; its result is
/// printed in the `open-findings` group and not counted. Every entry is an open question of
/// the project, listed in the suite's README.
pub(crate) fn open_findings(target: Target) -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<(&str, &str)> = KERNEL_CPA_CASES.iter().map(|c| (*c, KERNEL_CPA)).collect();
    v.extend_from_slice(target_open_findings(target));
    v
}

fn target_open_findings(target: Target) -> &'static [(&'static str, &'static str)] {
    match target {
        Target::VirtioBlk => &[
            (
                "virtio_status_round_trip",
                "QEMU rejects SET_VIRTIO_REV once an earlier case set the revision (virtio \
                 spec 4.3.2.1.1: unset only from subchannel enable); the simulator resets it on \
                 VDEV_RESET: the model and the case are to be fixed",
            ),
            (
                "virtio_revision_once",
                "as virtio_status_round_trip: the revision set by an earlier case stays set in \
                 QEMU",
            ),
        ],
        Target::Dasd3390 => &[
            (
                "pci_flag",
                "no PCI interruption and no PCI bit in the final status under Hercules 3.13: \
                 emulator or kernel, undecided",
            ),
            (
                "eckd_write_inhibited",
                "Hercules 3.13 ends a write under a write-inhibiting Define Extent mask with CE DE \
                 where the simulator answers command reject: to be decided from the 3990 rules",
            ),
            (
                "eckd_define_extent_twice",
                "Hercules 3.13 accepts a second Define Extent in one chain where the simulator \
                 answers command reject: to be decided from the 3990 rules",
            ),
        ],
    }
}

/// A running program hangs QEMU's guest: its CSS runs a channel program to its end inside
/// SSCH (sch_handle_start_func_virtual), so an endless program spins the only CPU.
const QEMU_SYNC: &str = "QEMU's emulated CSS runs a channel program to its end inside SSCH \
     (sch_handle_start_func_virtual): an endless program spins the guest's only CPU";
/// QEMU length-checks each CCW of a data chain on its own.
const QEMU_DATA_CHAIN: &str = "QEMU's css_interpret_ccw() length-checks each CCW of a data \
     chain on its own: SENSE ID with CD and a short count is a program check";
/// QEMU's SENSE ID needs count 256 unless SLI.
const QEMU_SENSE_ID_COUNT: &str =
    "QEMU's SENSE ID is a program check for a count other than 256 without SLI";

/// What QEMU's emulated channel subsystem cannot run (anchors.md, QEMU css.c).
const QEMU_LIMITS: &[(&str, &str)] = &[
    ("async", QEMU_SYNC),
    ("close_with_io_running", QEMU_SYNC),
    ("remove_with_io_running", QEMU_SYNC),
    ("two_submits_racing", QEMU_SYNC),
    ("raw_halt_racing_start", QEMU_SYNC),
    ("raw_clear_racing_start", QEMU_SYNC),
    ("raw_start_while_busy", QEMU_SYNC),
    (
        "raw_tic_ping_pong",
        "vfio-ccw gives the NOPs of a NOP/TIC loop an IDAL address, so QEMU's no-data loop \
         guard never fires and the guest's only CPU spins",
    ),
    ("data_chain_1_rest", QEMU_DATA_CHAIN),
    ("data_chain_4_rest", QEMU_DATA_CHAIN),
    ("data_chain_halves", QEMU_DATA_CHAIN),
    ("data_chain_rest_1", QEMU_DATA_CHAIN),
    ("data_chain_odd_three", QEMU_DATA_CHAIN),
    ("data_chain_eight", QEMU_DATA_CHAIN),
    ("data_chain_short_with_sli", QEMU_DATA_CHAIN),
    ("data_chain_short_without_sli", QEMU_DATA_CHAIN),
    ("data_chain_sli_on_first_ignored", QEMU_DATA_CHAIN),
    ("data_chain_long_residual", QEMU_DATA_CHAIN),
    ("skip_then_data_chain", QEMU_DATA_CHAIN),
    ("tic_carries_data_chain", QEMU_DATA_CHAIN),
    ("idal_data_chain", QEMU_DATA_CHAIN),
    ("data_chain_across_page", QEMU_DATA_CHAIN),
    (
        "data_chain_count_zero",
        "QEMU accepts count 0 on any format-1 CCW, data chaining included \
         (s390-io-reference §1.7), where the architecture program-checks",
    ),
    ("incorrect_length_short", QEMU_SENSE_ID_COUNT),
    ("incorrect_length_long", QEMU_SENSE_ID_COUNT),
    ("incorrect_length_stops_chain", QEMU_SENSE_ID_COUNT),
    (
        "pci_flag",
        "QEMU's emulated CSS ignores the PCI flag (anchors.md feature table)",
    ),
];

/// Hercules 3.13 facts (hercules-guest.md).
const HERCULES_DATA_CHAIN: &str = "Hercules' CKD emulation refuses data chaining on commands \
     other than its reads (hercules-guest.md gotcha 9)";
const HERCULES_HALT: &str = "known Hercules 3.13 defect: a completed HSCH leaves subchannel- \
     and device-active set (hercules-guest.md gotcha 5); reported apart";

const HERCULES_LIMITS: &[(&str, &str)] = &[
    ("data_chain_1_rest", HERCULES_DATA_CHAIN),
    ("data_chain_4_rest", HERCULES_DATA_CHAIN),
    ("data_chain_halves", HERCULES_DATA_CHAIN),
    ("data_chain_rest_1", HERCULES_DATA_CHAIN),
    ("data_chain_odd_three", HERCULES_DATA_CHAIN),
    ("data_chain_eight", HERCULES_DATA_CHAIN),
    ("data_chain_short_with_sli", HERCULES_DATA_CHAIN),
    ("data_chain_short_without_sli", HERCULES_DATA_CHAIN),
    ("data_chain_sli_on_first_ignored", HERCULES_DATA_CHAIN),
    ("data_chain_long_residual", HERCULES_DATA_CHAIN),
    ("skip_then_data_chain", HERCULES_DATA_CHAIN),
    ("tic_carries_data_chain", HERCULES_DATA_CHAIN),
    ("idal_data_chain", HERCULES_DATA_CHAIN),
    ("data_chain_across_page", HERCULES_DATA_CHAIN),
    ("data_chain_count_zero", HERCULES_DATA_CHAIN),
    ("halt_running", HERCULES_HALT),
    ("halt_running_cpa_and_intparm", HERCULES_HALT),
    ("halt_start_pending", HERCULES_HALT),
    ("halt_repeated", HERCULES_HALT),
    ("clear_after_halt", HERCULES_HALT),
];

/// The fixture of `target` for the device at `sch` / `devno`; `strict` (real hardware)
/// declares nothing unsupported.
pub(crate) fn fixture(target: Target, sch: SubchannelId, devno: u16, strict: bool) -> Fixture {
    let (base, limits) = match target {
        Target::VirtioBlk => (Fixture::virtio_blk(sch, devno), QEMU_LIMITS),
        // The lane's image: `dasdinit -linux ... 3390 LNX001 20` (hercules-guest.md).
        Target::Dasd3390 => (Fixture::eckd_3390(sch, devno, 20), HERCULES_LIMITS),
    };
    if strict {
        return base;
    }
    limits
        .iter()
        .chain(&[("disabled_after_close", VFIO_NO_MSCH)])
        .fold(base, |f, (what, why)| f.unsupported(*what, *why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use css_conformance::{DeviceKind, cases};

    #[test]
    fn targets_parse() {
        assert_eq!("virtio-blk".parse::<Target>(), Ok(Target::VirtioBlk));
        assert_eq!("3390".parse::<Target>(), Ok(Target::Dasd3390));
        assert!("3380".parse::<Target>().is_err());
    }

    #[test]
    fn every_declared_limit_names_a_case_or_group() {
        let all = cases::<mock_backend::MockBackend>();
        for (what, _) in QEMU_LIMITS.iter().chain(HERCULES_LIMITS) {
            assert!(
                all.iter().any(|c| c.name == *what || c.group == *what),
                "{what} is no case or group"
            );
        }
        for target in [Target::VirtioBlk, Target::Dasd3390] {
            for (what, _) in open_findings(target) {
                assert!(all.iter().any(|c| c.name == what), "{what} is no case");
            }
        }
        assert!(all.iter().any(|c| c.group == QEMU_DEFECT_GROUP));
        assert!(all.iter().any(|c| c.group == KERNEL_GROUP));
    }

    #[test]
    fn fixtures_skip_only_without_strict() {
        let sch = SubchannelId::default();
        assert!(
            fixture(Target::VirtioBlk, sch, 5, true)
                .known_unsupported
                .is_empty()
        );
        let q = fixture(Target::VirtioBlk, sch, 5, false);
        assert!(q.skip_reason("async", "halt_idle").is_some());
        // Every case that keeps a program running would hang QEMU's guest.
        for case in [
            "close_with_io_running",
            "remove_with_io_running",
            "two_submits_racing",
        ] {
            assert!(q.skip_reason("lifecycle", case).is_some(), "{case}");
        }
        assert!(
            q.skip_reason(QEMU_DEFECT_GROUP, "fmt2_4k_two").is_none(),
            "multi-idaw runs and is reported apart"
        );
        let h = fixture(Target::Dasd3390, sch, 0x120, false);
        assert!(matches!(h.primary.kind, DeviceKind::Eckd3390 { .. }));
        assert_eq!(h.primary.sense_id_prefix(), [0xFF, 0x39, 0x90]);
        assert_eq!(h.primary.sense_id_len(), 12);
        assert!(h.skip_reason("async", "halt_running").is_some());
        assert!(h.skip_reason("async", "clear_running").is_none());
    }
}
