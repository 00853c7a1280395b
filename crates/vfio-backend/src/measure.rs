// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Round-trip measurement loops for the in-guest benchmark (`vfio-guest bench`): the same
//! channel program started through [`VfioBackend`] and through a raw pwrite / eventfd / pread
//! loop on the same [`VfioDevice`]. They live in the library so the unit tests drive them
//! against the fake kernel.

use std::time::{Duration, Instant};

use ccw_types::{Irb, Orb};
use css_core::{Backend, BackendError, BackendErrorKind, BackendEvent, ConditionCode};

use crate::backend::{VfioBackend, start_request};
use crate::device::VfioDevice;
use crate::error::error;
use crate::sys::poll_readable;
use crate::uapi;

/// One measured I/O: its round-trip time and the IRB it ended with.
#[derive(Debug, Clone)]
pub struct RoundTrip {
    /// From the start request to the IRB in hand.
    pub elapsed: Duration,
    /// The IRB.
    pub irb: Irb,
}

/// Runs `orb` `n` times on `device` with the least possible machinery: write the io region,
/// block on an eventfd connected to the io interrupt, read the io region. Each I/O may take
/// at most `timeout`.
///
/// Connects its own eventfd to the io interrupt (replacing any other) and disconnects it at
/// the end.
pub fn raw_round_trips(
    device: &VfioDevice,
    orb: &Orb,
    n: usize,
    timeout: Duration,
) -> Result<Vec<RoundTrip>, BackendError> {
    const OP: &str = "raw round trip";
    let efd = device.eventfd(false)?;
    device.set_irq(uapi::VFIO_CCW_IO_IRQ_INDEX, Some(&efd))?;
    let req = start_request(orb);
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let mut out = Vec::with_capacity(n);
    let result = (|| {
        for _ in 0..n {
            let t0 = Instant::now();
            device.write_io(&req)?;
            let ready = poll_readable(&efd, ms).map_err(|e| crate::error::sys_error("poll", e))?;
            if !ready {
                return Err(error(
                    BackendErrorKind::Io,
                    OP,
                    format!("no interruption within {timeout:?}"),
                ));
            }
            efd.read()
                .map_err(|e| error(BackendErrorKind::Io, "eventfd read", e.to_string()))?;
            let region = device.read_io()?;
            let elapsed = t0.elapsed();
            let irb = Irb::read_from(&region.irb_area)
                .map_err(|e| error(BackendErrorKind::Io, "decode IRB", e.to_string()))?;
            out.push(RoundTrip { elapsed, irb });
        }
        Ok(())
    })();
    let disarm = device.set_irq(uapi::VFIO_CCW_IO_IRQ_INDEX, None);
    result?;
    disarm?;
    Ok(out)
}

/// Runs `orb` `n` times through `backend` (START, then the interrupt event from its tokio
/// task). The backend's subchannel must be enabled; `events` is its event stream. The whole
/// run may take at most `n * timeout`.
pub async fn backend_round_trips(
    backend: &VfioBackend,
    events: &mut css_core::EventReceiver,
    orb: &Orb,
    n: usize,
    timeout: Duration,
) -> Result<Vec<RoundTrip>, BackendError> {
    const OP: &str = "backend round trip";
    let sch = backend.subchannel();
    let mut out = Vec::with_capacity(n);
    // One deadline for the whole run (n x timeout), so the measured path has no per-I/O
    // timer: what a consumer awaiting its completion pays.
    let limit = timeout.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    for _ in 0..n {
        let t0 = Instant::now();
        let cc = backend.start(sch, orb).await?;
        if cc != ConditionCode::Cc0 {
            return Err(
                error(BackendErrorKind::Io, OP, format!("START cc {}", cc.value())).on(sch),
            );
        }
        let irb = loop {
            tokio::select! {
                biased;
                ev = events.recv() => match ev {
                    Some(BackendEvent::Interrupt { irb, .. }) => break irb,
                    Some(_) => continue,
                    None => return Err(error(BackendErrorKind::Closed, OP, "event stream closed")),
                },
                () = &mut deadline => {
                    return Err(error(BackendErrorKind::Io, OP, format!("no interruption within {limit:?}")));
                }
            }
        };
        out.push(RoundTrip {
            elapsed: t0.elapsed(),
            irb,
        });
    }
    Ok(out)
}

/// The median of `v` (the upper one for an even count); `None` when empty.
pub fn median(v: &mut [Duration]) -> Option<Duration> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}
