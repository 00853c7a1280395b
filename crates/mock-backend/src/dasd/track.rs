// SPDX-License-Identifier: Apache-2.0 OR MIT

//! One CKD track as a Hercules image stores it: a 5-byte home address (flag byte, CC, HH), then
//! count-key-data records (8-byte count: CC HH R KL DLDL, big-endian), then eight `0xFF` bytes.
//! The rest of the track slot is zero.
//!
//! Parsing is strict: a track whose home address names another track, whose records overrun
//! the slot or that lacks the end marker is reported as an invalid track format, never
//! half-returned.

use ccw_types::eckd::{COUNT_LEN, Count, TRACK_SLOT, TrackAddr};

/// Size of the home address.
pub const HA_LEN: usize = 5;
/// The end-of-track marker.
pub const EOT: [u8; 8] = [0xFF; 8];

/// One record: count, key and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The count field (its lengths match `key` and `data`).
    pub count: Count,
    /// The key area.
    pub key: Vec<u8>,
    /// The data area.
    pub data: Vec<u8>,
}

impl Record {
    /// A record with the given id and areas; the count's lengths are taken from them.
    ///
    /// # Panics
    /// If `key` is longer than 255 bytes or `data` longer than 65535 bytes.
    pub fn new(id: [u8; 5], key: Vec<u8>, data: Vec<u8>) -> Self {
        let count = Count {
            cyl: u16::from_be_bytes([id[0], id[1]]),
            head: u16::from_be_bytes([id[2], id[3]]),
            record: id[4],
            key_len: u8::try_from(key.len()).expect("key longer than 255 bytes"),
            data_len: u16::try_from(data.len()).expect("data longer than 65535 bytes"),
        };
        Record { count, key, data }
    }
    /// Stored size: count + key + data.
    pub fn stored_len(&self) -> usize {
        COUNT_LEN + self.key.len() + self.data.len()
    }
}

/// Why a stored track could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackFormatError {
    /// The home address does not name this track (or the slot was never formatted).
    #[error("home address {found:02x?} does not match {expected}")]
    HomeAddress {
        /// The track that was read.
        expected: TrackAddr,
        /// The 5 stored bytes.
        found: [u8; 5],
    },
    /// A record runs past the end of the track slot.
    #[error("record {index} at offset {offset} overruns the track")]
    Overrun {
        /// Position of the record on the track (0 = R0).
        index: usize,
        /// Byte offset of its count field.
        offset: usize,
    },
    /// The records do not fit in a track slot.
    #[error("track contents of {0} bytes exceed the {TRACK_SLOT}-byte track")]
    TooLong(usize),
}

/// A parsed track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// The track's address (from the home address).
    pub addr: TrackAddr,
    /// Flag byte of the home address.
    pub ha_flag: u8,
    /// The records in order; `records[0]` is normally R0.
    pub records: Vec<Record>,
}

impl Track {
    /// A freshly formatted track: home address and a standard 8-byte R0 of zeros.
    pub fn empty(addr: TrackAddr) -> Self {
        let mut id = [0u8; 5];
        id[..4].copy_from_slice(&addr.to_cchh());
        Track {
            addr,
            ha_flag: 0,
            records: vec![Record::new(id, Vec::new(), vec![0; 8])],
        }
    }

    /// The home address as Read Home Address transfers it: flag, CC, HH.
    pub fn home_address(&self) -> [u8; HA_LEN] {
        let c = self.addr.to_cchh();
        [self.ha_flag, c[0], c[1], c[2], c[3]]
    }

    /// Stored size of the used part of the track (home address, records, end marker).
    pub fn used_len(&self) -> usize {
        HA_LEN + self.records.iter().map(Record::stored_len).sum::<usize>() + EOT.len()
    }

    /// Parses one track slot and checks it belongs to `expected`.
    pub fn parse(slot: &[u8], expected: TrackAddr) -> Result<Track, TrackFormatError> {
        let mut ha = [0u8; HA_LEN];
        let n = slot.len().min(HA_LEN);
        ha[..n].copy_from_slice(&slot[..n]);
        if n < HA_LEN || ha[1..5] != expected.to_cchh() {
            return Err(TrackFormatError::HomeAddress {
                expected,
                found: ha,
            });
        }
        let mut records = Vec::new();
        let mut off = HA_LEN;
        loop {
            let Some(cb) = slot.get(off..off + COUNT_LEN) else {
                return Err(TrackFormatError::Overrun {
                    index: records.len(),
                    offset: off,
                });
            };
            if cb == EOT {
                break;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(cb);
            let count = Count::from_bytes(b);
            let key_at = off + COUNT_LEN;
            let data_at = key_at + count.key_len as usize;
            let end = data_at + count.data_len as usize;
            // The end marker must still fit after this record.
            if end + EOT.len() > slot.len() {
                return Err(TrackFormatError::Overrun {
                    index: records.len(),
                    offset: off,
                });
            }
            records.push(Record {
                count,
                key: slot[key_at..data_at].to_vec(),
                data: slot[data_at..end].to_vec(),
            });
            off = end;
        }
        Ok(Track {
            addr: expected,
            ha_flag: ha[0],
            records,
        })
    }

    /// Serialises the track into a full, zero-padded track slot.
    pub fn to_slot(&self) -> Result<Vec<u8>, TrackFormatError> {
        let used = self.used_len();
        if used > TRACK_SLOT {
            return Err(TrackFormatError::TooLong(used));
        }
        let mut out = Vec::with_capacity(TRACK_SLOT);
        out.extend_from_slice(&self.home_address());
        for r in &self.records {
            out.extend_from_slice(&r.count.to_bytes());
            out.extend_from_slice(&r.key);
            out.extend_from_slice(&r.data);
        }
        out.extend_from_slice(&EOT);
        out.resize(TRACK_SLOT, 0);
        Ok(out)
    }

    /// Position of the record whose id (CCHHR) is `id`.
    pub fn find(&self, id: [u8; 5]) -> Option<usize> {
        self.records.iter().position(|r| r.count.id() == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        let addr = TrackAddr::new(3, 4);
        let mut t = Track::empty(addr);
        let mut id = [0u8; 5];
        id[..4].copy_from_slice(&addr.to_cchh());
        id[4] = 1;
        t.records
            .push(Record::new(id, b"KEY1".to_vec(), vec![7; 4096]));
        let slot = t.to_slot().unwrap();
        assert_eq!(slot.len(), TRACK_SLOT);
        assert_eq!(Track::parse(&slot, addr).unwrap(), t);
        assert_eq!(t.find(id), Some(1));
        // Wrong track.
        assert!(matches!(
            Track::parse(&slot, TrackAddr::new(3, 5)),
            Err(TrackFormatError::HomeAddress { .. })
        ));
        // A record whose lengths run past the slot.
        let mut bad = slot.clone();
        bad[HA_LEN + 16 + 6..HA_LEN + 16 + 8].copy_from_slice(&0xFFF0u16.to_be_bytes());
        bad[HA_LEN + 16 + 5] = 0xFF;
        let mut long = bad.clone();
        long.truncate(20_000);
        assert!(matches!(
            Track::parse(&long, addr),
            Err(TrackFormatError::Overrun { index: 1, .. })
        ));
        // Missing end marker.
        let mut no_eot = slot;
        let eot_at = t.used_len() - 8;
        no_eot[eot_at..].fill(0);
        no_eot.truncate(eot_at + 4);
        assert!(Track::parse(&no_eot, addr).is_err());
        // An all-zero (never formatted) slot.
        assert!(Track::parse(&vec![0; TRACK_SLOT], TrackAddr::new(0, 1)).is_err());
    }

    #[test]
    fn too_long_is_refused() {
        let addr = TrackAddr::new(0, 0);
        let mut t = Track::empty(addr);
        t.records
            .push(Record::new([0, 0, 0, 0, 1], vec![], vec![0; TRACK_SLOT]));
        assert!(matches!(t.to_slot(), Err(TrackFormatError::TooLong(_))));
    }
}
