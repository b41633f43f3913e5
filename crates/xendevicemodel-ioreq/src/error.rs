//! The session's errors: a failed dm_op (with the typed error of the
//! `xendevicemodel` crate), a failed system call (which one, and its errno),
//! or something refused before anything was asked of the system.

use core::fmt;
use xendevicemodel::Errno;

/// Why a session operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A device-model operation failed.
    Dm(xendevicemodel::Error),
    /// A system call failed: which operation, and its errno.
    Os {
        /// What was being done (`"mmap ioreq pages"`, `"bind event channel"`, ...).
        what: &'static str,
        /// The errno.
        errno: Errno,
    },
    /// The domain has more vCPUs than one ioreq page has slots (128).
    TooManyVcpus(u32),
    /// A range whose start is after its end.
    InvalidRange,
    /// Not possible on this system (which, and why).
    Unsupported(&'static str),
}

impl Error {
    /// The errno that stands for this error.
    pub fn errno(self) -> Errno {
        match self {
            Error::Dm(e) => e.errno(),
            Error::Os { errno, .. } => errno,
            Error::TooManyVcpus(_) | Error::InvalidRange => Errno::EINVAL,
            Error::Unsupported(_) => Errno::EOPNOTSUPP,
        }
    }
}

impl From<xendevicemodel::Error> for Error {
    fn from(e: xendevicemodel::Error) -> Self {
        Error::Dm(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Dm(e) => write!(f, "device-model operation failed: {e}"),
            Error::Os { what, errno } => write!(f, "{what}: {errno} ({errno:?})"),
            Error::TooManyVcpus(n) => write!(f, "{n} vCPUs: one ioreq page serves at most 128"),
            Error::InvalidRange => f.write_str("range start is after its end"),
            Error::Unsupported(why) => write!(f, "not supported: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// The result of a session operation.
pub type Result<T> = core::result::Result<T, Error>;
