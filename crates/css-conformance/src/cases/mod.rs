// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The cases, one module per group, and the one list of them ([`__suite!`](crate::__suite)).

pub(crate) mod async_io;
pub(crate) mod bad_programs;
pub(crate) mod basic;
pub(crate) mod eckd;
pub(crate) mod idal;
pub(crate) mod lifecycle;
pub(crate) mod multi_idaw;
pub(crate) mod schib;
pub(crate) mod test_device;
pub(crate) mod torture;
pub(crate) mod virtio;

/// Internal: the one list of every case, by group (module, label). A case may carry
/// attributes for its `#[test]` (an `#[ignore = "..."]` for a defect fixed on another branch). `@local m` hands it to
/// a macro in scope; `@tests ...` to [`__expand_tests!`](crate::__expand_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! __suite {
    (@local $cb:ident) => { $crate::__suite!(@list $cb ()); };
    (@tests $($args:tt)*) => { $crate::__suite!(@list __expand_tests ($($args)*)); };
    (@list $cb:ident ($($args:tt)*)) => {
        $crate::__suite!(@emit $cb ($($args)*)
            (basic, "basic") { sense_id, intparm_returned, command_chain, command_chain_nops, command_chain_stops_at_unit_check, data_chain_1_rest, data_chain_4_rest, data_chain_halves, data_chain_rest_1, data_chain_odd_three, data_chain_eight, data_chain_short_with_sli, data_chain_short_without_sli, data_chain_sli_on_first_ignored, data_chain_long_residual, skip_read, skip_then_data_chain, pci_flag, suspend_without_orb_s, tic_forward, tic_backward, tic_in_segment, tic_first, tic_carries_data_chain, residual_long_count_sli, residual_short_count_sli, incorrect_length_short, incorrect_length_long, incorrect_length_stops_chain, nop_count_zero, format0_program, format0_tic, unknown_command, sense_clean }
            (idal, "idal") { fmt2_4k_single, fmt2_2k_single, fmt1_single, fmt2_4k_first_unaligned, fmt2_2k_first_unaligned, fmt1_first_unaligned, idal_list_any_doubleword, fmt1_list_word_aligned, idal_partial_count, idal_data_chain, idal_then_direct, idal_skip }
            (multi_idaw, "multi-idaw") { fmt2_4k_two, fmt2_2k_two, fmt1_two, fmt2_4k_contiguous, fmt2_4k_one_byte_first, fmt2_2k_same_page, direct_across_page, data_chain_across_page }
            (async_io, "async") { halt_idle, clear_idle, halt_running, clear_running, halt_running_cpa_and_intparm, clear_after_halt, halt_start_pending, clear_start_pending, halt_after_completion, start_while_busy, halt_when_closed, halt_repeated }
            (lifecycle, "lifecycle") { reopen, open_twice_refused, submit_after_close, close_with_io_running, close_after_completion, remove_with_io_running, remove_idle_and_reprobe, two_submits_racing, final_status_once, many_in_a_row, idle_after_refusal }
            (schib, "schib-paths") { stsch_after_enable, path_masks_consistent, disabled_after_close, scsw_idle_after_completion, cached_schib_matches, vary_off_on, #[ignore = "css-core: path masks not restored after offline/online; fixed on branch rel"] offline_online_restores, vary_while_open, path_crws_in_order, subchannel_crw_refreshes, reports_forwarded_in_order, orb_lpm }
            (bad_programs, "bad-programs") { tic_to_tic, tic_to_itself, misaligned_cpa, cpa_outside_memory, chain_runs_off_memory, data_outside_memory, data_straddles_end, invalid_command_0x00, invalid_command_0xf0, invalid_tic_like_0x18, invalid_command_in_chain, tic_misaligned_target, tic_target_outside_memory, format0_count_zero, format0_cpa_above_16m, idaw_fmt1_bit0, idal_misaligned, idal_fmt1_misaligned, idal_outside_memory, idaw_data_outside_memory, second_idaw_unaligned, segment_too_long, segment_255_runs, seventeen_segments, sixteen_segments_run, transport_mode_orb, midaw_without_orb_d, midaw_unsupported, orb_cpa_bit0, orb_reserved_bits, tic_with_count, data_chain_count_zero }
            (torture, "kernel-torture") { raw_256_ccws, raw_17_segments, raw_tic_self_loop, raw_tic_ping_pong, raw_idal_past_mapped_end, raw_fmt1_idal_at_mapped_end, raw_zero_length_ccws, raw_halt_racing_start, raw_clear_racing_start, raw_start_while_busy, raw_transport_orb, raw_cpa_unmapped, raw_tic_target_unmapped, raw_format0_tic }
            (virtio, "virtio-blk") { virtio_sense_id, virtio_read_conf, virtio_read_conf_short, virtio_status_round_trip, virtio_read_feat, virtio_read_vq_conf, virtio_revision_once }
            (test_device, "test-device") { td_write_read, td_write_data_chain, td_write_idal_two, td_read_data_chain_odd, td_read_backward, td_search_equal_skips, td_search_unequal_continues, td_unit_check_sense, td_unit_exception, td_unit_exception_stops_chain, td_short_record_residual, td_skip_ignored_on_write, td_sense_id, td_write_then_read_chained }
            (eckd, "eckd-3390") { eckd_sense_id, eckd_rdc, eckd_write_then_read, eckd_multi_record_read, eckd_multi_track_read, eckd_read_data_chained, eckd_read_data_idal, eckd_search_id_tic_loop, eckd_read_count, eckd_read_ckd, eckd_out_of_extent, eckd_write_inhibited, eckd_no_record_found, eckd_define_extent_twice }
        );
    };
    (@emit __expand_tests ($($args:tt)*) $($list:tt)*) => { $crate::__expand_tests! { $($args)* $($list)* } };
    (@emit $cb:ident () $($list:tt)*) => { $cb! { $($list)* } };
}
