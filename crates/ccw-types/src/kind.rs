// SPDX-License-Identifier: Apache-2.0 OR MIT

//! One small classification shared by every error of ccw-rs.
//!
//! Each crate keeps its rich error ([`DecodeError`](crate::DecodeError), ccw-translate's
//! `TranslateError`, css-core's `CssError` and `BackendError`, ...) and offers `kind()` over
//! this one enum, as embedded-hal does, so generic code branches without string matching and
//! without knowing which layer failed.

/// What kind of failure an error is, for code that branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The subchannel is busy (a program in flight, cc 1/2): EBUSY.
    Busy,
    /// Temporarily unavailable (a request is being processed): try again, EAGAIN.
    Again,
    /// The subchannel is not open for this request: EIO.
    NotOpen,
    /// The subchannel is already open.
    AlreadyOpen,
    /// The device or subchannel does not exist (any more) or is not operational: ENODEV.
    NoDevice,
    /// cc 3 on the requested paths while others remain: EACCES.
    NoPath,
    /// The caller may not do this (permissions).
    PermissionDenied,
    /// Not supported by this component (transport mode, cancel on vfio, ...): EOPNOTSUPP.
    Unsupported,
    /// The request or the bytes given are malformed (a block that does not decode).
    InvalidArgument,
    /// The guest's channel program or ORB is invalid (a real channel subsystem would refuse
    /// it too).
    InvalidProgram,
    /// Guest memory could not be read.
    GuestFault,
    /// A configured limit or a resource was exhausted: ENOMEM.
    Limit,
    /// The mapper failed or broke its contract.
    Mapper,
    /// The request was answered by a close or remove that overtook it, or the event stream
    /// was taken or shut down.
    Closed,
    /// Quiescing did not finish within its retries and timeout.
    Timeout,
    /// An I/O or operating-system failure.
    Io,
}
