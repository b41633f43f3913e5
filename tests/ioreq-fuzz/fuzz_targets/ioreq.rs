//! Coverage-guided fuzzing (libFuzzer) of what a guest and a hypervisor can
//! put in front of an ioreq session: arbitrary 32-byte slots (any state,
//! type, size, count, flags), arbitrary buffered entries and pointers,
//! notifications on ports nobody bound, and arbitrary device answers,
//! against a session on the simulated hypervisor.
//!
//! After every operation, what must hold:
//! - a slot that was not READY is not written at all;
//! - a READY slot ends IORESP_READY, and only its data field and state
//!   nibble changed; the data is the device's answer masked to the size (a
//!   read with immediate data), all ones (a refused such read), or unchanged;
//! - the device saw only accesses inside the request's span (address and
//!   guest-memory arithmetic checked in 128 bits), at most `count` of them,
//!   and only for requests that `decode` accepted;
//! - guest memory changed only inside the span a read with guest data covers;
//! - the buffered ring is drained (read pointer = write pointer) and only
//!   writes reached the device from it;
//! - `decode` of the raw bytes agrees with what the session did.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use xendevicemodel::Logger;
use xendevicemodel_ioreq::abi::*;
use xendevicemodel_ioreq::request::decode;
use xendevicemodel_ioreq_sim::SimXen;
use xendevicemodel_ioreq::*;

/// Records accesses; answers with the value the input gives, and returns
/// requests' values with bits flipped (`extra`), upper ones included: the
/// session must mask what a device returns.
struct Probe {
    answer: u64,
    extra: u64,
    seen: Vec<(IoAccess, Option<u64>)>,
}

impl Handler for Probe {
    fn read(&mut self, _: &mut Ctx<'_>, a: IoAccess) -> u64 {
        self.seen.push((a, None));
        self.answer
    }
    fn write(&mut self, _: &mut Ctx<'_>, a: IoAccess, v: u64) {
        assert_eq!(v & !a.size.mask(), 0, "a write value wider than its access: {a:?} {v:#x}");
        self.seen.push((a, Some(v)));
    }
    fn request(&mut self, ctx: &mut Ctx<'_>, req: &Request) -> u64 {
        serve(self, ctx, req) ^ self.extra
    }
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (h, t) = self.0.split_first_chunk::<N>()?;
        self.0 = t;
        Some(*h)
    }
    fn u8(&mut self) -> Option<u8> {
        self.bytes::<1>().map(|b| b[0])
    }
    fn u64(&mut self) -> Option<u64> {
        self.bytes::<8>().map(u64::from_le_bytes)
    }
}

/// Whether `[at, at + len)` lies within the span of `count` elements of
/// `size` bytes from `base` (downwards with `df`), in 128-bit arithmetic.
fn within(at: u64, len: u64, base: u64, size: u64, count: u64, df: bool) -> bool {
    let (lo, hi) = if df {
        (base as i128 - ((count as i128 - 1) * size as i128), base as i128 + size as i128)
    } else {
        (base as i128, base as i128 + (count as i128) * size as i128)
    };
    lo >= 0 && hi <= 1i128 << 64 && (at as i128) >= lo && (at as i128 + len as i128) <= hi
}

fn check_sync(xen: &SimXen, session: &mut Session, probe: &mut Probe, vcpu: u32, b: [u8; 32]) {
    let cpu = xen.vcpu(vcpu);
    let guest_before = xen.guest_memory();
    cpu.slot().store_bytes(&b);
    let raw = RawIoreq::from_bytes(&b);
    let stats_before = session.stats();
    probe.seen.clear();
    cpu.notify();
    session.run_once(probe, Some(Duration::ZERO)).unwrap();
    let after = cpu.slot().to_bytes();
    if raw.state != STATE_IOREQ_READY {
        assert_eq!(after, b, "a slot in state {} was written", raw.state);
        assert!(probe.seen.is_empty());
        // A free slot, or an answer not yet taken, is no request (not even a
        // refusal); other states are refused.
        if raw.state == STATE_IOREQ_NONE || raw.state == STATE_IORESP_READY {
            assert_eq!(session.stats().spurious, stats_before.spurious + 1);
        } else {
            assert_eq!(session.stats().ignored, stats_before.ignored + 1);
        }
        return;
    }
    assert_eq!(after[30] & 0x0f, STATE_IORESP_READY);
    assert_eq!(after[30] & 0xf0, b[30] & 0xf0, "flag bits changed");
    assert_eq!(
        (&after[..8], &after[16..30], after[31]),
        (&b[..8], &b[16..30], b[31]),
        "more than data and state changed"
    );
    let data = u64::from_le_bytes(after[8..16].try_into().unwrap());
    let decoded = decode(&raw);
    match decoded {
        Err(_) => {
            assert!(probe.seen.is_empty(), "a refused request reached the device");
            assert_eq!(session.stats().refused, stats_before.refused + 1);
            let want = if raw.dir_read && !raw.data_is_ptr { u64::MAX } else { raw.data };
            assert_eq!(data, want);
        }
        Ok(req) => {
            assert_eq!(session.stats().served, stats_before.served + 1);
            let size = req.size();
            if req.wants_value() {
                let s = size.expect("a read has a size");
                let last_read = probe.seen.iter().rev().find(|(_, v)| v.is_none());
                assert!(last_read.is_some(), "a read without a device read");
                assert_eq!(data, (probe.answer ^ probe.extra) & s.mask());
            } else {
                assert_eq!(data, raw.data, "data written for a request that returns none");
            }
            check_accesses(&req, &raw, &probe.seen);
        }
    }
    // Guest memory changes only inside a read-with-guest-data's span.
    let guest_after = xen.guest_memory();
    let span = match decoded {
        Ok(Request::Pio { size, dir: Dir::Read, count, df, data: Data::Guest(g), .. })
        | Ok(Request::Mmio { size, dir: Dir::Read, count, df, data: Data::Guest(g), .. }) => {
            Some((g, size.bytes() as u64, count as u64, df))
        }
        Ok(Request::PciConfig { size, dir: Dir::Read, data: Data::Guest(g), .. }) => {
            Some((g, size.bytes() as u64, 1, false))
        }
        _ => None,
    };
    for (i, (x, y)) in guest_before.iter().zip(&guest_after).enumerate() {
        if x != y {
            let (g, s, c, df) = span.unwrap_or_else(|| panic!("guest byte {i:#x} changed by {decoded:?}"));
            assert!(within(i as u64, 1, g, s, c, df), "guest byte {i:#x} outside {decoded:?}");
        }
    }
    assert_eq!(cpu.wait_response(Duration::ZERO), Some(data));
}

fn check_accesses(req: &Request, raw: &RawIoreq, seen: &[(IoAccess, Option<u64>)]) {
    let count = match *req {
        Request::Pio { count, .. } | Request::Mmio { count, .. } => count as usize,
        Request::PciConfig { .. } => 1,
        Request::TimeOffset { .. } | Request::Invalidate => 0,
    };
    assert!(seen.len() <= count, "{} accesses for a count of {count}", seen.len());
    for (a, v) in seen {
        assert_eq!(Some(a.size), req.size());
        assert_eq!(v.is_some(), req.dir() == Dir::Write, "{a:?} {req:?}");
        match (a.space, *req) {
            (Space::Port(p), Request::Pio { port, .. }) => assert_eq!(p, port),
            (Space::Mmio(m), Request::Mmio { addr, size, count, df, .. }) => {
                assert!(
                    within(m, size.bytes() as u64, addr, size.bytes() as u64, count as u64, df),
                    "{m:#x} outside {req:?}"
                )
            }
            (Space::PciConfig { sbdf, reg }, Request::PciConfig { .. }) => {
                assert_eq!(sbdf.raw() as u64, raw.addr >> 32);
                assert_eq!(reg as u64, raw.addr & 0xffff_ffff);
            }
            _ => panic!("{a:?} for {req:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(head) = input.bytes::<2>() else { return };
    let nr = 1 + (head[0] % 4) as u32;
    let buffered = if head[1] & 1 != 0 { BufIoreq::Atomic } else { BufIoreq::Off };
    let xen = SimXen::new(nr);
    let config = Config { buffered, logger: Logger::silent(), stop_on_signals: false, ..Config::default() };
    let mut session = Session::with_backend(xen.clone(), 1, config).unwrap();
    let mut probe = Probe { answer: 0, extra: 0, seen: Vec::new() };
    // The ports start pending, as Xen's do after a bind: that is no request.
    session.run_once(&mut probe, Some(Duration::ZERO)).unwrap();
    assert_eq!(session.stats(), Stats { spurious: nr as u64, ..Stats::default() });
    for _ in 0..32 {
        let Some(op) = input.u8() else { break };
        match op % 4 {
            0 | 1 => {
                let (Some(v), Some(answer), Some(b)) = (input.u8(), input.u64(), input.bytes::<32>()) else { break };
                probe.answer = answer;
                probe.extra = answer.rotate_left(17) ^ 0xa5a5_0000_0000_0000;
                check_sync(&xen, &mut session, &mut probe, v as u32 % nr, b);
            }
            2 if buffered != BufIoreq::Off => {
                let Some(n) = input.u8() else { break };
                let mut entries = Vec::new();
                for _ in 0..n % 8 {
                    let Some(e) = input.bytes::<8>() else { break };
                    let word = u32::from_le_bytes(e[..4].try_into().unwrap());
                    let data = u32::from_le_bytes(e[4..].try_into().unwrap());
                    entries.push(RawBufIoreq {
                        type_: word as u8,
                        dir_read: word & (1 << 9) != 0,
                        size_log2: ((word >> 10) & 3) as u8,
                        addr: word >> 12,
                        data,
                    });
                }
                probe.seen.clear();
                xen.buffered_write(&entries);
                session.run_once(&mut probe, Some(Duration::ZERO)).unwrap();
                let (r, w) = xen.buffered_pointers();
                assert_eq!(r, w, "buffered ring not drained");
                assert!(probe.seen.iter().all(|(_, v)| v.is_some()), "a buffered read reached the device");
            }
            _ => {
                let Some(port) = input.bytes::<4>() else { break };
                let port = u32::from_le_bytes(port);
                let before = session.stats();
                xen.deliver_port(port);
                session.run_once(&mut probe, Some(Duration::ZERO)).unwrap();
                let after = session.stats();
                if Some(port) == session.buffered_port() {
                    assert_eq!(after, before, "an empty ring to drain");
                } else {
                    // A vCPU's port finds its slot not READY (ignored, or free: spurious); other ports are unknown.
                    let (a, b) = (after.ignored + after.spurious, before.ignored + before.spurious);
                    assert_eq!(a + after.unknown_ports, b + before.unknown_ports + 1);
                    assert_eq!(session.ports().contains(&port), a == b + 1);
                }
            }
        }
    }
    drop(session);
    assert!(!xen.server_exists());
});
