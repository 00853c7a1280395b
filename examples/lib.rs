// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A VMM skeleton on vcss, for the examples and tests of this crate.
//!
//! [`Vm`] is what a VMM on s390x keeps for its guest's I/O: the guest's channel subsystem
//! ([`vcss::Vcss`]), the guest memory, and the host side of its passed-through devices
//! ([`vcss::passthrough::PassthroughHost`]) — here over mock-backend, the simulated host
//! channel subsystem, described by a machine file ([`vcss::machine`]); on s390x the same code
//! runs over vfio-backend. The VMM's loop is [`Vm::pump`]: apply what the host reported
//! ([`vcss::Vcss::host_event`]), and [`Vm::deliver`]: present an I/O interruption to the vCPU
//! the way KVM does (the 12-byte code at lowcore 0xB8).
//!
//! `examples/tiny-vmm.rs` plays the guest's vCPU on top of it.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use ccw_types::{IoInterruptionCode, SubchannelId};
use css_core::Css;
use mock_backend::MockBackend;
use tokio::sync::mpsc;
use vcss::machine::Machine;
use vcss::passthrough::{DevnoMapping, HostEvent, PassthroughHost};
use vcss::{Notification, Vcss};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Anything that went wrong, as one line.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The guest's channel subsystem with its host side.
pub struct Vm {
    /// The guest's channel subsystem: the VMM calls its handlers on each intercepted
    /// instruction.
    pub css: Vcss,
    /// Guest memory (absolute addresses from 0).
    pub mem: Arc<GuestMemoryMmap>,
    /// The simulated host channel subsystem (for tests that make host paths come and go).
    pub backend: Arc<MockBackend>,
    /// The host side of the passed-through devices.
    pub host: PassthroughHost<MockBackend, GuestMemoryMmap>,
    host_events: mpsc::UnboundedReceiver<HostEvent>,
    notifications: std_mpsc::Receiver<Notification>,
    /// Every notification vcss sent, oldest first (what a VMM turns into KVM injections).
    pub notified: Vec<Notification>,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("css", &self.css)
            .finish_non_exhaustive()
    }
}

/// How long [`Vm::wait_interruption`] waits for the host before it gives up.
pub const HOST_TIMEOUT: Duration = Duration::from_secs(5);

impl Vm {
    /// A guest with `mem_size` bytes of memory whose devices are the host `machine`'s,
    /// passed through one to one (guest subchannel n = host subchannel n), device n with
    /// `devnos[n]` (missing entries keep the host's number). The host CHPIDs are declared
    /// to vcss with the machine file's types, as a VMM reads them from host sysfs.
    pub fn new(machine: &Machine, devnos: &[DevnoMapping], mem_size: usize) -> Result<Self, Error> {
        Self::with_faults(machine, devnos, mem_size, mock_backend::FaultPolicy::none())
    }

    /// [`Vm::new`] with the simulated host injecting `faults` (mock-backend's fault policy).
    pub fn with_faults(
        machine: &Machine,
        devnos: &[DevnoMapping],
        mem_size: usize,
        faults: mock_backend::FaultPolicy,
    ) -> Result<Self, Error> {
        let mem = Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(
            GuestAddress(0),
            mem_size,
        )])?);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let backend = Arc::new(
            mock_backend::machine::builder(machine)?
                .guest_memory(&*mem)
                .faults(faults)
                .build()?,
        );
        let css = rt.block_on(async { Css::new(backend.clone()) })?;
        let (host, host_events) = PassthroughHost::new(css, mem.clone(), rt.handle().clone());
        let mut vcss = Vcss::new();
        for c in machine.chpids.values() {
            vcss.add_chpid(c.chpid, c.ty);
        }
        for (i, d) in machine.devices.iter().enumerate() {
            let map = devnos.get(i).copied().unwrap_or(DevnoMapping::Host);
            let hsch = SubchannelId::new(0, 0, d.sch_no);
            let a = rt.block_on(host.attach(hsch, d.sch_no, map))?;
            vcss.add_subchannel_paths(d.sch_no, a.devno, &a.paths, Box::new(a.device))
                .map_err(|_| format!("guest subchannel {} cannot be added", d.sch_no))?;
        }
        let (tx, notifications) = std_mpsc::channel();
        vcss.set_notifier(Box::new(move |n| {
            let _ = tx.send(n);
        }));
        Ok(Self {
            css: vcss,
            mem,
            backend,
            host,
            host_events,
            notifications,
            notified: Vec::new(),
            rt,
        })
    }

    /// The VMM's loop body: waits up to `timeout` for the host's next event, applies it and
    /// every one already waiting. Returns how many were applied.
    pub fn pump(&mut self, timeout: Duration) -> usize {
        let rx = &mut self.host_events;
        let first = self
            .rt
            .block_on(async move { tokio::time::timeout(timeout, rx.recv()).await });
        let mut n = 0;
        if let Ok(Some(ev)) = first {
            self.css.host_event(ev);
            n += 1;
            while let Ok(ev) = self.host_events.try_recv() {
                self.css.host_event(ev);
                n += 1;
            }
        }
        self.notified.extend(self.notifications.try_iter());
        n
    }

    /// Runs the VMM's loop until an I/O interruption enabled by `cr6` is pending (or the host
    /// stays silent for [`HOST_TIMEOUT`]).
    pub fn wait_interruption(&mut self, cr6: u64) -> Result<(), Error> {
        while !self.css.interruption_pending(cr6) {
            if self.pump(HOST_TIMEOUT) == 0 {
                return Err("no I/O interruption: the host reported nothing".into());
            }
        }
        self.notified.extend(self.notifications.try_iter());
        Ok(())
    }

    /// Presents the highest-priority interruption enabled by `cr6` to the vCPU as KVM does:
    /// the 12-byte interruption code at lowcore 0xB8 (prefix 0). Returns it.
    pub fn deliver(&mut self, cr6: u64) -> Result<IoInterruptionCode, Error> {
        let code = self
            .css
            .take_interruption(cr6)
            .ok_or("no I/O interruption pending")?;
        self.mem
            .write_slice(&code.into_bytes(), GuestAddress(0xB8))?;
        Ok(code)
    }

    /// Adds an emulated device (a device model the VMM runs itself, as QEMU emulates
    /// virtio-ccw devices) as guest subchannel 0.0.`sch_no` with device number `devno` on the
    /// virtual channel path `chpid`, declared with type 0x32 (not one of the host's CHPIDs).
    pub fn add_emulated(
        &mut self,
        sch_no: u16,
        devno: u16,
        chpid: u8,
        device: Box<dyn vcss::Device>,
    ) -> Result<(), Error> {
        self.css.add_chpid(chpid, 0x32);
        self.css
            .add_subchannel(sch_no, devno, chpid, device)
            .map_err(|_| format!("guest subchannel {sch_no} cannot be added"))?;
        Ok(())
    }

    /// Lets the host run for `d` (e.g. after injecting a host event), applying what it says.
    pub fn settle(&mut self, d: Duration) {
        while self.pump(d) > 0 {}
    }

    /// Runs `f` on the VMM's runtime (e.g. [`PassthroughHost::attach`]).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The host's SCHIB of `sch` (STORE SUBCHANNEL on the host).
    pub fn host_schib(&self, sch: SubchannelId) -> Result<ccw_types::Schib, Error> {
        Ok(self
            .rt
            .block_on(css_core::Backend::store_schib(&*self.backend, sch))?)
    }

    /// Closes the host subchannels (the VMM's shutdown).
    pub fn shutdown(&self) -> Result<(), Error> {
        self.rt.block_on(self.host.close())?;
        Ok(())
    }
}
