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
    println!("cargo:rerun-if-changed=.git/HEAD");
}
