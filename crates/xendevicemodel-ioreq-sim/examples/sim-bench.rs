//! How much a request costs the session, against the simulated hypervisor:
//! decoding alone; a round trip in one thread (submit, serve, take the
//! answer: the session's work plus the simulator's queue), and the same
//! without the session (the simulator's share: the floor); a round trip
//! between a vCPU thread and the session thread (blocking on condition
//! variables, and spinning); requests per second with N vCPU threads.
//!   cargo run --release -p xendevicemodel-ioreq --example sim-bench [SECONDS_PER_POINT]
//!   sim-bench count decode|floor|session N   N iterations of one, for instruction counts
//!                                           (tests/ioreq/bench.sh runs it under callgrind)

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use xendevicemodel::Logger;
use xendevicemodel_ioreq::abi::RawIoreq;
use xendevicemodel_ioreq::request::decode;
use xendevicemodel_ioreq::*;
use xendevicemodel_ioreq_sim::{self as sim, SimXen, WaitMode};

/// One 4-byte register per port.
struct Regs([u32; 256]);
impl Handler for Regs {
    fn read(&mut self, _: &mut Ctx<'_>, a: IoAccess) -> u64 {
        match a.space {
            Space::Port(p) => self.0[p as usize & 0xff] as u64,
            _ => u64::MAX,
        }
    }
    fn write(&mut self, _: &mut Ctx<'_>, a: IoAccess, v: u64) {
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
fn time_per(secs: f64, f: &mut dyn FnMut(u64)) -> f64 {
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

/// What runs a loop body: timed ([`time_per`]) or counted.
type Driver<'a> = &'a mut dyn FnMut(&mut dyn FnMut(u64));

/// The one-thread round trips as loops: `run(f)` calls `f(n)` for each iteration.
fn floor_loop(mode: WaitMode, run: Driver<'_>) {
    let xen = SimXen::with_mode(1, mode);
    let id = xen.create_ioreq_server(1, BufIoreq::Off).unwrap();
    let pages = xen.map_ioreq_pages(1, id, false).unwrap();
    let mut ev = xen.open_events(false).unwrap();
    let port = ev.bind(1, pages.ioreq().slot(0).unwrap().vp_eport()).unwrap();
    let cpu = xen.vcpu(0);
    let mut fired = [0u32; 2];
    run(&mut |n| {
        cpu.submit(&sim::pio(0x500 + (n & 0xff) as u16, Size::B4, n & 1 == 0, n));
        assert_eq!(ev.wait(&mut fired, Some(Duration::ZERO)).unwrap(), Wake::Ports(1));
        ev.unmask(port).unwrap();
        let slot = pages.ioreq().slot(0).unwrap();
        black_box(slot.load());
        slot.set_state(xendevicemodel_ioreq::abi::STATE_IOREQ_INPROCESS);
        slot.set_data(7);
        slot.set_state(xendevicemodel_ioreq::abi::STATE_IORESP_READY);
        ev.notify(port).unwrap();
        black_box(cpu.wait_response(Duration::ZERO).expect("answered"));
    });
}

fn session_loop(mode: WaitMode, run: Driver<'_>) {
    let xen = SimXen::with_mode(1, mode);
    let mut s = session(&xen);
    let cpu = xen.vcpu(0);
    let mut dev = Regs([7; 256]);
    run(&mut |n| {
        cpu.submit(&sim::pio(0x500 + (n & 0xff) as u16, Size::B4, n & 1 == 0, n));
        s.run_once(&mut dev, Some(Duration::ZERO)).unwrap();
        black_box(cpu.wait_response(Duration::ZERO).expect("answered"));
    });
}

fn decode_loop(run: Driver<'_>) {
    let raw = sim::pio(0x510, Size::B4, true, 0);
    run(&mut |n| {
        black_box(decode(black_box(&RawIoreq { addr: 0x500 + (n & 0xff), ..raw })).ok());
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("count") {
        let n: u64 = args.get(3).and_then(|s| s.parse().ok()).expect("count WHAT N");
        let mut run = |f: &mut dyn FnMut(u64)| (0..n).for_each(f);
        match args[2].as_str() {
            "decode" => decode_loop(&mut run),
            "floor" => floor_loop(WaitMode::Spin, &mut run),
            "session" => session_loop(WaitMode::Spin, &mut run),
            w => panic!("count {w}?"),
        }
        return;
    }
    let secs: f64 = args.get(1).map_or(1.0, |s| s.parse().expect("seconds"));
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!("xendevicemodel-ioreq simulated benchmark ({cores} cores, {secs} s per point, medians of 5)");

    let mut ns = 0.0;
    decode_loop(&mut |f| ns = time_per(secs, f));
    println!("decode one request                                  {ns:8.1} ns");
    for mode in [WaitMode::Spin, WaitMode::Block] {
        floor_loop(mode, &mut |f| ns = time_per(secs, f));
        println!("round trip, one thread, simulator alone ({mode:?})        {ns:8.1} ns");
        session_loop(mode, &mut |f| ns = time_per(secs, f));
        println!("round trip, one thread, with the session ({mode:?})       {ns:8.1} ns");
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
