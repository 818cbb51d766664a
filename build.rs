//! Build metadata only: the git revision, shown by `haports --version`.
fn main() {
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HAPORTS_GIT_REV={rev}");
    // HEAD names a branch whose ref moves with each commit: watch the refs too (a loose
    // ref's file under refs/heads, or packed-refs), or the revision shown would stay the one
    // of the first build on the branch. Only paths that exist: Cargo reruns the script on
    // every build for one that does not.
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
