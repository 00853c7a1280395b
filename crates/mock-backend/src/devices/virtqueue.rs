// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A split virtqueue (virtio 1.x §2.7) over a guest's memory, as a device walks it.
//!
//! Written here rather than taken from rust-vmm's `virtio-queue`, for two reasons: that crate
//! works on a `vm_memory::GuestMemory`, while a device behind vcss sees the guest through the
//! object-safe [`vcss::GuestIo`]; and its rings are little-endian only, while a legacy
//! (pre-VERSION_1) virtio-ccw driver lays its rings out in the guest's native byte order,
//! big-endian on s390x. So this is the minimum a block device needs: pop a descriptor chain
//! (direct or through one indirect table), push a used element, publish `avail_event`.
//!
//! Every field is read from guest memory when it is needed and checked before use: an index
//! past the queue, a chain longer than the queue (a loop), an indirect table that is not a
//! whole number of descriptors, a device-readable descriptor after a device-writable one, or
//! memory the guest does not have is a [`VirtqueueError`], never a panic.

use vcss::GuestIo;

/// Descriptor flag: the chain continues at `next`.
const F_NEXT: u16 = 1;
/// Descriptor flag: the buffer is device-writable.
const F_WRITE: u16 = 2;
/// Descriptor flag: the buffer is a table of descriptors.
const F_INDIRECT: u16 = 4;

/// What is wrong with a ring the driver gave; the device then needs a reset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VirtqueueError {
    /// The queue size is not a power of two from 1 to 32768 (split ring, virtio 1.x 2.7).
    #[error("virtqueue: size {0} is not a power of two from 1 to 32768")]
    Size(u16),
    /// The ring or a buffer names guest memory that is not there.
    #[error("virtqueue: guest memory at {0:#x} is not accessible")]
    Memory(u64),
    /// The driver's available index ran more than a queue ahead of the device.
    #[error(
        "virtqueue: available index {avail} is more than the queue size {size} ahead of {seen}"
    )]
    AvailIndex {
        /// The driver's `avail.idx`.
        avail: u16,
        /// The device's next index to take.
        seen: u16,
        /// The queue size.
        size: u16,
    },
    /// A descriptor index (a head or a `next`) is outside its table.
    #[error("virtqueue: descriptor index {index} outside a table of {size}")]
    DescriptorIndex {
        /// The index.
        index: u16,
        /// The table's size.
        size: u32,
    },
    /// A chain has more descriptors than its table: it loops.
    #[error("virtqueue: the chain of head {head} loops (longer than its table)")]
    ChainLoop {
        /// The chain's head.
        head: u16,
    },
    /// An indirect descriptor that is not a whole, non-empty table no longer than the queue
    /// (a chain is at most the queue size, virtio 1.x 2.7.5.3.1), or is chained, or sits
    /// inside an indirect table.
    #[error("virtqueue: bad indirect table at {addr:#x}, {len} bytes, in the chain of head {head}")]
    IndirectTable {
        /// The chain's head.
        head: u16,
        /// The table's address.
        addr: u64,
        /// The table's length.
        len: u32,
    },
    /// A device-readable descriptor follows a device-writable one.
    #[error("virtqueue: readable descriptor after a writable one in the chain of head {head}")]
    Layout {
        /// The chain's head.
        head: u16,
    },
    /// The chain is no request of the device (no room for the header or the status).
    #[error("virtqueue: the chain of head {head} is no request: {what}")]
    Request {
        /// The chain's head.
        head: u16,
        /// What is missing.
        what: &'static str,
    },
}

/// Where the driver put the queue's three parts (CCW_CMD_SET_VQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueAddrs {
    /// Descriptor table.
    pub desc: u64,
    /// Available ring.
    pub avail: u64,
    /// Used ring.
    pub used: u64,
    /// Number of entries.
    pub size: u16,
}

/// One buffer of a chain: guest address, length, whether the device writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Guest address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// Device-writable.
    pub write: bool,
}

/// A split virtqueue as the device sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitQueue {
    /// The driver's addresses.
    pub addrs: QueueAddrs,
    /// Ring fields are little-endian (VERSION_1) or big-endian (legacy on s390x).
    pub little_endian: bool,
    /// The next available-ring entry the device takes.
    pub next_avail: u16,
    /// The device's used index.
    pub used_idx: u16,
}

impl SplitQueue {
    /// A queue at `addrs`, nothing taken yet.
    pub fn new(addrs: QueueAddrs, little_endian: bool) -> Self {
        Self {
            addrs,
            little_endian,
            next_avail: 0,
            used_idx: 0,
        }
    }

    fn read(mem: &dyn GuestIo, addr: u64, buf: &mut [u8]) -> Result<(), VirtqueueError> {
        mem.read_at(addr, buf).map_err(VirtqueueError::Memory)
    }

    fn u16_at(&self, mem: &dyn GuestIo, addr: u64) -> Result<u16, VirtqueueError> {
        let mut b = [0u8; 2];
        Self::read(mem, addr, &mut b)?;
        Ok(if self.little_endian {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn put_u16(&self, mem: &dyn GuestIo, addr: u64, v: u16) -> Result<(), VirtqueueError> {
        let b = if self.little_endian {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        mem.write_at(addr, &b).map_err(VirtqueueError::Memory)
    }

    fn put_u32(&self, mem: &dyn GuestIo, addr: u64, v: u32) -> Result<(), VirtqueueError> {
        let b = if self.little_endian {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        mem.write_at(addr, &b).map_err(VirtqueueError::Memory)
    }

    /// Descriptor `index` of the table at `table`: (addr, len, flags, next).
    fn desc(&self, mem: &dyn GuestIo, table: u64, index: u16) -> Result<Desc, VirtqueueError> {
        let mut b = [0u8; 16];
        Self::read(mem, table.wrapping_add(16 * u64::from(index)), &mut b)?;
        let le = self.little_endian;
        let u64f = |s: &[u8]| {
            let a: [u8; 8] = s.try_into().unwrap_or_default();
            if le {
                u64::from_le_bytes(a)
            } else {
                u64::from_be_bytes(a)
            }
        };
        let u32f = |s: &[u8]| {
            let a: [u8; 4] = s.try_into().unwrap_or_default();
            if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        };
        let u16f = |s: &[u8]| {
            let a: [u8; 2] = s.try_into().unwrap_or_default();
            if le {
                u16::from_le_bytes(a)
            } else {
                u16::from_be_bytes(a)
            }
        };
        Ok(Desc {
            addr: u64f(&b[0..8]),
            len: u32f(&b[8..12]),
            flags: u16f(&b[12..14]),
            next: u16f(&b[14..16]),
        })
    }

    /// Takes the next available chain: its head and buffers, readable ones first. `None` when
    /// the driver made nothing new available.
    pub fn pop(
        &mut self,
        mem: &dyn GuestIo,
    ) -> Result<Option<(u16, Vec<Segment>)>, VirtqueueError> {
        let size = self.checked_size()?;
        let avail = self.u16_at(mem, self.addrs.avail.wrapping_add(2))?;
        let pending = avail.wrapping_sub(self.next_avail);
        if pending == 0 {
            return Ok(None);
        }
        if pending > size {
            return Err(VirtqueueError::AvailIndex {
                avail,
                seen: self.next_avail,
                size,
            });
        }
        let slot = u64::from(self.next_avail % size);
        let head = self.u16_at(mem, self.addrs.avail.wrapping_add(4 + 2 * slot))?;
        let segs = self.chain(mem, head)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(Some((head, segs)))
    }

    fn checked_size(&self) -> Result<u16, VirtqueueError> {
        let size = self.addrs.size;
        if !size.is_power_of_two() {
            return Err(VirtqueueError::Size(size));
        }
        Ok(size)
    }

    fn chain(&self, mem: &dyn GuestIo, head: u16) -> Result<Vec<Segment>, VirtqueueError> {
        let mut segs = Vec::new();
        let mut table = self.addrs.desc;
        let mut table_size = u32::from(self.addrs.size);
        let mut indirect = false;
        let mut index = head;
        let mut walked = 0u32;
        loop {
            if u32::from(index) >= table_size {
                return Err(VirtqueueError::DescriptorIndex {
                    index,
                    size: table_size,
                });
            }
            walked += 1;
            if walked > table_size {
                return Err(VirtqueueError::ChainLoop { head });
            }
            let d = self.desc(mem, table, index)?;
            if d.flags & F_INDIRECT != 0 {
                let too_long = d.len / 16 > u32::from(self.addrs.size);
                if indirect || d.flags & F_NEXT != 0 || d.len == 0 || d.len % 16 != 0 || too_long {
                    return Err(VirtqueueError::IndirectTable {
                        head,
                        addr: d.addr,
                        len: d.len,
                    });
                }
                // The chain continues in the table, from its first entry.
                indirect = true;
                table = d.addr;
                table_size = d.len / 16;
                index = 0;
                walked = 0;
                continue;
            }
            let write = d.flags & F_WRITE != 0;
            if !write && segs.iter().any(|s: &Segment| s.write) {
                return Err(VirtqueueError::Layout { head });
            }
            segs.push(Segment {
                addr: d.addr,
                len: d.len,
                write,
            });
            if d.flags & F_NEXT == 0 {
                return Ok(segs);
            }
            index = d.next;
        }
    }

    /// Puts chain `head` in the used ring with `len` bytes written, then publishes the used
    /// index.
    pub fn push_used(
        &mut self,
        mem: &dyn GuestIo,
        head: u16,
        len: u32,
    ) -> Result<(), VirtqueueError> {
        let slot = u64::from(self.used_idx % self.checked_size()?);
        let elem = self.addrs.used.wrapping_add(4 + 8 * slot);
        self.put_u32(mem, elem, u32::from(head))?;
        self.put_u32(mem, elem.wrapping_add(4), len)?;
        self.used_idx = self.used_idx.wrapping_add(1);
        self.put_u16(mem, self.addrs.used.wrapping_add(2), self.used_idx)
    }

    /// VIRTIO_F_RING_EVENT_IDX: asks the driver to notify again once it makes the entry after
    /// the ones taken available (the `avail_event` field after the used ring).
    pub fn set_avail_event(&self, mem: &dyn GuestIo) -> Result<(), VirtqueueError> {
        let at = self
            .addrs
            .used
            .wrapping_add(4 + 8 * u64::from(self.addrs.size));
        self.put_u16(mem, at, self.next_avail)
    }
}

struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

/// The pieces of guest memory that hold bytes `start..start + len` of the concatenation of
/// `segs`: (guest address, length) in order. Fewer bytes when the segments end first.
pub fn pieces(segs: &[Segment], start: u64, len: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let (mut skip, mut want) = (start, len);
    for s in segs {
        if want == 0 {
            break;
        }
        let l = u64::from(s.len);
        if skip >= l {
            skip -= l;
            continue;
        }
        let n = (l - skip).min(want);
        out.push((s.addr.wrapping_add(skip), n));
        want -= n;
        skip = 0;
    }
    out
}
