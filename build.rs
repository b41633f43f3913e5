//! Links the cdylib with Xen's symbol versions and SONAME, and generates the
//! C header from the Rust exports.
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let map = root.join("xendevicemodel.map");
    for f in ["xendevicemodel.map", "cbindgen.toml", "src/ffi.rs", "tools/cc-link"] {
        println!("cargo:rerun-if-changed={f}");
    }
    // Only the shared library gets Xen's version script (tools/cc-link swaps it
    // in for rustc's own) and SONAME; test binaries link normally.
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={}", map.display());
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libxendevicemodel.so.1");
    // Never unmapped by dlclose(): see src/process.rs ("Unload").
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");

    // The header is generated into OUT_DIR; a unit test compares it with the
    // committed include/xendevicemodel.h, and `make header` copies it there.
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("xendevicemodel.h");
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi.rs"))
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(&out);
    println!("cargo:rustc-env=XDM_GENERATED_HEADER={}", out.display());
    // `make header` sets this to refresh the committed copy.
    println!("cargo:rerun-if-env-changed=XDM_WRITE_HEADER");
    if std::env::var_os("XDM_WRITE_HEADER").is_some() {
        std::fs::copy(&out, root.join("include/xendevicemodel.h")).expect("write include/xendevicemodel.h");
    }
}
