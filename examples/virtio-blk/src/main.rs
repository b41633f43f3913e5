//! `virtio-blk-dm --domid N --sbdf [SSSS:]BB:DD.F --image FILE [--readonly]
//! [--serial TEXT]`: serves FILE (a file or a block device) to domain N as a
//! virtio-blk disk on PCI function SBDF, an IOREQ server of its own beside
//! the guest's QEMU. It runs until SIGTERM, SIGINT or SIGHUP, or until the
//! domain is gone (looked at once a second), then tears the server down and
//! exits 0. Bad arguments exit 2 with the reason and the usage; a failure
//! to set up or to serve exits 1. Each step is a line on stderr.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use virtio_blk::{pci_function, serve, Block, End, FileStorage, Storage, SECTOR};
use xendevicemodel::{DeviceModel, DomId, Errno};
use xendevicemodel_ioreq::{Bus, Config, Handler, Sbdf, Session};

const USAGE: &str =
    "usage: virtio-blk-dm --domid N --sbdf [SSSS:]BB:DD.F --image FILE [--readonly] [--serial TEXT (at most 20 bytes)]";
/// Domain ids from here up are Xen's own (DOMID_FIRST_RESERVED).
const DOMID_FIRST_RESERVED: u32 = 0x7ff0;
/// How often the loop looks whether the domain is still there.
const LIVENESS: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Args {
    domid: DomId,
    sbdf: Sbdf,
    image: String,
    readonly: bool,
    serial: String,
}

/// `[SSSS:]BB:DD.F` in hexadecimal (the function in 0-7).
fn parse_sbdf(s: &str) -> Result<Sbdf, String> {
    let bad = || format!("--sbdf {s:?}: not [SSSS:]BB:DD.F (hexadecimal; device 00-1f, function 0-7)");
    let (rest, function) = s.rsplit_once('.').ok_or_else(bad)?;
    let parts: Vec<&str> = rest.split(':').collect();
    let (segment, bus, device) = match parts[..] {
        [b, d] => ("0", b, d),
        [s, b, d] => (s, b, d),
        _ => return Err(bad()),
    };
    let hex = |t: &str, max_len: usize| {
        if t.is_empty() || t.len() > max_len || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        u32::from_str_radix(t, 16).map_err(|_| bad())
    };
    let (seg, bus, dev, fun) = (hex(segment, 4)?, hex(bus, 2)?, hex(device, 2)?, hex(function, 1)?);
    Sbdf::try_new(seg as u16, bus as u8, dev as u8, fun as u8).map_err(|_| bad())
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let (mut domid, mut sbdf, mut image, mut readonly, mut serial) = (None, None, None, false, None);
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--domid" if domid.is_none() => {
                let v = value(a)?;
                let n: u32 = v.parse().map_err(|_| format!("--domid {v:?}: not a number"))?;
                if n == 0 || n >= DOMID_FIRST_RESERVED {
                    return Err(format!("--domid {n}: not a guest's domain (1 to {})", DOMID_FIRST_RESERVED - 1));
                }
                domid = Some(n as DomId);
            }
            "--sbdf" if sbdf.is_none() => sbdf = Some(parse_sbdf(&value(a)?)?),
            "--image" if image.is_none() => image = Some(value(a)?),
            "--serial" if serial.is_none() => {
                let v = value(a)?;
                if v.len() > virtio_blk::ID_BYTES {
                    return Err(format!("--serial {v:?}: longer than {} bytes", virtio_blk::ID_BYTES));
                }
                serial = Some(v);
            }
            "--readonly" if !readonly => readonly = true,
            "--domid" | "--sbdf" | "--image" | "--serial" | "--readonly" => return Err(format!("{a} given twice")),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        domid: domid.ok_or("--domid is missing")?,
        sbdf: sbdf.ok_or("--sbdf is missing")?,
        image: image.ok_or("--image is missing")?,
        readonly,
        serial: serial.unwrap_or_else(|| "xendm-virtio-blk".into()),
    })
}

/// Opens the image: a regular file or a block device of at least one sector.
fn open_image(args: &Args) -> Result<FileStorage, String> {
    let path = &args.image;
    let file: File =
        OpenOptions::new().read(true).write(!args.readonly).open(path).map_err(|e| format!("--image {path:?}: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("--image {path:?}: {e}"))?;
    use std::os::unix::fs::FileTypeExt;
    if !meta.is_file() && !meta.file_type().is_block_device() {
        return Err(format!("--image {path:?}: neither a regular file nor a block device"));
    }
    let storage = FileStorage::new(file).map_err(|e| format!("--image {path:?}: {e}"))?;
    if storage.len() < SECTOR {
        return Err(format!("--image {path:?}: {} bytes, less than one sector ({SECTOR})", storage.len()));
    }
    Ok(storage)
}

/// Whether Xen says the domain (or our server in it) is gone.
fn gone(e: Errno) -> bool {
    e == Errno::ESRCH || e == Errno::ENOENT
}

fn run(args: Args, storage: FileStorage) -> Result<(), String> {
    let sectors = storage.len() / SECTOR;
    let dm = Arc::new(DeviceModel::open().map_err(|e| format!("opening privcmd: {e}"))?);
    let block = Block::new(storage, args.readonly, &args.serial);
    let mut bus = Bus::new();
    let dev = bus.add(pci_function(args.sbdf, block));
    let config = Config { stop_on_signals: true, ..Config::default() };
    let domid = args.domid;
    let mut session =
        Session::open(dm.clone(), domid, config).map_err(|e| format!("setting up the ioreq server: {e}"))?;
    let id = session.id();
    bus.attach(session.server()).map_err(|e| format!("claiming {}: {e}", args.sbdf))?;
    eprintln!(
        "virtio-blk-dm: serving {} ({sectors} sectors{}) as {} of domain {domid}, ioreq server {id}, {} vCPU(s)",
        args.image,
        if args.readonly { ", read-only" } else { "" },
        args.sbdf,
        session.nr_vcpus()
    );
    // Xen answers for our server until the domain goes.
    let domain_gone = || match dm.get_ioreq_server_info(domid, id, false) {
        Err(e) if gone(e.errno()) => Some(format!("domain {domid} is gone ({e})")),
        _ => None,
    };
    let why = match serve(&mut session, &mut bus, LIVENESS, domain_gone) {
        Ok(End::Signal(s)) => format!("signal {s}"),
        Ok(End::Stopped) => "stopped".to_string(),
        Ok(End::Gone(why)) => why,
        Err(e) => return Err(format!("serving: {e}")),
    };
    let t = bus.device(dev);
    let (s, b, v, i) = (session.stats(), t.device().stats(), t.virtio().stats(), t.interrupt_stats());
    eprintln!(
        "virtio-blk-dm: {why}: {} requests served ({} notifications), {} reads ({} bytes), {} writes ({} bytes), \
         {} flushes, {} get-id, {} errors, {} unsupported; interrupts: {} MSI-X, {} INTx, {} held pending; {} resets",
        s.served,
        v.notifies,
        b.reads,
        b.bytes_read,
        b.writes,
        b.bytes_written,
        b.flushes,
        b.get_ids,
        b.errors,
        b.unsupported,
        i.msix,
        i.intx_raised,
        i.pending,
        v.resets
    );
    match session.close() {
        Ok(()) => eprintln!("virtio-blk-dm: server {id} torn down"),
        // A dead domain takes its server with it.
        Err(e) if gone(e.errno()) => eprintln!("virtio-blk-dm: server {id} went with the domain"),
        Err(e) => return Err(format!("tearing down server {id}: {e}")),
    }
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    // An image that cannot be served is a bad argument too.
    let parsed = parse_args(&argv).and_then(|a| open_image(&a).map(|s| (a, s)));
    let (args, storage) = match parsed {
        Ok(a) => a,
        Err(e) => {
            eprintln!("virtio-blk-dm: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args, storage) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("virtio-blk-dm: FAIL {e}");
            ExitCode::FAILURE
        }
    }
}
