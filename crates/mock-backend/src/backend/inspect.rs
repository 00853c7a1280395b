// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Inspection and test hooks of [`MockBackend`]: storage access without a channel, storage
//! keys, a device's state, unsolicited status, release requests and path changes.

use std::borrow::Borrow;
use std::sync::Arc;

use ccw_translate::Mapper;
use ccw_types::{Crw, DeviceStatus, SubchannelId, crw};
use css_core::{BackendError, BackendErrorKind, BackendEvent, ConditionCode};
use vm_memory::GuestMemoryMmap;

use super::{MockBackend, lock};
use crate::device::DeviceModel;
use crate::instr;
use crate::storage::MappingStats;

impl MockBackend {
    /// Outstanding pins and control areas (to assert that nothing leaked).
    pub fn mapping_stats(&self) -> MappingStats {
        self.inner.storage.stats()
    }

    /// The mapper of the whole simulated host storage (the same for every subchannel).
    pub fn storage_mapper(&self) -> Arc<dyn Mapper> {
        self.inner.storage.clone()
    }

    /// Attaches (or replaces) the guest memory, zero-copy.
    pub fn attach_guest_memory(&self, mem: impl Borrow<GuestMemoryMmap>) {
        self.inner.storage.attach_guest(mem.borrow().clone());
    }

    /// Sets the storage key (and fetch protection) of the 4 KiB page of device address `addr`.
    pub fn set_storage_key(&self, addr: u64, key: u8, fetch_protect: bool) {
        self.inner.storage.set_storage_key(addr, key, fetch_protect);
    }

    /// Reads simulated host storage (arena areas, attached guest memory) without any check but
    /// existence: a debugging and test aid, not a channel access.
    pub fn read_storage(&self, addr: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        self.inner.storage.peek(addr, buf).map_err(|_| {
            BackendError::new(BackendErrorKind::InvalidArgument, "read_storage").with_detail(
                format!("{:#x}+{:#x} is not simulated storage", addr, buf.len()),
            )
        })
    }

    /// Writes simulated host storage (see [`MockBackend::read_storage`]).
    pub fn write_storage(&self, addr: u64, bytes: &[u8]) -> Result<(), BackendError> {
        self.inner.storage.poke(addr, bytes).map_err(|_| {
            BackendError::new(BackendErrorKind::InvalidArgument, "write_storage").with_detail(
                format!("{:#x}+{:#x} is not simulated storage", addr, bytes.len()),
            )
        })
    }

    /// Runs `f` on the device of `sch` (for tests and tools that inspect device state; reach
    /// a concrete model with [`DeviceModel::as_any_mut`]).
    pub fn with_device<R>(
        &self,
        sch: SubchannelId,
        f: impl FnOnce(&mut dyn DeviceModel) -> R,
    ) -> Result<R, BackendError> {
        let s = self.inner.sch(sch, "with_device")?;
        let mut g = lock(&s.state);
        Ok(f(g.channel.model_mut()))
    }

    /// The device presents unsolicited status (e.g. attention) on an idle subchannel: it becomes
    /// status pending with alert status and the interruption is delivered. cc 1 if status was
    /// already pending, cc 2 if a function is in progress.
    pub fn unsolicited(
        &self,
        sch: SubchannelId,
        dstat: DeviceStatus,
    ) -> Result<ConditionCode, BackendError> {
        let s = self.inner.sch(sch, "unsolicited")?;
        let mut g = lock(&s.state);
        if !g.st.schib.pmcw.flags.enabled() {
            // A disabled subchannel does not become status pending.
            return Ok(ConditionCode::Cc3);
        }
        if g.st.status_pending() {
            return Ok(ConditionCode::Cc1);
        }
        if !g.st.schib.scsw.ctrl.fc().is_empty() {
            return Ok(ConditionCode::Cc2);
        }
        instr::unsolicited(&mut g.st, dstat);
        self.inner.deliver(s, &mut g);
        Ok(ConditionCode::Cc0)
    }

    /// The owner of the device asks for it back: a [`BackendEvent::ReleaseRequest`] is queued
    /// (what vfio's request interrupt reports).
    pub fn request_release(&self, sch: SubchannelId) -> Result<(), BackendError> {
        self.inner.sch(sch, "request_release")?;
        let ev = BackendEvent::ReleaseRequest { sch };
        match self.inner.events.try_reserve() {
            Some(slot) => slot.send(ev),
            None => {
                // The queue is full: the request waits for room (it is never dropped).
                let tx = self.inner.events.clone();
                tokio::spawn(async move {
                    let _ = tx.send(ev).await;
                });
            }
        }
        Ok(())
    }

    /// Varies channel paths `mask` of `sch` off- or online: PAM changes and a channel-path
    /// report (ERC permanent error / initialized) is queued for each path.
    pub fn vary_paths(
        &self,
        sch: SubchannelId,
        mask: u8,
        online: bool,
    ) -> Result<(), BackendError> {
        let s = self.inner.sch(sch, "vary_paths")?;
        let mut g = lock(&s.state);
        let mut reports = Vec::new();
        for slot in 0..8 {
            let bit = 0x80u8 >> slot;
            if mask & bit == 0 || g.st.schib.pmcw.pim & bit == 0 {
                continue;
            }
            let p = &mut g.st.schib.pmcw;
            if online {
                p.pam |= bit;
            } else {
                p.pam &= !bit;
            }
            let erc = if online {
                crw::erc::INIT
            } else {
                crw::erc::PERRN
            };
            reports.push(
                Crw::new()
                    .with_rsc(crw::rsc::CHANNEL_PATH)
                    .with_erc(erc)
                    .with_rsid(u16::from(p.chpid[slot])),
            );
        }
        drop(g);
        for c in reports {
            self.inner.report(c, sch);
        }
        Ok(())
    }
}
