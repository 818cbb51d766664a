//! The service: `scripts/install.sh` puts the binary, the hugepage helper, the unit and a
//! starting config in place; systemd's own checker accepts the unit, and the unit's
//! `ExecStartPre` check passes on the config it installs. No root needed: everything goes
//! under a scratch directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `scripts/install.sh` of the test binary into the scratch directories.
fn install(prefix: &Path, etc: &Path, units: &Path) -> Output {
    Command::new("bash")
        .arg(root().join("scripts/install.sh"))
        .arg("--prefix")
        .arg(prefix)
        .arg("--sysconfdir")
        .arg(etc)
        .arg("--unitdir")
        .arg(units)
        .args(["--binary", env!("CARGO_BIN_EXE_haports")])
        .output()
        .expect("run install.sh")
}

#[test]
fn the_installed_unit_passes_systemd_analyze_verify_and_its_start_check() {
    let dir = std::env::temp_dir().join(format!("haports-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (prefix, etc, units) = (dir.join("usr"), dir.join("etc"), dir.join("units"));
    let out = install(&prefix, &etc, &units);
    assert!(
        out.status.success(),
        "install.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unit_path = units.join("haports.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    assert!(!unit.contains('@'), "every placeholder filled: {unit}");
    let config = etc.join("haports/haports.toml");
    for line in [
        format!(
            "ExecStartPre={}/bin/haports check {}",
            prefix.display(),
            config.display()
        ),
        format!(
            "ExecStartPre={}/lib/haports/hugepages 1024",
            prefix.display()
        ),
        format!(
            "ExecStart={}/bin/haports run --config {}",
            prefix.display(),
            config.display()
        ),
        format!(
            "ExecReload=/bin/sh -c 'exec 3>&1; err=$$({}/bin/haports reload --socket \
             /run/haports/haports.sock 2>&1 >&3); rc=$$?; [ -z \"$$err\" ] || echo \"$$err\" >&2; \
             case \"$$rc $$err\" in \"2 connecting to \"*) \
             exec /bin/kill -HUP \"$$MAINPID\" ;; esac; \
             exit $$rc'",
            prefix.display()
        ),
        "Restart=on-failure".to_owned(),
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} in {unit}");
    }
    // The reload command's socket is the one the installed config opens.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("socket = \"/run/haports/haports.sock\""),
        "{text}"
    );

    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit_path)
        .output()
        .expect("run systemd-analyze (Debian package systemd)");
    assert!(
        verify.status.success(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // The reload as systemd runs the command (`$$` is its escape for `$`; it sets MAINPID),
    // on a scratch socket: where nothing can be connected to (no socket, or a stale file of
    // one), SIGHUP to the main process; any other failure (the appliance stopping) is passed
    // on, and the main process left alone.
    let reload = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecReload="))
        .unwrap();
    let socket = dir.join("control.sock");
    let script = reload
        .strip_prefix("/bin/sh -c '")
        .and_then(|r| r.strip_suffix('\''))
        .expect("ExecReload runs a shell script")
        .replace("$$", "$")
        .replace("/run/haports/haports.sock", socket.to_str().unwrap());
    let run_reload = || {
        let main = Command::new("sleep").arg("60").spawn().unwrap();
        let out = Command::new("/bin/sh")
            .args(["-c", &script])
            .env("MAINPID", main.id().to_string())
            .output()
            .unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
            main,
        )
    };
    use std::os::unix::process::ExitStatusExt;
    for case in ["no socket", "a stale socket file"] {
        if case == "a stale socket file" {
            drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
            assert!(socket.exists());
        }
        let (status, err, mut main) = run_reload();
        assert!(status.success(), "{case}: {reload}: {err}");
        let signal = main.wait().unwrap().signal();
        assert_eq!(signal, Some(1), "{case}: SIGHUP to the main process");
    }
    std::fs::remove_file(&socket).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let stopping = std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        let (conn, _) = listener.accept().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(&conn).read_line(&mut line).unwrap();
        assert_eq!(line, "reload\n");
        (&conn)
            .write_all(b"{\"error\": \"haports is stopping\"}\n")
            .unwrap();
    });
    let (status, err, mut main) = run_reload();
    stopping.join().unwrap();
    assert_eq!(status.code(), Some(2), "the answer passed on: {err}");
    assert!(err.contains("haports is stopping"), "{err}");
    // Killed now, it dies of SIGKILL unless a SIGHUP had been sent it already (a process
    // ends by the first of the signals that end it).
    main.kill().unwrap();
    let signal = main.wait().unwrap().signal();
    assert_eq!(signal, Some(9), "the main process was left alone");

    // ExecStartPre's check, as the service runs it.
    let check = Command::new(prefix.join("bin/haports"))
        .arg("check")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&check.stdout), "ok\n");
    // The helper refuses nonsense before touching anything.
    let helper = Command::new(prefix.join("lib/haports/hugepages"))
        .arg("many")
        .output()
        .unwrap();
    assert_eq!(helper.status.code(), Some(2));
    // A second install keeps the operator's config.
    std::fs::write(&config, format!("{text}\n# edited\n")).unwrap();
    let again = install(&prefix, &etc, &units);
    assert!(again.status.success());
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .ends_with("# edited\n"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Under `sudo`, PATH is reset and rustup's `~/.cargo/bin` is not on it: the scripts find the
/// running user's Rust there all the same. Here a stand-in `CARGO_HOME` whose `cargo` and
/// `rustc` say 1.80.0; without it on PATH the check fails and says so.
#[test]
fn the_scripts_find_rustups_cargo_where_sudo_reset_the_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("cargo-home/bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["cargo", "rustc"] {
        let path = bin.join(tool);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho \"{tool} 1.80.0 (stand-in)\"\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let deps = |cargo_home: &Path| {
        Command::new("bash")
            .arg(root().join("scripts/install-deps.sh"))
            .arg("--build-only")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CARGO_HOME", cargo_home)
            .output()
            .expect("run install-deps.sh")
    };
    let found = deps(&dir.path().join("cargo-home"));
    let stderr = String::from_utf8_lossy(&found.stderr);
    assert!(found.status.success(), "{stderr}");
    let missing = deps(&dir.path().join("nowhere"));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success(), "no Rust anywhere: {stderr}");
    assert!(stderr.contains("haports needs Rust"), "{stderr}");
}
