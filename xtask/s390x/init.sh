#!/bin/busybox sh
# SPDX-License-Identifier: Apache-2.0 OR MIT
#
# /init of the emulated s390x guest that `cargo xtask s390x` boots, under QEMU or Hercules (the
# kernel command line says which: `ccw_lane=hercules`; QEMU otherwise). It mounts, paces the
# console, and hands the lane's device (QEMU: virtio-blk-ccw 0.0.0005; Hercules: 3390 DASD
# 0.0.0120) to `vfio-guest claim`, which takes its subchannel for vfio_ccw and creates the
# mediated device through vfio-backend's ClaimedSubchannel, prints the setup facts, runs this
# script again as `/init payloads` (every payload present in /bin, with the mdev), then gives
# the subchannel back and checks it is as it was. Then `ccwctl --vfio <busid>` claims and gives
# back by itself, checked by `vfio-guest restored`, and the machine powers off. Lines starting
# with "@@ " are for xtask (see xtask/src/s390x/report.rs); payloads print their own
# "N passed, M failed" lines. Never exits with the machine still running.

PHASE=${1:-boot}
if [ "$PHASE" = boot ]; then
    /bin/busybox --install -s /bin
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev 2>/dev/null
    mount -t tmpfs tmpfs /tmp
fi
export PATH=/bin

LANE=qemu
for word in $(cat /proc/cmdline); do
    case "$word" in ccw_lane=*) LANE=${word#ccw_lane=} ;; esac
done
case "$LANE" in
    hercules) DEVNO=0.0.0120 KIND=dasd CU=3990 ;;
    *) LANE=qemu DEVNO=0.0.0005 KIND=virtio CU=3832 ;;
esac
DEVHEX=${DEVNO##*.}

UUID=$(cat /etc/ccw-rs/uuid)

say() { echo "@@ $*"; }
# run <step> <command...>: brackets a payload's output so xtask can attribute its result lines.
run() {
    step=$1; shift
    say "begin $step"
    "$@"
    say "end $step exit=$?"
}

if [ "$PHASE" = boot ]; then
    PACER=
    if [ "$LANE" = hercules ]; then
        # Hercules' 3215 console drops whatever a write CCW carries beyond 150 bytes: all output
        # goes through the pacer, which writes pieces of at most 120 bytes and drains each.
        mkfifo /tmp/console
        /bin/ccw-probe pace </tmp/console >/dev/console 2>&1 &
        PACER=$!
        exec >/tmp/console 2>&1
    else
        exec >/dev/console 2>&1
    fi
    finish() {
        say done
        if [ -n "$PACER" ]; then
            # Closing the fifo ends the pacer once it has written everything.
            exec >/dev/console 2>&1
            wait $PACER
        fi
        sync; poweroff -f; sleep 10
    }

    say "boot lane=$LANE kernel=$(uname -r) machine=$(uname -m)"
    if [ ! -x /bin/vfio-guest ]; then
        say "setup-fail no /bin/vfio-guest: it claims the lane's device (crates/vfio-guest)"
        finish
    fi
    # The device lifecycle: claim, facts, `@@ setup-ok`, the payloads below, release, checks.
    run lifecycle /bin/vfio-guest claim --busid "dev:$DEVNO" --uuid "$UUID" -- /init payloads

    # ccwctl claims the subchannel by bus id itself and must give it back after its run.
    if [ -x /bin/ccwctl ]; then
        run ccwctl-busid /bin/vfio-guest restored --busid "dev:$DEVNO" --expect "$CU" \
            --name ccwctl-busid -- /bin/ccwctl --vfio "dev:$DEVNO" sense-id "$DEVNO"
        if [ "$LANE" = hercules ]; then
            run ccwctl-busid-dasd-rdc /bin/vfio-guest restored --busid "dev:$DEVNO" \
                --expect "cylinders 20 " --name ccwctl-busid-dasd-rdc \
                -- /bin/ccwctl --vfio "$DEVNO" dasd rdc
        fi
    else
        say "skip ccwctl-busid: ccwctl not built (crates/ccwctl has no binary in this tree)"
    fi
    finish
fi

# --- `/init payloads`: run by `vfio-guest claim` with the mdev; CCW_SUBCHANNEL names its
# subchannel.
SCH=$CCW_SUBCHANNEL

# The DASD differential check runs first, on the image exactly as the host made it (the host
# replays the same programs on its model over a copy of that image).
if [ "$LANE" = hercules ]; then
    run differential /bin/vfio-guest differential --api legacy --uuid "$UUID"
fi
run probe-legacy /bin/ccw-probe legacy "$UUID" "$DEVHEX" "$KIND"
run probe-cdev /bin/ccw-probe cdev "$UUID" "$DEVHEX" "$KIND"

# vfio-guest is there: it claimed the device and runs this script.
if [ "$LANE" = qemu ]; then
    run vfio-info /bin/vfio-guest info --uuid "$UUID"
    run conformance-legacy /bin/vfio-guest conformance --api legacy --uuid "$UUID"
    run conformance-cdev /bin/vfio-guest conformance --api cdev --uuid "$UUID"
    run bench /bin/vfio-guest bench --uuid "$UUID"
    run vcss-bringup-legacy /bin/vfio-guest vcss-bringup --api legacy --uuid "$UUID"
    run vcss-bringup-cdev /bin/vfio-guest vcss-bringup --api cdev --uuid "$UUID" --devno fe.0.1234
else
    run vfio-info /bin/vfio-guest info --uuid "$UUID"
    run conformance-legacy /bin/vfio-guest conformance --api legacy --fixture 3390 --uuid "$UUID"
    run conformance-cdev /bin/vfio-guest conformance --api cdev --fixture 3390 --uuid "$UUID"
    run bench-dasd /bin/vfio-guest bench --fixture 3390 --uuid "$UUID"
    run vcss-bringup-legacy /bin/vfio-guest vcss-bringup --api legacy --fixture 3390 --uuid "$UUID"
    run vcss-bringup-cdev /bin/vfio-guest vcss-bringup --api cdev --fixture 3390 --uuid "$UUID" --devno fe.0.1234
    run vcss-ipl /bin/vfio-guest vcss-ipl --api legacy --uuid "$UUID" --devno fe.0.0190
fi

# ccwctl_check <step> <what to find in the output> <ccwctl args...>: runs ccwctl against the vfio
# device and prints one result line (exit 0 and the expected text in its output).
ccwctl_check() {
    step=$1; want=$2; shift 2
    say "begin $step"
    out=$(/bin/ccwctl --vfio "$UUID" "$@" 2>&1); rc=$?
    echo "$out"
    if [ $rc -eq 0 ] && echo "$out" | grep -qi -e "$want"; then
        echo "$step: 1 passed, 0 failed"
    else
        echo "$step: 0 passed, 1 failed (exit $rc, expected '$want' in the output)"
    fi
    say "end $step exit=$rc"
}

if [ ! -x /bin/ccwctl ]; then
    say "skip ccwctl: not built (crates/ccwctl has no binary in this tree)"
elif ! /bin/ccwctl --help 2>&1 | grep -q -e '--vfio'; then
    say "skip ccwctl: this ccwctl has no --vfio option yet"
elif /bin/ccwctl --vfio "$UUID" sense-id "$SCH" 2>&1 | grep -q 'not available in this build'; then
    say "skip ccwctl: this ccwctl build has --vfio but no vfio backend ($(/bin/ccwctl --vfio "$UUID" sense-id "$SCH" 2>&1 | head -n 1))"
else
    ccwctl_check ccwctl-sense-id "$CU" sense-id "$SCH"
    if [ -f /examples/sense-id.ccw ]; then
        ccwctl_check ccwctl-example . run "$SCH" /examples/sense-id.ccw
    else
        say "skip ccwctl-example: no examples/sense-id.ccw in this tree"
    fi
    # The DASD driver (ccw-dasd) over the real vfio-ccw device: Read Device Characteristics of
    # the lane's 20-cylinder 3390.
    if [ "$LANE" = hercules ]; then
        ccwctl_check ccwctl-dasd-rdc "cylinders 20 " dasd rdc
    fi
fi

exit 0
