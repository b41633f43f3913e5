//! virtio-blk-dm's command line: every bad argument exits 2 with its reason
//! and the usage, before anything is opened; good arguments get as far as
//! the hypervisor (on a machine without Xen: exit 1, "opening privcmd").

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_virtio-blk-dm");

/// Runs the binary: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run virtio-blk-dm");
    let s = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8 output");
    (out.status.code().expect("an exit code, not a signal"), s(out.stdout), s(out.stderr))
}

/// A file of `len` bytes, removed on drop.
struct Tmp(std::path::PathBuf);
impl Tmp {
    fn new(name: &str, len: usize) -> Tmp {
        let p = std::env::temp_dir().join(format!("virtio-blk-args-{}-{name}", std::process::id()));
        std::fs::write(&p, vec![0u8; len]).unwrap();
        Tmp(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn bad_arguments_exit_2_with_the_reason() {
    let img = Tmp::new("good.img", 1 << 20);
    let empty = Tmp::new("empty.img", 100);
    let dir = std::env::temp_dir();
    let dir = dir.to_str().unwrap();
    let good = ["--domid", "3", "--sbdf", "00:05.0", "--image", img.path()];
    let with = |extra: &[&'static str]| -> Vec<String> {
        good.iter().map(|s| s.to_string()).chain(extra.iter().map(|s| s.to_string())).collect()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![], "--domid is missing"),
        (vec!["--domid".into(), "3".into()], "--sbdf is missing"),
        (vec!["--domid".into(), "3".into(), "--sbdf".into(), "0:5.0".into()], "--image is missing"),
        (vec!["--domid".into()], "--domid needs a value"),
        (vec!["--domid".into(), "x3".into()], "--domid \"x3\": not a number"),
        (vec!["--domid".into(), "0".into()], "--domid 0: not a guest's domain (1 to 32751)"),
        (vec!["--domid".into(), "32752".into()], "--domid 32752: not a guest's domain"),
        (vec!["--domid".into(), "99999999999".into()], "not a number"),
        (vec!["--sbdf".into(), "00:20.0".into()], "--sbdf \"00:20.0\": not [SSSS:]BB:DD.F"),
        (vec!["--sbdf".into(), "00:05.8".into()], "--sbdf \"00:05.8\": not"),
        (vec!["--sbdf".into(), "00:05".into()], "--sbdf \"00:05\": not"),
        (vec!["--sbdf".into(), "10000:00:05.0".into()], "--sbdf \"10000:00:05.0\": not"),
        (vec!["--sbdf".into(), "0:0:0:05.0".into()], "not [SSSS:]BB:DD.F"),
        (vec!["--sbdf".into(), "+1:05.0".into()], "not [SSSS:]BB:DD.F"),
        (with(&["--readonly", "--readonly"]), "--readonly given twice"),
        (with(&["--domid", "4"]), "--domid given twice"),
        (with(&["--serial", "this serial is too long"]), "longer than 20 bytes"),
        (with(&["--bogus"]), "unknown argument \"--bogus\""),
        (with(&["3"]), "unknown argument \"3\""),
        (
            vec!["--domid", "3", "--sbdf", "00:05.0", "--image", "/nonexistent/x.img"]
                .into_iter()
                .map(Into::into)
                .collect(),
            "--image \"/nonexistent/x.img\": No such file or directory",
        ),
        (
            vec!["--domid", "3", "--sbdf", "00:05.0", "--image", "/dev/null"].into_iter().map(Into::into).collect(),
            "neither a regular file nor a block device",
        ),
        (
            vec!["--domid", "3", "--sbdf", "00:05.0", "--image", dir, "--readonly"]
                .into_iter()
                .map(Into::into)
                .collect(),
            "neither a regular file nor a block device",
        ),
        (
            vec!["--domid", "3", "--sbdf", "00:05.0", "--image", empty.path()].into_iter().map(Into::into).collect(),
            "100 bytes, less than one sector (512)",
        ),
    ];
    for (args, reason) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = run(&a);
        assert_eq!(code, 2, "{a:?}: {stderr}");
        assert!(stderr.contains(reason), "{a:?}: {stderr:?} does not say {reason:?}");
        assert!(stderr.contains("usage: virtio-blk-dm --domid N"), "{a:?}: no usage in {stderr:?}");
        assert!(stdout.is_empty(), "{a:?}: {stdout:?}");
    }
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!((code, stdout.starts_with("usage: virtio-blk-dm")), (0, true));
    assert_eq!(std::fs::read(img.path()).unwrap(), vec![0u8; 1 << 20], "the image untouched");
}

#[test]
fn good_arguments_reach_the_hypervisor() {
    if std::path::Path::new("/dev/xen/privcmd").exists() {
        eprintln!("skipped: this machine runs on Xen (the guest check serves a real domain)");
        return;
    }
    let img = Tmp::new("noxen.img", 4096);
    for extra in [&[][..], &["--readonly", "--serial", "disk-1"][..]] {
        let mut a = vec!["--domid", "7", "--sbdf", "0000:00:1f.7", "--image", img.path()];
        a.extend_from_slice(extra);
        let (code, _, stderr) = run(&a);
        assert_eq!(code, 1, "{a:?}: {stderr}");
        assert!(stderr.contains("virtio-blk-dm: FAIL opening privcmd"), "{stderr:?}");
        assert!(!stderr.contains("usage"), "{stderr:?}");
    }
}
