//! The one error type of this crate: what failed, the errno, and what to do about it.

use std::io;

/// What went wrong talking to the kernel. Every variant keeps the operation and, where
/// the kernel gave one, the errno.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// EPERM: the process may not change the clock.
    #[error(
        "{operation}: permission denied (EPERM). The process lacks CAP_SYS_TIME. Grant just \
         that capability (systemd: AmbientCapabilities=CAP_SYS_TIME; Kubernetes: \
         securityContext.capabilities.add: [\"SYS_TIME\"]; Docker: --cap-add SYS_TIME), \
         never --privileged; or run observe-only, which needs no privilege"
    )]
    PermissionDenied {
        /// The operation.
        operation: &'static str,
    },
    /// A PTP hardware clock device that does not exist.
    #[error("{path}: no such PTP hardware clock (is the driver loaded? ptp_kvm for VM guests)")]
    NoSuchDevice {
        /// The path tried.
        path: String,
    },
    /// An interface whose driver has no PTP hardware clock.
    #[error("interface {interface} has no PTP hardware clock (ethtool reports none)")]
    NoPhc {
        /// The interface.
        interface: String,
    },
    /// An interface that does not exist.
    #[error("no network interface named {interface}")]
    NoSuchInterface {
        /// The name given.
        interface: String,
    },
    /// A capability the clock or interface lacks.
    #[error("{what} is not supported: {detail}")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
        /// Why not.
        detail: String,
    },
    /// A value outside what the kernel or the clock accepts.
    #[error("{what} = {value} is out of range ({limit})")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value.
        value: f64,
        /// The limit, in words.
        limit: String,
    },
    /// A datagram arrived without the timestamp that was asked for.
    #[error("no {what} timestamp in the control messages")]
    MissingTimestamp {
        /// Which timestamp ("receive" or "transmit").
        what: &'static str,
    },
    /// A file that is not a ClockBound segment this crate can read.
    #[error("{path}: not a usable ClockBound segment: {reason}")]
    SegmentInvalid {
        /// The segment's path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The segment's writer kept it mid-update through every retry.
    #[error("{path}: the ClockBound segment was being written through {retries} reads")]
    SegmentBusy {
        /// The segment's path.
        path: String,
        /// Reads tried.
        retries: u32,
    },
    /// A published bound that gives no reading (a writer on another clock, a bad drift).
    #[error("reading the ClockBound segment: {0}")]
    BoundRead(#[from] tempora_clock_types::BoundReadError),
    /// Waiting for a bound ran out of time.
    #[error("no bound within {within_s} s with a trusted status after {waited_s} s (last: {last})")]
    WaitTimedOut {
        /// The bound asked for, seconds.
        within_s: f64,
        /// How long it waited, seconds.
        waited_s: f64,
        /// What was last read.
        last: String,
    },
    /// Any other failure of a system call.
    #[error("{operation}: {source}")]
    Os {
        /// The operation.
        operation: &'static str,
        /// The error, with its errno.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The error of the last failed system call, mapped to a variant with advice.
    pub(crate) fn last_os(operation: &'static str) -> Self {
        Self::from_io(operation, io::Error::last_os_error())
    }

    /// An I/O error, mapped to a variant with advice.
    pub(crate) fn from_io(operation: &'static str, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::EPERM) => Self::PermissionDenied { operation },
            _ => Self::Os { operation, source },
        }
    }

    /// The errno, where the kernel gave one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::PermissionDenied { .. } => Some(libc::EPERM),
            Self::NoSuchDevice { .. } => Some(libc::ENOENT),
            Self::Os { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Whether this is the missing-privilege error (so a daemon can fall back to
    /// observe-only).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::PermissionDenied { .. })
    }
}
