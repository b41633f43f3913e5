//! How much a request costs the session, against the simulated hypervisor:
//! decoding alone; a round trip in one thread (submit, serve, take the
//! answer: the session's work plus the simulator's queue); a round trip
//! between a vCPU thread and the session thread (blocking on condition
//! variables, and spinning); requests per second with N vCPU threads.
//!   cargo run --release -p xendevicemodel-ioreq --example sim-bench [SECONDS_PER_POINT]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use xendevicemodel::Logger;
use xendevicemodel_ioreq::abi::RawIoreq;
use xendevicemodel_ioreq::request::decode;
use xendevicemodel_ioreq::sim::{self, SimXen, WaitMode};
use xendevicemodel_ioreq::*;

/// One 4-byte register per port.
struct Regs([u32; 256]);
impl Device for Regs {
    fn read(&mut self, _: &mut Ctx<'_>, a: Access) -> u64 {
        match a.space {
            Space::Port(p) => self.0[p as usize & 0xff] as u64,
            _ => u64::MAX,
        }
    }
    fn write(&mut self, _: &mut Ctx<'_>, a: Access, v: u64) {
        if let Space::Port(p) = a.space {
            self.0[p as usize & 0xff] = v as u32;
        }
    }
}

fn session(xen: &Arc<SimXen>) -> Session {
    let config = Config {
        ranges: vec![IoRange::Port { start: 0x500, end: 0x5ff }],
        logger: Logger::stderr(),
        stop_on_signals: false,
        ..Config::default()
    };
    let s = Session::with_backend(xen.clone(), 1, config).expect("session");
    xen.set_recording(false);
    s
}

/// ns per iteration of `f`, the median of 5 runs of `secs / 5` each.
fn time_per(secs: f64, mut f: impl FnMut(u64)) -> f64 {
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed().as_secs_f64() < secs / 5.0 {
            for _ in 0..256 {
                f(n);
                n += 1;
            }
        }
        runs.push(t0.elapsed().as_nanos() as f64 / n as f64);
    }
    runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    runs[2]
}

/// Requests per second with `vcpus` threads each making requests back to
/// back for `secs`, the session serving them in this thread.
fn throughput(vcpus: u32, mode: WaitMode, secs: f64) -> f64 {
    let xen = SimXen::with_mode(vcpus, mode);
    let mut s = session(&xen);
    let done = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..vcpus)
        .map(|v| {
            let cpu = xen.vcpu(v);
            let (done, total) = (done.clone(), total.clone());
            thread::spawn(move || {
                let mut n = 0u64;
                while !done.load(Relaxed) {
                    let r = cpu.request(&sim::pio(0x500 + v as u16, Size::B4, true, 0));
                    assert!(r.is_some(), "no answer");
                    n += 1;
                }
                total.fetch_add(n, SeqCst);
            })
        })
        .collect();
    let stop = s.stopper();
    let d = done.clone();
    let timer = thread::spawn(move || {
        thread::sleep(Duration::from_secs_f64(secs));
        d.store(true, SeqCst);
    });
    let t0 = Instant::now();
    let mut dev = Regs([7; 256]);
    // Serve until the timer fires and every vCPU finished its last request.
    let waiter = thread::spawn(move || {
        for t in threads {
            t.join().unwrap();
        }
        stop.stop();
    });
    assert_eq!(s.run(&mut dev).unwrap(), Exit::Stopped);
    let elapsed = t0.elapsed().as_secs_f64();
    waiter.join().unwrap();
    timer.join().unwrap();
    total.load(SeqCst) as f64 / elapsed
}

fn main() {
    let secs: f64 = std::env::args().nth(1).map_or(1.0, |s| s.parse().expect("seconds"));
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!("xendevicemodel-ioreq simulated benchmark ({cores} cores, {secs} s per point, medians of 5)");

    let raw = sim::pio(0x510, Size::B4, true, 0);
    let ns = time_per(secs, |n| {
        black_box(decode(black_box(&RawIoreq { addr: 0x500 + (n & 0xff), ..raw })).ok());
    });
    println!("decode one request                                  {ns:8.1} ns");

    for mode in [WaitMode::Spin, WaitMode::Block] {
        let xen = SimXen::with_mode(1, mode);
        let mut s = session(&xen);
        let cpu = xen.vcpu(0);
        let mut dev = Regs([7; 256]);
        let ns = time_per(secs, |n| {
            cpu.submit(&sim::pio(0x500 + (n & 0xff) as u16, Size::B4, n & 1 == 0, n));
            s.run_once(&mut dev, Some(Duration::ZERO)).unwrap();
            black_box(cpu.wait_response(Duration::ZERO).expect("answered"));
        });
        println!("round trip, one thread ({mode:?} simulator)              {ns:8.1} ns");
    }

    for mode in [WaitMode::Spin, WaitMode::Block] {
        let rps = throughput(1, mode, secs);
        println!("round trip, vCPU thread <-> session thread ({mode:?}) {:8.1} ns", 1e9 / rps);
    }
    for mode in [WaitMode::Block, WaitMode::Spin] {
        for vcpus in [1, 2, 4, 8] {
            let rps = throughput(vcpus, mode, secs);
            println!("requests/s, {vcpus} vCPU threads ({mode:?})                {rps:10.0}");
        }
    }
}
