//! What async-std users compile: ctx-core, async-std and async-io, and not smol (nor ctx-smol,
//! which would bring smol's file, network, process and signal crates).

use std::process::Command;

#[test]
fn smol_is_not_a_dependency() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--manifest-path",
            manifest,
        ])
        .args(["-p", "ctx-async-std"])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = tree.lines().filter_map(|line| line.split(' ').next()).collect();
    for name in ["async-io", "async-std", "ctx-core"] {
        assert!(names.contains(&name), "{name} missing from:\n{tree}");
    }
    for name in [
        "smol",
        "ctx-smol",
        "async-net",
        "async-fs",
        "async-process",
        "async-signal",
    ] {
        assert!(!names.contains(&name), "{name} is a dependency:\n{tree}");
    }
}
