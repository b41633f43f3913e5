//! Typed requests: what a slot of the ioreq page (or an entry of the
//! buffered page) means, decoded and checked before anything acts on it.
//!
//! A request comes from the hypervisor on a guest's behalf, so nothing in it
//! is trusted: [`decode`] refuses sizes other than 1, 2, 4 and 8 (1, 2 and 4
//! for ports and PCI config), a zero count, more than one page of
//! repetitions, address arithmetic that wraps, port numbers above 0xffff,
//! PCI registers beyond 4 KiB, and unknown types. What it returns can be
//! acted on without further checks.

use crate::abi::*;
use core::fmt;
pub use xendevicemodel::Sbdf;

/// Bytes per access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Size {
    /// 1 byte.
    B1 = 1,
    /// 2 bytes.
    B2 = 2,
    /// 4 bytes.
    B4 = 4,
    /// 8 bytes.
    B8 = 8,
}

impl Size {
    /// The size for `bytes`, if it is 1, 2, 4 or 8.
    pub const fn from_bytes(bytes: u32) -> Option<Size> {
        match bytes {
            1 => Some(Size::B1),
            2 => Some(Size::B2),
            4 => Some(Size::B4),
            8 => Some(Size::B8),
            _ => None,
        }
    }

    /// The number of bytes.
    #[inline]
    pub const fn bytes(self) -> u32 {
        self as u32
    }

    /// A mask of the low `8 * bytes` bits.
    #[inline]
    pub const fn mask(self) -> u64 {
        match self {
            Size::B8 => u64::MAX,
            s => (1u64 << (8 * s as u32)) - 1,
        }
    }
}

/// Which way the data goes, seen from the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// The guest reads: the device supplies the value.
    Read,
    /// The guest writes: the device receives the value.
    Write,
}

/// Where a request's data is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Data {
    /// In the request (for a write, already masked to the access size).
    Value(u64),
    /// In guest memory at this guest-physical address (`rep ins/outs/movs`):
    /// element `i` is at `gpa + i * size`, or `gpa - i * size` with `df`.
    Guest(u64),
}

/// A request from the guest, decoded and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Request {
    /// A port access (`in`/`out`, or `rep ins`/`rep outs` with guest data).
    Pio {
        /// The port.
        port: u16,
        /// Bytes per access (1, 2 or 4).
        size: Size,
        /// Read or write.
        dir: Dir,
        /// Repetitions (1 unless the data is in guest memory).
        count: u32,
        /// Guest-memory elements go down rather than up.
        df: bool,
        /// The value, or where the values are.
        data: Data,
    },
    /// An MMIO access; with `count > 1`, element `i` is at `addr + i * size`
    /// (`addr - i * size` with `df`).
    Mmio {
        /// The guest-physical address.
        addr: u64,
        /// Bytes per access.
        size: Size,
        /// Read or write.
        dir: Dir,
        /// Repetitions.
        count: u32,
        /// Elements go down rather than up.
        df: bool,
        /// The value, or where the values are.
        data: Data,
    },
    /// A config space access to a PCI function this server claimed.
    PciConfig {
        /// The function.
        sbdf: Sbdf,
        /// The register (byte offset, `reg + size <= 4096`).
        reg: u16,
        /// Bytes (1, 2 or 4).
        size: Size,
        /// Read or write.
        dir: Dir,
        /// The value, or where it is.
        data: Data,
    },
    /// The guest's RTC offset changed (`IOREQ_TYPE_TIMEOFFSET`): seconds.
    TimeOffset {
        /// The new offset, as Xen sent it.
        offset: u64,
    },
    /// Guest memory mappings must be dropped (`IOREQ_TYPE_INVALIDATE`).
    Invalidate,
}

impl Request {
    /// Read or write (`TimeOffset` and `Invalidate` count as writes).
    pub fn dir(&self) -> Dir {
        match *self {
            Request::Pio { dir, .. } | Request::Mmio { dir, .. } | Request::PciConfig { dir, .. } => dir,
            _ => Dir::Write,
        }
    }

    /// The size of one access, if it has one.
    pub fn size(&self) -> Option<Size> {
        match *self {
            Request::Pio { size, .. } | Request::Mmio { size, .. } | Request::PciConfig { size, .. } => Some(size),
            _ => None,
        }
    }

    /// Whether the answer goes into the slot's data field: a read with
    /// immediate data.
    pub fn wants_value(&self) -> bool {
        self.dir() == Dir::Read && matches!(self.data(), Some(Data::Value(_)))
    }

    fn data(&self) -> Option<Data> {
        match *self {
            Request::Pio { data, .. } | Request::Mmio { data, .. } | Request::PciConfig { data, .. } => Some(data),
            _ => None,
        }
    }
}

/// The most bytes one request may move: Xen splits repeated accesses with
/// guest data at page boundaries (`hvmemul_do_io_addr`), so nothing
/// legitimate is larger; it also bounds the work a single request can cause.
pub const MAX_REQUEST_BYTES: u64 = PAGE_SIZE as u64;

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A size that is not 1, 2, 4 or 8 (or 8 where only up to 4 is defined).
    Size(u32),
    /// A count of zero, or one that moves more than [`MAX_REQUEST_BYTES`].
    Count(u32),
    /// The range of addresses (or of guest memory) wraps around.
    Wraps,
    /// A port number above 0xffff.
    Port(u64),
    /// A PCI register beyond the 4 KiB config space (or not size-aligned to fit).
    PciRegister(u64),
    /// A PCI config access with a count other than 1.
    PciCount(u32),
    /// An unknown `IOREQ_TYPE_*`.
    Type(u8),
    /// A buffered 8-byte write whose second half is missing.
    Incomplete,
    /// The slot was not in the state expected (`STATE_*`).
    State(u8),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Refusal::Size(s) => write!(f, "size {s} is not 1, 2, 4 or 8 (or too large for its type)"),
            Refusal::Count(c) => write!(f, "count {c} is zero or moves more than {MAX_REQUEST_BYTES} bytes"),
            Refusal::Wraps => f.write_str("address range wraps around"),
            Refusal::Port(p) => write!(f, "port {p:#x} above 0xffff"),
            Refusal::PciRegister(r) => write!(f, "PCI register {r:#x} outside the 4 KiB config space"),
            Refusal::PciCount(c) => write!(f, "PCI config access with count {c}"),
            Refusal::Type(t) => write!(f, "unknown ioreq type {t}"),
            Refusal::Incomplete => f.write_str("8-byte buffered write without its second half"),
            Refusal::State(s) => write!(f, "slot in state {s}, expected READY (1)"),
        }
    }
}

/// Decodes and checks a slot of the synchronous page (its state is not
/// looked at: the session checked it).
pub fn decode(r: &RawIoreq) -> Result<Request, Refusal> {
    let dir = if r.dir_read { Dir::Read } else { Dir::Write };
    match r.type_ {
        IOREQ_TYPE_PIO | IOREQ_TYPE_COPY => {
            let pio = r.type_ == IOREQ_TYPE_PIO;
            let size = Size::from_bytes(r.size).ok_or(Refusal::Size(r.size))?;
            if pio && size == Size::B8 {
                return Err(Refusal::Size(r.size));
            }
            let bytes = checked_bytes(r.count, size)?;
            let data = data_of(r, dir, size, bytes)?;
            if pio {
                let port = u16::try_from(r.addr).map_err(|_| Refusal::Port(r.addr))?;
                // A port is one address: only guest data repeats.
                let count = if matches!(data, Data::Guest(_)) { r.count } else { 1 };
                Ok(Request::Pio { port, size, dir, count, df: r.df, data })
            } else {
                span(r.addr, bytes, size, r.df)?;
                Ok(Request::Mmio { addr: r.addr, size, dir, count: r.count, df: r.df, data })
            }
        }
        IOREQ_TYPE_PCI_CONFIG => {
            let size = match Size::from_bytes(r.size) {
                Some(s @ (Size::B1 | Size::B2 | Size::B4)) => s,
                _ => return Err(Refusal::Size(r.size)),
            };
            if r.count != 1 {
                return Err(Refusal::PciCount(r.count));
            }
            let reg = r.addr & 0xffff_ffff;
            if reg + size.bytes() as u64 > 4096 {
                return Err(Refusal::PciRegister(reg));
            }
            let data = data_of(r, dir, size, size.bytes() as u64)?;
            Ok(Request::PciConfig { sbdf: Sbdf::from_raw((r.addr >> 32) as u32), reg: reg as u16, size, dir, data })
        }
        IOREQ_TYPE_TIMEOFFSET => Ok(Request::TimeOffset { offset: r.data }),
        IOREQ_TYPE_INVALIDATE => Ok(Request::Invalidate),
        t => Err(Refusal::Type(t)),
    }
}

/// Decodes and checks a buffered entry (`second` is the next entry, which
/// holds the upper half of an 8-byte write). Returns the request and how
/// many entries it used.
pub fn decode_buffered(e: &RawBufIoreq, second: Option<&RawBufIoreq>) -> Result<(Request, u32), Refusal> {
    let size = match e.size_log2 {
        0 => Size::B1,
        1 => Size::B2,
        2 => Size::B4,
        _ => Size::B8,
    };
    let (value, used) = if size == Size::B8 {
        let hi = second.ok_or(Refusal::Incomplete)?;
        (e.data as u64 | ((hi.data as u64) << 32), 2)
    } else {
        (e.data as u64 & size.mask(), 1)
    };
    let req = match e.type_ {
        // Xen only buffers writes; a "read" here has nowhere to answer.
        _ if e.dir_read => return Err(Refusal::Type(e.type_)),
        IOREQ_TYPE_PIO if size == Size::B8 => return Err(Refusal::Size(8)),
        IOREQ_TYPE_PIO => {
            Request::Pio { port: e.addr as u16, size, dir: Dir::Write, count: 1, df: false, data: Data::Value(value) }
        }
        IOREQ_TYPE_COPY => {
            Request::Mmio { addr: e.addr as u64, size, dir: Dir::Write, count: 1, df: false, data: Data::Value(value) }
        }
        IOREQ_TYPE_TIMEOFFSET => Request::TimeOffset { offset: value },
        t => return Err(Refusal::Type(t)),
    };
    Ok((req, used))
}

/// `count * size`, refused when zero or over [`MAX_REQUEST_BYTES`].
fn checked_bytes(count: u32, size: Size) -> Result<u64, Refusal> {
    let bytes = count as u64 * size.bytes() as u64;
    if count == 0 || bytes > MAX_REQUEST_BYTES {
        return Err(Refusal::Count(count));
    }
    Ok(bytes)
}

/// The request's data: a guest pointer whose whole span is checked, or the
/// immediate value (a write's masked to the access size).
fn data_of(r: &RawIoreq, dir: Dir, size: Size, bytes: u64) -> Result<Data, Refusal> {
    if r.data_is_ptr {
        span(r.data, bytes, size, r.df)?;
        Ok(Data::Guest(r.data))
    } else if dir == Dir::Write {
        Ok(Data::Value(r.data & size.mask()))
    } else {
        Ok(Data::Value(0))
    }
}

/// Checks that `bytes` from `base` (going up), or the elements down from
/// `base` (with `df`: the last one starts at `base - (bytes - size)`), stay
/// within the 64-bit address space.
fn span(base: u64, bytes: u64, size: Size, df: bool) -> Result<(), Refusal> {
    let ok = if df {
        base.checked_sub(bytes - size.bytes() as u64).and_then(|lo| lo.checked_add(bytes - 1)).is_some()
            && base.checked_add(size.bytes() as u64 - 1).is_some()
    } else {
        base.checked_add(bytes - 1).is_some()
    };
    if ok {
        Ok(())
    } else {
        Err(Refusal::Wraps)
    }
}

/// The address of element `i` of a repeated access from `base`.
#[inline]
pub(crate) fn element(base: u64, i: u32, size: Size, df: bool) -> u64 {
    // In range: `span` checked every element of the request.
    let off = i as u64 * size.bytes() as u64;
    if df {
        base - off
    } else {
        base + off
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(type_: u8, addr: u64, size: u32, count: u32, dir_read: bool) -> RawIoreq {
        RawIoreq {
            type_,
            addr,
            size,
            count,
            dir_read,
            state: STATE_IOREQ_READY,
            data: 0xdead_beef_cafe_f00d,
            ..Default::default()
        }
    }

    #[test]
    fn port_and_mmio() {
        assert_eq!(
            decode(&raw(IOREQ_TYPE_PIO, 0x3f8, 1, 1, false)),
            Ok(Request::Pio {
                port: 0x3f8,
                size: Size::B1,
                dir: Dir::Write,
                count: 1,
                df: false,
                data: Data::Value(0x0d)
            })
        );
        assert_eq!(
            decode(&raw(IOREQ_TYPE_COPY, 0xf000_0008, 4, 1, true)),
            Ok(Request::Mmio {
                addr: 0xf000_0008,
                size: Size::B4,
                dir: Dir::Read,
                count: 1,
                df: false,
                data: Data::Value(0)
            })
        );
        // An immediate port access is one access, whatever the count says.
        assert!(matches!(decode(&raw(IOREQ_TYPE_PIO, 0x80, 2, 7, true)), Ok(Request::Pio { count: 1, .. })));
    }

    #[test]
    fn refusals() {
        for s in [0, 3, 5, 16, u32::MAX] {
            assert_eq!(decode(&raw(IOREQ_TYPE_COPY, 0, s, 1, true)), Err(Refusal::Size(s)));
        }
        assert_eq!(decode(&raw(IOREQ_TYPE_PIO, 0x80, 8, 1, true)), Err(Refusal::Size(8)));
        assert_eq!(decode(&raw(IOREQ_TYPE_PIO, 0x1_0000, 1, 1, true)), Err(Refusal::Port(0x1_0000)));
        assert_eq!(decode(&raw(IOREQ_TYPE_COPY, 0, 4, 0, true)), Err(Refusal::Count(0)));
        assert_eq!(decode(&raw(IOREQ_TYPE_COPY, 0, 4, 1025, true)), Err(Refusal::Count(1025)));
        assert_eq!(decode(&raw(IOREQ_TYPE_COPY, 0, 8, u32::MAX, true)), Err(Refusal::Count(u32::MAX)));
        assert!(decode(&raw(IOREQ_TYPE_COPY, 0, 4, 1024, true)).is_ok());
        assert_eq!(decode(&raw(IOREQ_TYPE_COPY, u64::MAX - 2, 4, 1, true)), Err(Refusal::Wraps));
        assert!(decode(&raw(IOREQ_TYPE_COPY, u64::MAX - 3, 4, 1, true)).is_ok());
        let mut down = raw(IOREQ_TYPE_COPY, 8, 4, 3, true);
        down.df = true; // elements at 8, 4, 0
        assert!(decode(&down).is_ok());
        down.count = 4; // and -4
        assert_eq!(decode(&down), Err(Refusal::Wraps));
        let mut ptr = raw(IOREQ_TYPE_PIO, 0x60, 2, 4, true);
        ptr.data_is_ptr = true;
        ptr.data = u64::MAX - 6; // 8 bytes from there wrap
        assert_eq!(decode(&ptr), Err(Refusal::Wraps));
        ptr.data = u64::MAX - 7;
        assert!(matches!(decode(&ptr), Ok(Request::Pio { count: 4, data: Data::Guest(_), .. })));
        assert_eq!(decode(&raw(3, 0, 1, 1, true)), Err(Refusal::Type(3)));
        assert_eq!(decode(&raw(IOREQ_TYPE_PCI_CONFIG, 0xffd, 4, 1, true)), Err(Refusal::PciRegister(0xffd)));
        assert_eq!(decode(&raw(IOREQ_TYPE_PCI_CONFIG, 0, 8, 1, true)), Err(Refusal::Size(8)));
        assert_eq!(decode(&raw(IOREQ_TYPE_PCI_CONFIG, 0, 4, 2, true)), Err(Refusal::PciCount(2)));
        assert_eq!(decode(&raw(IOREQ_TYPE_PCI_CONFIG, 1 << 31, 1, 1, true)), Err(Refusal::PciRegister(1 << 31)));
    }

    #[test]
    fn pci_config() {
        let sbdf = Sbdf::new(0, 0, 5, 0);
        let addr = ((sbdf.raw() as u64) << 32) | 0x10;
        assert_eq!(
            decode(&raw(IOREQ_TYPE_PCI_CONFIG, addr, 4, 1, false)),
            Ok(Request::PciConfig { sbdf, reg: 0x10, size: Size::B4, dir: Dir::Write, data: Data::Value(0xcafe_f00d) })
        );
        assert_eq!(sbdf.to_string(), "0000:00:05.0");
        assert_eq!(Sbdf::new(0x12, 0x34, 31, 7).to_string(), "0012:34:1f.7");
        assert_eq!((sbdf.device(), sbdf.function(), sbdf.bus(), sbdf.segment()), (5, 0, 0, 0));
    }

    #[test]
    fn buffered() {
        let e = RawBufIoreq { type_: IOREQ_TYPE_COPY, size_log2: 3, addr: 0xabcde, data: 0x1111_2222, dir_read: false };
        let hi = RawBufIoreq { data: 0x3333_4444, ..Default::default() };
        assert_eq!(decode_buffered(&e, None), Err(Refusal::Incomplete));
        let (r, used) = decode_buffered(&e, Some(&hi)).unwrap();
        assert_eq!(used, 2);
        assert!(matches!(r, Request::Mmio { addr: 0xabcde, data: Data::Value(0x3333_4444_1111_2222), .. }));
        let pio = RawBufIoreq { type_: IOREQ_TYPE_PIO, size_log2: 0, addr: 0x70, data: 0x1ff, dir_read: false };
        assert!(matches!(
            decode_buffered(&pio, None),
            Ok((Request::Pio { port: 0x70, data: Data::Value(0xff), .. }, 1))
        ));
        let rd = RawBufIoreq { dir_read: true, ..pio };
        assert_eq!(decode_buffered(&rd, None), Err(Refusal::Type(IOREQ_TYPE_PIO)));
    }

    #[test]
    fn sizes() {
        assert_eq!(Size::B1.mask(), 0xff);
        assert_eq!(Size::B4.mask(), 0xffff_ffff);
        assert_eq!(Size::B8.mask(), u64::MAX);
        assert_eq!(element(100, 3, Size::B4, true), 88);
        assert_eq!(element(100, 3, Size::B2, false), 106);
    }
}
