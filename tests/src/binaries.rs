//! The programs a lab runs, found in one directory: `calico-lab` looks for `calico-node` and the
//! CNI plugins (`calico`, `calico-ipam`) next to itself, and the topologies put that directory
//! on the nodes' PATH (`FABRIC_BIN_DIR`) so `exec` finds `calicoctl`.
//!
//! The directory is `FABRIC_E2E_BIN_DIR` when set (nothing is built), else the cargo profile
//! directory the test binary was built into (`target/<profile>/`), where the first call in a
//! test process runs `cargo build --bins` for the packages behind these programs, so a test
//! never runs stale binaries. That nested build needs the target directory unlocked, which is
//! the case under `cargo nextest run` (the suite's runner); with plain `cargo test`, build the
//! binaries first and set `FABRIC_E2E_BIN_DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The programs that must sit together in the binary directory.
pub const PROGRAMS: [&str; 5] = [
    "calico-lab",
    "calico-node",
    "calicoctl",
    "calico",
    "calico-ipam",
];

/// The workspace packages that build [`PROGRAMS`].
pub const PACKAGES: [&str; 4] = ["calico-lab", "calico-node", "calicoctl", "fabric-cni"];

/// The directory holding every program of [`PROGRAMS`] (built on first use; see the module
/// docs). Panics with the reason when they cannot be found or built.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(find_or_build)
}

/// The path of one program in [`bin_dir`].
pub fn program(name: &str) -> PathBuf {
    bin_dir().join(name)
}

fn find_or_build() -> PathBuf {
    if let Ok(dir) = std::env::var("FABRIC_E2E_BIN_DIR") {
        let dir = PathBuf::from(dir);
        if let Err(missing) = check_complete(&dir) {
            panic!(
                "FABRIC_E2E_BIN_DIR={} lacks {missing:?}; build them with `cargo build --bins -p {}`",
                dir.display(),
                PACKAGES.join(" -p ")
            );
        }
        return dir;
    }
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lies in target/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory lies in the target directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(other) => other.to_string(),
        None => panic!("unexpected profile directory {}", profile_dir.display()),
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lies in the workspace");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut build = Command::new(&cargo);
    build
        .arg("build")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .args(["--profile", &profile, "--bins"])
        .env("CARGO_TARGET_DIR", target_dir);
    for p in PACKAGES {
        build.args(["-p", p]);
    }
    eprintln!(
        "fabric-e2e: building {} into {}",
        PROGRAMS.join(", "),
        profile_dir.display()
    );
    let status = build
        .status()
        .unwrap_or_else(|e| panic!("running {cargo} build: {e}"));
    assert!(
        status.success(),
        "cargo build of {} failed ({status})",
        PACKAGES.join(", ")
    );
    if let Err(missing) = check_complete(&profile_dir) {
        panic!(
            "after building, {} still lacks {missing:?}",
            profile_dir.display()
        );
    }
    profile_dir
}

/// `Err(missing programs)` unless every program of [`PROGRAMS`] is a file in `dir`.
fn check_complete(dir: &Path) -> Result<(), Vec<&'static str>> {
    let missing: Vec<&str> = PROGRAMS
        .into_iter()
        .filter(|p| !dir.join(p).is_file())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing)
    }
}
