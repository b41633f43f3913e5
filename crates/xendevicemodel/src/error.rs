//! Typed errors, and the errno each one stands for in Xen's C API.

use core::fmt;

/// An `errno` value: what the kernel or the hypervisor answered.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

impl Errno {
    /// Operation not permitted (a restricted handle, or the caller's own domain).
    pub const EPERM: Errno = Errno(libc::EPERM);
    /// No such file or directory (no privcmd device node).
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    /// No such device or address.
    pub const ENXIO: Errno = Errno(libc::ENXIO);
    /// No such device.
    pub const ENODEV: Errno = Errno(libc::ENODEV);
    /// Inappropriate ioctl (a kernel without privcmd's DM_OP ioctl).
    pub const ENOTTY: Errno = Errno(libc::ENOTTY);
    /// No such domain.
    pub const ESRCH: Errno = Errno(libc::ESRCH);
    /// Bad descriptor (also: a handle that is closed or was inherited across fork).
    pub const EBADF: Errno = Errno(libc::EBADF);
    /// Out of memory.
    pub const ENOMEM: Errno = Errno(libc::ENOMEM);
    /// Bad address.
    pub const EFAULT: Errno = Errno(libc::EFAULT);
    /// Invalid argument.
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    /// Too many open files.
    pub const EMFILE: Errno = Errno(libc::EMFILE);
    /// Argument list too long: a buffer over privcmd's limit.
    pub const E2BIG: Errno = Errno(libc::E2BIG);
    /// Resource deadlock avoided.
    pub const EDEADLK: Errno = Errno(libc::EDEADLK);
    /// Not implemented.
    pub const ENOSYS: Errno = Errno(libc::ENOSYS);
    /// Operation not supported.
    pub const EOPNOTSUPP: Errno = Errno(libc::EOPNOTSUPP);
    /// Input/output error.
    pub const EIO: Errno = Errno(libc::EIO);

    /// The errno with this number.
    pub const fn from_raw(raw: i32) -> Self {
        Errno(raw)
    }

    /// Its number.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// Its symbolic name (`"ESRCH"`), or `"E?"` for numbers Linux does not define.
    pub fn name(self) -> &'static str {
        match nix::errno::Errno::from_raw(self.0) {
            nix::errno::Errno::UnknownErrno => "E?",
            e => errno_name(e),
        }
    }
}

fn errno_name(e: nix::errno::Errno) -> &'static str {
    // nix's Debug output is the symbolic name; keep it in a static table so
    // that naming an errno never allocates.
    macro_rules! names { ($($n:ident),*) => { match e { $(nix::errno::Errno::$n => stringify!($n),)* _ => "E?" } } }
    names!(
        EPERM,
        ENOENT,
        ESRCH,
        EINTR,
        EIO,
        ENXIO,
        E2BIG,
        ENOEXEC,
        EBADF,
        ECHILD,
        EAGAIN,
        ENOMEM,
        EACCES,
        EFAULT,
        EBUSY,
        EEXIST,
        EXDEV,
        ENODEV,
        ENOTDIR,
        EISDIR,
        EINVAL,
        ENFILE,
        EMFILE,
        ENOTTY,
        EFBIG,
        ENOSPC,
        ESPIPE,
        EROFS,
        EMLINK,
        EPIPE,
        EDOM,
        ERANGE,
        EDEADLK,
        ENAMETOOLONG,
        ENOLCK,
        ENOSYS,
        ENOTEMPTY,
        ELOOP,
        ENODATA,
        ETIME,
        EOVERFLOW,
        EILSEQ,
        EOPNOTSUPP,
        ETIMEDOUT,
        ECONNREFUSED,
        EALREADY,
        EINPROGRESS,
        ECANCELED,
        EOWNERDEAD,
        ENOTRECOVERABLE,
        ERESTART,
        EBADFD,
        EREMOTEIO,
        ENOMEDIUM,
        EUSERS,
        ENOTUNIQ,
        ENOBUFS
    )
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "E?" => write!(f, "Errno({})", self.0),
            n => f.write_str(n),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(nix::errno::Errno::from_raw(self.0).desc())
    }
}

impl std::error::Error for Errno {}

/// Which argument was refused before anything was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidArgument {
    /// A PCI device number above 31.
    PciDevice,
    /// A PCI function number above 7.
    PciFunction,
    /// A memory type other than `HVMMEM_ioreq_server` for `map_mem_type`.
    MemType,
    /// Flags other than `XEN_DMOP_IOREQ_MEM_ACCESS_WRITE` for `map_mem_type`.
    MemTypeFlags,
    /// A dirty bitmap shorter than `ceil(nr / 8)` bytes.
    BitmapTooShort,
    /// More than 2^32 - 1 extents.
    TooManyExtents,
    /// A NULL out-pointer where the C API needs one.
    NullPointer,
    /// A range whose start is after its end.
    Range,
}

impl fmt::Display for InvalidArgument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidArgument::PciDevice => "PCI device number above 31",
            InvalidArgument::PciFunction => "PCI function number above 7",
            InvalidArgument::MemType => "memory type must be HVMMEM_ioreq_server",
            InvalidArgument::MemTypeFlags => "flags other than XEN_DMOP_IOREQ_MEM_ACCESS_WRITE",
            InvalidArgument::BitmapTooShort => "bitmap shorter than ceil(nr / 8) bytes",
            InvalidArgument::TooManyExtents => "more than 2^32 - 1 extents",
            InvalidArgument::NullPointer => "NULL out-pointer",
            InvalidArgument::Range => "range start is after its end",
        })
    }
}

/// Why an operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The kernel or the hypervisor refused the operation with this errno
    /// (`ESRCH`: no such domain, `EPERM`: not permitted or restricted,
    /// `E2BIG`: a buffer over privcmd's limit, ...).
    Os(Errno),
    /// An argument was refused before anything was sent to the hypervisor.
    InvalidArgument(InvalidArgument),
    /// The handle was opened by the parent process: after `fork()`, a child
    /// must open its own. Nothing was sent.
    Inherited,
    /// The operation is not available on this handle (`restrict` on a kernel
    /// without privcmd's DM_OP ioctl).
    Unsupported,
}

impl Error {
    /// The errno Xen's C API reports for this error.
    pub const fn errno(self) -> Errno {
        match self {
            Error::Os(e) => e,
            Error::InvalidArgument(_) => Errno::EINVAL,
            Error::Inherited => Errno::EBADF,
            Error::Unsupported => Errno::EOPNOTSUPP,
        }
    }
}

impl From<Errno> for Error {
    fn from(e: Errno) -> Self {
        Error::Os(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Os(e) => write!(f, "{e}"),
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Error::Inherited => f.write_str("handle was opened before fork(); the child must open its own"),
            Error::Unsupported => f.write_str("operation not supported on this handle"),
        }
    }
}

impl std::error::Error for Error {}

/// The result of a device-model operation.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_errnos() {
        assert_eq!(Errno::ESRCH.name(), "ESRCH");
        assert_eq!(format!("{:?}", Errno::E2BIG), "E2BIG");
        assert_eq!(format!("{:?}", Errno::from_raw(100_000)), "Errno(100000)");
        assert_eq!(Error::Inherited.errno(), Errno::EBADF);
        assert_eq!(Error::InvalidArgument(InvalidArgument::PciDevice).errno(), Errno::EINVAL);
        assert!(core::mem::size_of::<Result<()>>() <= 8, "results fit one register");
        assert_eq!(Error::Unsupported.errno(), Errno::EOPNOTSUPP);
        assert_eq!(Error::from(Errno::EPERM).errno(), Errno::EPERM);
    }
}
