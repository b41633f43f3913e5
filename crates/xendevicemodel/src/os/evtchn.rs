//! `/dev/xen/evtchn`: event channels bound to another domain's ports, as
//! libxenevtchn reaches them (bind, unbind, notify, unmask, read).

use super::{check, ioc_none, last_errno, owned_fd};
use crate::arch;
use crate::error::Errno;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// `IOCTL_EVTCHN_BIND_INTERDOMAIN`: `struct ioctl_evtchn_bind_interdomain
/// { unsigned int remote_domain, remote_port; }`.
const IOCTL_EVTCHN_BIND_INTERDOMAIN: u32 = ioc_none(b'E', 1, 8);
/// `IOCTL_EVTCHN_UNBIND`: `struct ioctl_evtchn_unbind { unsigned int port; }`.
const IOCTL_EVTCHN_UNBIND: u32 = ioc_none(b'E', 3, 4);
/// `IOCTL_EVTCHN_NOTIFY`: `struct ioctl_evtchn_notify { unsigned int port; }`.
const IOCTL_EVTCHN_NOTIFY: u32 = ioc_none(b'E', 4, 4);
const _: () = assert!(IOCTL_EVTCHN_BIND_INTERDOMAIN == arch::IOCTL_EVTCHN_BIND_INTERDOMAIN);
const _: () = assert!(IOCTL_EVTCHN_UNBIND == arch::IOCTL_EVTCHN_UNBIND);
const _: () = assert!(IOCTL_EVTCHN_NOTIFY == arch::IOCTL_EVTCHN_NOTIFY);

/// `/dev/xen/evtchn`, non-blocking and close-on-exec (closing it unbinds
/// every port still bound).
#[derive(Debug)]
pub struct Evtchn(OwnedFd);

impl Evtchn {
    /// Opens the device.
    pub fn open() -> Result<Self, Errno> {
        owned_fd(c"/dev/xen/evtchn", libc::O_RDWR | libc::O_NONBLOCK).map(Evtchn)
    }

    /// Binds a local port to `remote_port` of `domid`; returns the local port.
    pub fn bind_interdomain(&self, domid: u16, remote_port: u32) -> Result<u32, Errno> {
        let arg: [u32; 2] = [domid as u32, remote_port];
        // SAFETY: the kernel reads two unsigned ints.
        check(unsafe { libc::ioctl(self.0.as_raw_fd(), IOCTL_EVTCHN_BIND_INTERDOMAIN as _, arg.as_ptr()) })
            .map(|p| p as u32)
    }

    /// Unbinds a local port.
    pub fn unbind(&self, port: u32) -> Result<(), Errno> {
        // SAFETY: the kernel reads one unsigned int.
        check(unsafe { libc::ioctl(self.0.as_raw_fd(), IOCTL_EVTCHN_UNBIND as _, &port) }).map(drop)
    }

    /// Notifies the remote end of a local port.
    pub fn notify(&self, port: u32) -> Result<(), Errno> {
        // SAFETY: the kernel reads one unsigned int.
        check(unsafe { libc::ioctl(self.0.as_raw_fd(), IOCTL_EVTCHN_NOTIFY as _, &port) }).map(drop)
    }

    /// Unmasks a port that fired: the device takes port numbers written to it.
    pub fn unmask(&self, port: u32) -> Result<(), Errno> {
        // SAFETY: writes 4 bytes from a local.
        let n = unsafe { libc::write(self.0.as_raw_fd(), (&port as *const u32).cast(), 4) };
        match n {
            4 => Ok(()),
            n if n < 0 => Err(last_errno()),
            _ => Err(Errno::EIO),
        }
    }

    /// Reads the ports that fired into `ports` (0 when none: the device is
    /// non-blocking); they stay masked until [`unmask`](Self::unmask).
    pub fn read(&self, ports: &mut [u32]) -> Result<usize, Errno> {
        // SAFETY: reads at most the buffer's size into it.
        let n = unsafe { libc::read(self.0.as_raw_fd(), ports.as_mut_ptr().cast(), core::mem::size_of_val(ports)) };
        if n >= 0 {
            return Ok(n as usize / 4);
        }
        match last_errno() {
            e if e.raw() == libc::EAGAIN => Ok(0),
            e => Err(e),
        }
    }
}

impl AsFd for Evtchn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for Evtchn {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}
