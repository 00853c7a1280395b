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
/// The group of suite cases that meet a named vfio-ccw defect (see [`findings`]): run and
/// printed with their results, reported apart from the project's results and not counted.
pub(crate) const KERNEL_FINDINGS_GROUP: &str = "kernel-findings";
/// The group of suite cases that meet a named defect of Hercules 3.13's emulation (see
/// [`findings`]): run, printed, reported apart and not counted.
pub(crate) const HERCULES_DEFECT_GROUP: &str = "hercules-defects";

/// vfio-ccw gives user space no MODIFY SUBCHANNEL: the kernel enables the subchannel when the
/// device is opened and disables it when it is closed, so a close of css-core's subchannel
/// cannot disable it.
const VFIO_NO_MSCH: &str = "vfio-ccw gives user space no MSCH: the subchannel stays enabled \
     until the device itself is closed";

/// Kernel finding (decided, issue 11): after a normal end the CCW address is the last CCW
/// executed + 8 (s390-io-reference §3.3), which lies one past the end of the chain the program
/// ended in. vfio-ccw's `cp_update_scsw` maps it back through the first chain, in list order,
/// whose range taken one CCW past its end holds it (commit "s390/cio: Update SCSW if it points
/// to the end of the chain", Linux 5.3, 2019). Each chain is its own kmalloc allocation: when
/// the chain the program ended in lies directly before an earlier-listed chain, its
/// one-past-the-end address is that chain's head, and the guest is told that chain's start
/// (seen on Linux 6.12 under QEMU and Hercules, either API, by chance per allocation: cpa
/// 0x1000, the program's first CCW, for `tic_first` and `tic_to_tic`). No upstream commit
/// changes this. ccw-translate keeps one unused doubleword between its host segments, so its
/// own mapping is exact.
const KERNEL_CPA: &str = "kernel finding (Linux 6.12, since 5.3; no upstream fix): vfio-ccw's \
     cp_update_scsw maps a final cpa one past a chain's end to the head of an adjacent chain \
     (first match in list order), so a program ending after a TIC can report another chain's \
     start; by chance, per allocation";

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

/// Kernel finding (decided, issue 11): a CCW with PCI makes the subchannel present an
/// intermediate interruption when the CCW is fetched (s390-io-reference §1.3, §3.4), and
/// Hercules presents it (channel.c `raise_pci`, a status of its own). vfio-ccw keeps one IRB
/// (`private->irb`) and one `io_work` item: the final interruption, arriving before the work
/// item ran, overwrites the intermediate IRB and the queued work runs once, so user space never
/// sees the PCI; the guest kernel's TSCH cleared it, so the final status carries no PCI bit
/// either. QEMU ignores PCI (the case is skipped there).
const KERNEL_PCI: &str = "kernel finding (Linux 6.12, since the driver's start; no upstream \
     fix): vfio-ccw keeps one IRB and one io_work item, so the final interruption overwrites an \
     intermediate PCI status before user space reads it";

/// Hercules 3.13 defect (decided, issue 11): the 3990 rules reject a write the Define Extent
/// file mask inhibits (write control 01 = inhibit all writes); Hercules' Locate Record (Write
/// Data) and Write Update Data (0x85) never look at the mask and write the record. The
/// simulator answers command reject (sense 80 04) at the Locate Record and writes nothing.
const HERCULES_FILE_MASK: &str = "known Hercules 3.13 defect: Locate Record (Write Data) and \
     Write Update Data ignore a Define Extent file mask that inhibits all writes and write the \
     record (3990 rules: command reject); reported apart";

/// Hercules 3.13 defect (decided, issue 11): a Define Extent preceded in the same channel
/// program by a Define Extent or Set File Mask is a command reject, format 0 message 2
/// (invalid command sequence) in IBM's ECKD reference. Hercules accepts a second one with the
/// same mask inside the first extent (its check is disabled with `#if 0` since 2005).
const HERCULES_SECOND_DX: &str = "known Hercules 3.13 defect: a second Define Extent in one \
     channel program is accepted (IBM ECKD rules: command reject, invalid command sequence); \
     reported apart";

/// Hercules 3.13 defect (decided, issue 11; hercules-guest.md gotcha 5): HSCH of a running
/// program completes with SCSW `00c060c1`, subchannel- and device-active still set, where
/// subchannel-active ends at primary status, device-active at secondary (s390-io-reference
/// §3.3), and after a completed halt the activity control is 0 (§3.4). Such a status is not
/// final, so the program's request never ends: the halt cases fail at once with the status and
/// CLEAR the subchannel (vfio_ccw refuses the next start with EBUSY until a CSCH; the lane's probe
/// `halt-completion` checks that too). `clear_after_halt` counts: its CLEAR ends the program with
/// clear status as the architecture says.
const HERCULES_HALT: &str = "known Hercules 3.13 defect: a completed HSCH leaves subchannel- \
     and device-active set (hercules-guest.md gotcha 5); reported apart";

/// The suite's cases whose program is ended by HALT and that check the halt's status.
const HALT_CASES: &[&str] = &[
    "halt_running",
    "halt_running_cpa_and_intparm",
    "halt_start_pending",
    "halt_repeated",
];

/// The group of suite cases that meet a named defect of QEMU's emulated device other than its
/// multi-IDAW transfer (see [`findings`]): run, printed, reported apart and not counted.
pub(crate) const QEMU_DEFECTS_GROUP: &str = "qemu-defects";

/// QEMU defect (decided, issue 11): virtio-ccw's READ_STATUS stores the status byte with
/// `address_space_stb` at the CCW's data address taken as guest-physical, ignoring IDA (every
/// other virtio-ccw read goes through `ccw_dstream`); vfio-ccw always gives the device an
/// IDAL, so the byte lands in the host IDAL and the program's buffer is never written. QEMU
/// also accepts READ_STATUS below revision 2 (virtio-ccw: from revision 2 on).
const QEMU_READ_STATUS: &str = "known QEMU defect: virtio-ccw READ_STATUS stores its byte at \
     the CCW's data address as guest-physical, ignoring IDA (vfio-ccw always builds IDALs), and \
     is accepted below revision 2; reported apart";

/// The suite's cases that meet a named defect on `target`, with the group they are reported
/// in and why. Each is still run and printed; its group is reported apart and not counted
/// (`--strict` counts them). Every entry is a decided finding, listed in the suite's README.
pub(crate) fn findings(target: Target) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut v: Vec<_> = KERNEL_CPA_CASES
        .iter()
        .map(|c| (*c, KERNEL_FINDINGS_GROUP, KERNEL_CPA))
        .collect();
    if target == Target::VirtioBlk {
        v.push((
            "virtio_status_round_trip",
            QEMU_DEFECTS_GROUP,
            QEMU_READ_STATUS,
        ));
    }
    if target == Target::Dasd3390 {
        v.extend(
            HALT_CASES
                .iter()
                .map(|c| (*c, HERCULES_DEFECT_GROUP, HERCULES_HALT)),
        );
        v.extend([
            ("pci_flag", KERNEL_FINDINGS_GROUP, KERNEL_PCI),
            (
                "eckd_write_inhibited",
                HERCULES_DEFECT_GROUP,
                HERCULES_FILE_MASK,
            ),
            (
                "eckd_define_extent_twice",
                HERCULES_DEFECT_GROUP,
                HERCULES_SECOND_DX,
            ),
        ]);
    }
    v
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

/// What Hercules 3.13 cannot run: nothing (hercules-guest.md). Its CKD emulation refuses data
/// chaining on commands other than its reads (gotcha 9); on a 3390 the suite's data-chaining
/// cases split a Read Data of a known record after Define Extent and Locate Record
/// (css-conformance's README), so they run and count. Its halt completion is a defect the
/// halt cases meet ([`HERCULES_HALT`], in [`findings`]).
const HERCULES_LIMITS: &[(&str, &str)] = &[];

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
            for (what, group, _) in findings(target) {
                assert!(all.iter().any(|c| c.name == what), "{what} is no case");
                assert!(
                    [
                        KERNEL_FINDINGS_GROUP,
                        HERCULES_DEFECT_GROUP,
                        QEMU_DEFECTS_GROUP
                    ]
                    .contains(&group)
                );
            }
        }
        // Each emulator's defects are findings on its own target only.
        assert!(
            findings(Target::VirtioBlk)
                .iter()
                .all(|(_, g, _)| *g != HERCULES_DEFECT_GROUP)
        );
        assert!(
            findings(Target::Dasd3390)
                .iter()
                .all(|(_, g, _)| *g != QEMU_DEFECTS_GROUP)
        );
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
        // The halt cases run on the 3390, in the Hercules-defect group; the rest of the async
        // group counts.
        for case in HALT_CASES
            .iter()
            .chain(&["clear_running", "clear_after_halt"])
        {
            assert!(h.skip_reason("async", case).is_none(), "{case} skipped");
        }
        let f = findings(Target::Dasd3390);
        for case in HALT_CASES {
            assert!(
                f.iter()
                    .any(|(c, g, _)| c == case && *g == HERCULES_DEFECT_GROUP),
                "{case}"
            );
        }
        assert!(!f.iter().any(|(c, _, _)| *c == "clear_after_halt"));
        // Every data-chaining case runs on the 3390 (its located Read Data form).
        for (group, case) in [
            ("basic", "data_chain_1_rest"),
            ("basic", "data_chain_4_rest"),
            ("basic", "data_chain_halves"),
            ("basic", "data_chain_rest_1"),
            ("basic", "data_chain_odd_three"),
            ("basic", "data_chain_eight"),
            ("basic", "data_chain_short_with_sli"),
            ("basic", "data_chain_short_without_sli"),
            ("basic", "data_chain_sli_on_first_ignored"),
            ("basic", "data_chain_long_residual"),
            ("basic", "skip_then_data_chain"),
            ("basic", "tic_carries_data_chain"),
            ("idal", "idal_data_chain"),
            ("multi-idaw", "data_chain_across_page"),
            ("bad-programs", "data_chain_count_zero"),
        ] {
            assert!(h.skip_reason(group, case).is_none(), "{case} skipped");
        }
    }
}
