//! The vocabulary of address spaces shared by this crate and the ioreq
//! toolkit: which space a range is in ([`IoSpace`]), a range an IOREQ server
//! claims ([`IoRange`]), one address in a space, where an access goes
//! ([`Space`]), and a PCI function's address ([`Sbdf`]).

use crate::error::{Error, InvalidArgument, Result};
use core::fmt;

/// Which address space a range claimed by an IOREQ server is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoSpace {
    /// I/O ports.
    Port,
    /// Guest-physical memory (MMIO).
    Mmio,
}

/// One address in one of a guest's spaces: where an access goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Space {
    /// A port.
    Port(u16),
    /// A guest-physical address.
    Mmio(u64),
    /// A register of a PCI function's config space.
    PciConfig {
        /// The function.
        sbdf: Sbdf,
        /// The register.
        reg: u16,
    },
}

/// A PCI function's address: segment, bus, device (0-31), function (0-7),
/// packed as Xen packs it (`segment << 16 | bus << 8 | device << 3 |
/// function`, the `XEN_DMOP_PCI_SBDF` encoding).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sbdf(u32);

impl Sbdf {
    /// The function `segment:bus:device.function`; panics (at compile time
    /// in a `const`) for a device above 31 or a function above 7.
    pub const fn new(segment: u16, bus: u8, device: u8, function: u8) -> Self {
        assert!(device <= 0x1f && function <= 7, "PCI device 0-31, function 0-7");
        Sbdf(((segment as u32) << 16) | ((bus as u32) << 8) | ((device as u32) << 3) | function as u32)
    }

    /// [`new`](Self::new) for arguments from elsewhere:
    /// [`Error::InvalidArgument`] for a device above 31 or a function above 7.
    pub const fn try_new(segment: u16, bus: u8, device: u8, function: u8) -> Result<Self> {
        if device > 0x1f {
            return Err(Error::InvalidArgument(InvalidArgument::PciDevice));
        }
        if function > 7 {
            return Err(Error::InvalidArgument(InvalidArgument::PciFunction));
        }
        Ok(Sbdf::new(segment, bus, device, function))
    }

    /// The function whose packed address is `raw` (every value is one).
    pub const fn from_raw(raw: u32) -> Self {
        Sbdf(raw)
    }

    /// The packed address.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The segment.
    pub const fn segment(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// The bus.
    pub const fn bus(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// The device (slot).
    pub const fn device(self) -> u8 {
        ((self.0 >> 3) & 0x1f) as u8
    }

    /// The function.
    pub const fn function(self) -> u8 {
        (self.0 & 7) as u8
    }
}

impl fmt::Display for Sbdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}.{}", self.segment(), self.bus(), self.device(), self.function())
    }
}

impl fmt::Debug for Sbdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A range of a guest's address spaces that an IOREQ server claims
/// ([`DeviceModel::map_range`](crate::DeviceModel::map_range)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoRange {
    /// Ports `start..=end`.
    Port {
        /// First port.
        start: u16,
        /// Last port.
        end: u16,
    },
    /// Guest-physical addresses `start..=end`.
    Mmio {
        /// First address.
        start: u64,
        /// Last address.
        end: u64,
    },
    /// A PCI function's config space.
    Pci(Sbdf),
}

impl IoRange {
    /// Whether the range is well formed (its start is not after its end).
    pub fn is_valid(self) -> bool {
        match self {
            IoRange::Port { start, end } => start <= end,
            IoRange::Mmio { start, end } => start <= end,
            IoRange::Pci(_) => true,
        }
    }

    /// How far `at` is into the range (the register, for a PCI
    /// function's config space), if it is inside.
    #[inline]
    pub fn offset_of(self, at: Space) -> Option<u64> {
        match (self, at) {
            (IoRange::Port { start, end }, Space::Port(p)) => (start <= p && p <= end).then(|| (p - start) as u64),
            (IoRange::Mmio { start, end }, Space::Mmio(a)) => (start <= a && a <= end).then(|| a - start),
            (IoRange::Pci(s), Space::PciConfig { sbdf, reg }) if s == sbdf => Some(reg as u64),
            _ => None,
        }
    }
}

impl fmt::Display for IoRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IoRange::Port { start, end } => write!(f, "port {start:#x}-{end:#x}"),
            IoRange::Mmio { start, end } => write!(f, "mmio {start:#x}-{end:#x}"),
            IoRange::Pci(s) => write!(f, "pci {s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbdfs_pack_as_xen_and_refuse_what_does_not_fit() {
        let s = Sbdf::new(0x1234, 0xab, 0x1f, 7);
        assert_eq!(s.raw(), 0x1234_abff);
        assert_eq!((s.segment(), s.bus(), s.device(), s.function()), (0x1234, 0xab, 0x1f, 7));
        assert_eq!(Sbdf::new(0, 0, 3, 0).raw(), 0x18);
        assert_eq!(s.to_string(), "1234:ab:1f.7");
        assert_eq!(Sbdf::try_new(0, 0, 32, 0), Err(Error::InvalidArgument(InvalidArgument::PciDevice)));
        assert_eq!(Sbdf::try_new(0, 0, 0, 8), Err(Error::InvalidArgument(InvalidArgument::PciFunction)));
        assert_eq!(Sbdf::try_new(0, 1, 31, 7), Ok(Sbdf::new(0, 1, 31, 7)));
        assert_eq!(Sbdf::from_raw(0x1234_abff), s);
    }

    #[test]
    fn ranges() {
        let p = IoRange::Port { start: 0x3f8, end: 0x3ff };
        assert_eq!(p.offset_of(Space::Port(0x3fa)), Some(2));
        assert_eq!(p.offset_of(Space::Port(0x3f8)), Some(0));
        assert_eq!(p.offset_of(Space::Port(0x400)), None);
        assert_eq!(p.offset_of(Space::Port(0x3f7)), None);
        assert_eq!(p.offset_of(Space::Mmio(0x3fa)), None);
        let m = IoRange::Mmio { start: 0xf000_0000, end: 0xf000_0fff };
        assert_eq!(m.offset_of(Space::Mmio(0xf000_0fff)), Some(0xfff));
        assert_eq!(m.offset_of(Space::Mmio(0xefff_ffff)), None);
        assert_eq!(m.offset_of(Space::Port(0)), None);
        let (f, g) = (Sbdf::new(0, 0, 3, 0), Sbdf::new(0, 0, 4, 0));
        assert_eq!(IoRange::Pci(f).offset_of(Space::PciConfig { sbdf: f, reg: 0x40 }), Some(0x40));
        assert_eq!(IoRange::Pci(f).offset_of(Space::PciConfig { sbdf: g, reg: 0x40 }), None);
        assert_eq!(IoRange::Pci(f).offset_of(Space::Port(0x40)), None);
        assert!(p.is_valid() && !IoRange::Mmio { start: 2, end: 1 }.is_valid());
        assert_eq!(m.to_string(), "mmio 0xf0000000-0xf0000fff");
    }
}
