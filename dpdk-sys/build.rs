//! Finds the system DPDK with pkg-config, generates bindings with bindgen and compiles
//! bindgen's wrappers for DPDK's `static inline` functions (`rte_eth_rx_burst`, …).

use std::env;
use std::path::PathBuf;

fn main() {
    let dpdk = pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
        .expect("DPDK >= 22.11 not found by pkg-config: install libdpdk-dev");

    // DPDK's cflags carry defines and `-include rte_config.h`; both bindgen and cc need them.
    let out = std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("run pkg-config --cflags libdpdk");
    let cflags: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();

    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let shim = out.join("static_fns");

    // Bindings for the workspace's rust-version (1.75), not bindgen's latest Rust: 0.71's
    // default emits `unsafe extern "C"` blocks, which need Rust 1.82.
    // `InvalidRustTarget` has Display but no Debug, hence no `expect`.
    let rust_target = bindgen::RustTarget::stable(75, 0)
        .unwrap_or_else(|e| panic!("bindgen rust target 1.75 (the workspace's rust-version): {e}"));
    let bindings = bindgen::Builder::default()
        .rust_target(rust_target)
        .header("wrapper.h")
        .clang_args(&cflags)
        .allowlist_function("rte_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*")
        .allowlist_var("rte_.*")
        .wrap_static_fns(true)
        .wrap_static_fns_path(&shim)
        // Packed protocol headers that rustc cannot represent exactly; haports never uses them.
        .opaque_type("rte_l2tpv2_.*")
        .opaque_type("rte_gtp_psc_.*")
        .opaque_type("rte_flow_item_gtp_psc")
        .opaque_type("rte_flow_item_l2tpv2")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen over DPDK headers");
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings");

    let mut build = cc::Build::new();
    build
        .file(shim.with_extension("c"))
        .file("shim.c")
        .include(env::current_dir().unwrap());
    for flag in &cflags {
        build.flag(flag);
    }
    for path in &dpdk.include_paths {
        build.include(path);
    }
    build
        .flag("-Wno-unused-parameter")
        .warnings(false)
        .compile("dpdk_static_fns");

    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.c");
}
