//! A real signal ends a session's loop (its own test binary: the handlers
//! are process-wide), and the session then tears the server down.

use std::thread;
use std::time::Duration;
use xendevicemodel::Logger;
use xendevicemodel_ioreq::*;
use xendevicemodel_ioreq_sim::SimXen;

struct Nothing;
impl Handler for Nothing {
    fn read(&mut self, _: &mut Ctx<'_>, _: IoAccess) -> u64 {
        0
    }
    fn write(&mut self, _: &mut Ctx<'_>, _: IoAccess, _: u64) {}
}

#[test]
fn sigterm_ends_run_and_drop_destroys_the_server() {
    let xen = SimXen::new(1);
    let config = Config { logger: Logger::silent(), stop_on_signals: true, ..Config::default() };
    let mut session = Session::with_backend(xen.clone(), 1, config).unwrap();
    let t = thread::spawn(|| {
        thread::sleep(Duration::from_millis(100));
        // SAFETY: kill(2) on our own process with a handled signal.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    });
    assert_eq!(session.run(&mut Nothing).unwrap(), Exit::Signal(libc::SIGTERM));
    t.join().unwrap();
    drop(session);
    assert!(!xen.server_exists());
    let calls = xen.calls();
    assert_eq!(
        calls[calls.len() - 5..],
        [
            "set_ioreq_server_state id=1 enabled=false",
            "destroy_ioreq_server id=1",
            "unbind 5",
            "close events",
            "unmap_ioreq_pages id=1"
        ]
    );
}
