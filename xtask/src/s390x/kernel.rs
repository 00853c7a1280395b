// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The guest kernel: Linux 6.12 from Debian's `linux-source-6.12`, configured for a small s390x
//! guest with vfio_ccw, cross-built once and cached.
//!
//! No Debian s390x kernel has `CONFIG_VFIO_CCW`. VFIO is built in (not modular) because a modular
//! `vfio_ccw` does not pull in `vfio_iommu_type1`, without which the legacy container API fails.

use std::path::PathBuf;
use std::process::Command;

use super::cache::{self, Cache};
use super::host::Apt;
use crate::util;

/// Options set to `y` on top of `arch/s390/configs/zfcpdump_defconfig`.
const ENABLE: &[&str] = &[
    "VFIO",
    "VFIO_GROUP",
    "VFIO_CONTAINER",
    "VFIO_IOMMU_TYPE1",
    "VFIO_DEVICE_CDEV",
    "VFIO_CCW",
    "VFIO_MDEV",
    "IOMMU_SUPPORT",
    "IOMMUFD",
    "EVENTFD",
    "S390_GUEST",
    "VIRTIO_MENU",
    "VIRTIO_BLK",
    "DEVTMPFS",
    "DEVTMPFS_MOUNT",
    "PROC_FS",
    "SYSFS",
    "TMPFS",
    "SCLP_TTY",
    "SCLP_CONSOLE",
    "SCLP_VT220_TTY",
    "SCLP_VT220_CONSOLE",
    "PRINTK_TIME",
    "MARCH_Z10",
    "DEBUG_INFO_NONE",
    "BLK_DEV_INITRD",
    "RD_GZIP",
    // AF_UNIX sockets (no network devices): tokio's signal handling needs a Unix socket pair, so
    // without them a tokio program such as ccwctl panics at start-up.
    "NET",
    "UNIX",
];

/// Options switched off: not needed in the guest, and they cost build time.
const DISABLE: &[&str] = &[
    "PCI",
    "INET",
    "NETDEVICES",
    "SCSI",
    "ZFCP",
    "BPF_SYSCALL",
    "KVM",
    "DEBUG_INFO_DWARF4",
    "DEBUG_INFO_DWARF5",
    "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT",
];

const SOURCE_PACKAGE: &str = "linux-source-6.12";
const CROSS: [&str; 2] = ["ARCH=s390", "CROSS_COMPILE=s390x-linux-gnu-"];

/// Builds (or finds cached) the guest kernel; returns the bzImage.
pub(crate) fn build(cache: &Cache, apt: &Apt) -> util::Result<PathBuf> {
    let deb = apt.fetch(SOURCE_PACKAGE)?;
    let deb_name = deb
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let key = format!(
        "{deb_name}\ny: {}\nn: {}\nNR_CPUS=4\n",
        ENABLE.join(" "),
        DISABLE.join(" ")
    );
    let dir = cache.dir("kernel")?;
    let image = dir.join("bzImage");
    if cache.is_done("kernel", &key) && image.is_file() {
        eprintln!("xtask s390x: kernel cached ({deb_name})");
        return Ok(image);
    }

    // Unpack the source tarball (once per source package version).
    let src = dir.join("linux");
    if !cache.is_done("kernel-source", &deb_name) || !src.is_dir() {
        let pkg = dir.join("pkg");
        cache::remove(&pkg)?;
        cache::remove(&src)?;
        util::run(Command::new("dpkg").arg("-x").arg(&deb).arg(&pkg))?;
        let tarball = pkg.join(format!("usr/src/{SOURCE_PACKAGE}.tar.xz"));
        let tmp = dir.join("linux.tmp");
        cache::remove(&tmp)?;
        std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        util::run(
            Command::new("tar")
                .arg("-xf")
                .arg(&tarball)
                .arg("--strip-components=1")
                .arg("-C")
                .arg(&tmp),
        )?;
        std::fs::rename(&tmp, &src).map_err(|e| format!("{}: {e}", src.display()))?;
        cache::remove(&pkg)?;
        cache.mark_done("kernel-source", &deb_name)?;
    }

    // Configure: the defconfig, our options, olddefconfig; then verify every option stuck.
    std::fs::copy(
        src.join("arch/s390/configs/zfcpdump_defconfig"),
        src.join(".config"),
    )
    .map_err(|e| format!("copy defconfig: {e}"))?;
    let mut config = Command::new(src.join("scripts/config"));
    config.current_dir(&src);
    for o in ENABLE {
        config.args(["--enable", o]);
    }
    for o in DISABLE {
        config.args(["--disable", o]);
    }
    config.args(["--set-val", "NR_CPUS", "4"]);
    util::run(&mut config)?;
    util::run(
        Command::new("make")
            .current_dir(&src)
            .args(CROSS)
            .arg("olddefconfig"),
    )?;
    let dotconfig =
        std::fs::read_to_string(src.join(".config")).map_err(|e| format!(".config: {e}"))?;
    let lost: Vec<&str> = ENABLE
        .iter()
        .copied()
        .filter(|o| !dotconfig.lines().any(|l| l == format!("CONFIG_{o}=y")))
        .collect();
    if !lost.is_empty() {
        return Err(format!(
            "olddefconfig dropped required options: {}",
            lost.join(" ")
        ));
    }

    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    util::run(
        Command::new("make")
            .current_dir(&src)
            .args(CROSS)
            .arg(format!("-j{jobs}"))
            .arg("-s")
            .arg("bzImage"),
    )?;
    std::fs::copy(src.join("arch/s390/boot/bzImage"), &image)
        .map_err(|e| format!("copy bzImage: {e}"))?;
    cache.mark_done("kernel", &key)?;
    Ok(image)
}
