//! The `haports` command line: parses arguments, calls into the library, maps errors to exit
//! codes. Nothing else lives here.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use haports::config::{Config, ConfigError};
use haports::lb::decision;
use haports::lb::flow::FlowKey;
use haports::lb::forwarding::{Forwarding, Observations};

// The CLI's output goes through `emit`: where its reader has gone (`haports lookup - | head
// -1`), the program ends quietly with the status of a filter stopped by SIGPIPE, rather than
// panicking on the write (an abort, in a release build). These shadow the standard macros.
macro_rules! println {
    ($($arg:tt)*) => { emit(format_args!("{}\n", format_args!($($arg)*))) };
}
macro_rules! print {
    ($($arg:tt)*) => { emit(format_args!($($arg)*)) };
}

/// Exit status where standard output's reader has gone: 128 + SIGPIPE, what a shell reports
/// for a program that signal stopped.
const READER_GONE: i32 = 141;

fn emit(text: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().write_fmt(text) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(READER_GONE);
        }
        eprintln!("writing standard output: {e}");
        std::process::exit(1);
    }
}

/// Where `haports reload` and `status` look for the control socket unless told.
const DEFAULT_SOCKET: &str = "/run/haports/haports.sock";

#[derive(Parser)]
#[command(name = "haports", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("HAPORTS_GIT_REV"), ")"),
          about = "DPDK layer-4 load balancer with HA ports")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance (needs root and DPDK devices).
    Run {
        #[arg(long)]
        config: PathBuf,
        /// EAL arguments appended to `dpdk.eal_args` (after `--`).
        #[arg(last = true)]
        eal_args: Vec<String>,
    },
    /// Validate a config file: one line per problem (`warning:` for warnings), then `ok` and
    /// exit 0 when none is an error, else exit 1 (exit 2 when the file cannot be read or
    /// parsed).
    Check {
        file: PathBuf,
        /// Print problems as JSON objects, one a line (file, severity, key, message, tag).
        #[arg(long)]
        json: bool,
    },
    /// Decide flows offline with the data plane's own code.
    Lookup {
        #[arg(long)]
        config: PathBuf,
        /// Mark a backend address unhealthy (repeatable).
        #[arg(long = "down", value_name = "ADDRESS")]
        down: Vec<std::net::IpAddr>,
        /// The frontend (name or address) used as next hop, for transit flows.
        #[arg(long, value_name = "FRONTEND")]
        via: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// `tcp|udp SRC:PORT DST:PORT` or `PROTO SRC DST`, several in a row; `-` reads one
        /// flow a line from standard input. Options may come before or after the flows: no
        /// flow word starts with `-` (a lone `-` is a value to clap).
        #[arg(required = true, num_args = 1..)]
        flow: Vec<String>,
    },
    /// Re-read a running appliance's config over its control socket (as SIGHUP does) and
    /// say whether it was applied: exit 0 when applied, 1 when refused (with the problems).
    Reload {
        #[arg(long, default_value = DEFAULT_SOCKET)]
        socket: PathBuf,
        /// The answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What a running appliance is: config generation, uptime, workers, ports, frontends
    /// served and announced.
    Status {
        #[arg(long, default_value = DEFAULT_SOCKET)]
        socket: PathBuf,
        /// The answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// An operator's view of a running instance, from its metrics sampled over an interval:
    /// load balancer, frontend, rule, backend (health, packets and bits a second, new flows
    /// and their share), ports, workers, drops by reason.
    Stats {
        #[arg(long, default_value = "http://127.0.0.1:9900/metrics")]
        endpoint: String,
        /// Seconds between the two samples rates are taken over.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Refresh in place every interval, until interrupted.
        #[arg(long)]
        watch: bool,
        /// One JSON object (a line per interval with --watch).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    haports::logs::init();
    match cli.command {
        Command::Run { config, eal_args } => run(&config, &eal_args),
        Command::Check { file, json } => check(&file, json),
        Command::Lookup {
            config,
            down,
            via,
            json,
            flow,
        } => lookup(&config, down, via, json, &flow),
        Command::Reload { socket, json } => reload(&socket, json),
        Command::Status { socket, json } => status(&socket, json),
        Command::Stats {
            endpoint,
            interval,
            watch,
            json,
        } => stats(&endpoint, interval, watch, json),
    }
}

/// Loads and validates; prints problems (warnings too) the way `check` does, on stderr.
/// `extra_eal_args` are those `run` appends, so that the check sees the DPDK ports they add.
fn load_valid(path: &Path, extra_eal_args: &[String]) -> Result<Config, ExitCode> {
    let cfg = Config::load(path).map_err(|e| {
        eprintln!("{}{e}", haports::logs::prefix(true));
        ExitCode::from(2)
    })?;
    let problems = cfg.problems_with_eal_args(extra_eal_args);
    for p in &problems {
        let prefix = haports::logs::prefix(p.is_error());
        eprintln!("{prefix}{}: {p}", path.display());
    }
    if problems.iter().any(|p| p.is_error()) {
        return Err(ExitCode::from(1));
    }
    Ok(cfg)
}

fn run(path: &Path, eal_args: &[String]) -> ExitCode {
    let cfg = match load_valid(path, eal_args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match haports::control::run(cfg, path, eal_args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &Path, json: bool) -> ExitCode {
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            if json {
                // The same fields as a problem's: the key where one applies, the message
                // without the file, place and key the plain line puts before it.
                let v = match &e {
                    ConfigError::Parse {
                        line,
                        column,
                        key,
                        message,
                        ..
                    } => {
                        let message = message.strip_prefix(&format!("{key}: ")).unwrap_or(message);
                        serde_json::json!({"line": line, "column": column, "key": key, "message": message, "tag": "parse error"})
                    }
                    ConfigError::Read { source, .. } => {
                        let message = format!("cannot read the config file: {source}");
                        serde_json::json!({"key": "", "message": message, "tag": "read error"})
                    }
                };
                let mut v = v;
                v["file"] = path.display().to_string().into();
                v["severity"] = "error".into();
                println!("{v}");
            } else {
                println!("{}{e}", haports::logs::stdout_prefix(true));
            }
            return ExitCode::from(2);
        }
    };
    let problems = haports::config::validate(&cfg);
    for p in &problems {
        if json {
            println!(
                "{}",
                serde_json::json!({"file": path.display().to_string(), "severity": p.severity.as_str(), "key": p.key, "message": p.message, "tag": p.tag})
            );
        } else {
            let prefix = haports::logs::stdout_prefix(p.is_error());
            println!("{prefix}{}: {p}", path.display());
        }
    }
    if problems.iter().any(|p| p.is_error()) {
        return ExitCode::from(1);
    }
    if !json {
        println!("ok");
    }
    ExitCode::SUCCESS
}

fn lookup(
    path: &Path,
    down: Vec<std::net::IpAddr>,
    via: Option<String>,
    json: bool,
    words: &[String],
) -> ExitCode {
    let cfg = match load_valid(path, &[]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let obs = Observations {
        down: down.into_iter().collect(),
        ..Default::default()
    };
    let fwd = Forwarding::build(&cfg, &obs, 1, None);
    if let Some(a) = (obs.down.iter()).find(|a| !fwd.backends.iter().any(|b| b.address == **a)) {
        eprintln!("--down {a}: no backend of the config has that address");
        return ExitCode::from(2);
    }
    let via = match via.as_deref().map(|v| fwd.frontend_named(v)) {
        None => None,
        Some(Some(fe)) => Some(fe),
        Some(None) => {
            eprintln!(
                "--via {}: no frontend has that name or address (a name that several load \
                 balancers use needs theirs: LB/NAME)",
                via.unwrap_or_default()
            );
            return ExitCode::from(2);
        }
    };

    let mut flows: Vec<String> = Vec::new();
    if words == ["-"] {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if !l.trim().is_empty() => flows.push(l.trim().to_owned()),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("reading standard input: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    } else {
        // A flow may come as three words or as one quoted argument.
        let words: Vec<&str> = words.iter().flat_map(|w| w.split_whitespace()).collect();
        if words.len() % 3 != 0 {
            eprintln!(
                "each FLOW is three words (`tcp SRC:PORT DST:PORT` or `PROTO SRC DST`); got {}",
                words.len()
            );
            return ExitCode::from(2);
        }
        flows.extend(words.chunks(3).map(|c| c.join(" ")));
    }

    let mut status = ExitCode::SUCCESS;
    for text in flows {
        let key: FlowKey = match text.parse() {
            Ok(k) => k,
            Err(e) => {
                eprintln!("{text}: {e}");
                status = ExitCode::from(2);
                continue;
            }
        };
        let result = decision::lookup(&fwd, &key, via);
        match (json, result) {
            (false, Ok(d)) => println!("{key} -> {}", fwd.backends[d.backend as usize].address),
            (false, Err(reason)) => println!("{key} -> drop ({reason})"),
            (true, Ok(d)) => {
                let fe = &fwd.frontends[d.frontend as usize];
                let rule = fwd.rule_state(&d);
                let be = &fwd.backends[d.backend as usize];
                println!(
                    "{}",
                    serde_json::json!({
                        "flow": key.to_string(), "backend": be.address.to_string(), "instance": be.instance,
                        "load_balancer": fe.load_balancer, "frontend": fe.name, "rule": rule.name,
                        "pool": fwd.pools[rule.pool as usize].name,
                    })
                );
            }
            (true, Err(reason)) => {
                println!(
                    "{}",
                    serde_json::json!({"flow": key.to_string(), "drop": reason.as_str()})
                )
            }
        }
    }
    status
}

fn stats(endpoint: &str, interval: f64, watch: bool, json: bool) -> ExitCode {
    use haports::control::stats::{render, scrape, view};
    if !(0.05..=3600.0).contains(&interval) {
        eprintln!("--interval {interval}: give 0.05 to 3600 seconds");
        return ExitCode::from(2);
    }
    let pause = std::time::Duration::from_secs_f64(interval);
    let mut before = match scrape(endpoint) {
        Ok(s) => (std::time::Instant::now(), s),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    loop {
        std::thread::sleep(pause);
        let after = match scrape(endpoint) {
            Ok(s) => (std::time::Instant::now(), s),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let v = view(&before.1, &after.1, (after.0 - before.0).as_secs_f64());
        if json {
            println!("{v}");
        } else if watch {
            // Home and clear, as `top` redraws.
            print!("\x1b[H\x1b[2J{}", render(&v));
        } else {
            print!("{}", render(&v));
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        if !watch {
            return ExitCode::SUCCESS;
        }
        before = after;
    }
}

/// Asks the control socket; the answer, or exit 2 with the reason on stderr.
fn ask(socket: &Path, request: &str) -> Result<serde_json::Value, ExitCode> {
    let answer = haports::control::socket::ask(socket, request).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })?;
    if let Some(e) = answer["error"].as_str() {
        eprintln!("{}: {e}", socket.display());
        return Err(ExitCode::from(2));
    }
    Ok(answer)
}

fn reload(socket: &Path, json: bool) -> ExitCode {
    let answer = match ask(socket, "reload") {
        Ok(a) => a,
        Err(code) => return code,
    };
    let applied = answer["outcome"] == "applied";
    if json {
        println!("{answer}");
    } else if applied {
        println!("applied: config generation {}", answer["generation"]);
        if answer["withdrawal_confirmed"] == false {
            println!(
                "BIRD did not confirm in time that it withdrew the frontends this config \
                 drops: they may still be announced"
            );
        }
    } else {
        println!(
            "refused: the running config (generation {}) stays{}",
            answer["generation"],
            if answer["pending"] == true {
                ", and the reload accepted before applies once BIRD takes its withdrawal"
            } else {
                ""
            }
        );
        for p in answer["problems"].as_array().into_iter().flatten() {
            println!("{}", p.as_str().unwrap_or_default());
        }
    }
    if applied {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn status(socket: &Path, json: bool) -> ExitCode {
    let s = match ask(socket, "status") {
        Ok(a) => a,
        Err(code) => return code,
    };
    if json {
        println!("{s}");
        return ExitCode::SUCCESS;
    }
    let up = s["uptime_s"].as_u64().unwrap_or(0);
    println!(
        "haports {}, pid {}, {} for {}h {:02}m {:02}s",
        s["version"].as_str().unwrap_or("?"),
        s["pid"],
        s["state"].as_str().unwrap_or("?"),
        up / 3600,
        up / 60 % 60,
        up % 60
    );
    println!(
        "config {}, generation {} (forwarding state {}), {} worker(s)",
        s["config_file"].as_str().unwrap_or("?"),
        s["config_generation"],
        s["forwarding_generation"],
        s["workers"]
    );
    for p in s["ports"].as_array().into_iter().flatten() {
        let addresses: Vec<&str> = p["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .collect();
        println!(
            "port {} {}  {}  twin {}  {}  rx {} tx {} dropped {}",
            p["port"],
            p["interface"].as_str().unwrap_or("?"),
            p["mac"].as_str().unwrap_or("?"),
            p["twin"].as_str().unwrap_or("?"),
            addresses.join(" "),
            p["rx_packets"],
            p["tx_packets"],
            p["rx_dropped"]
        );
    }
    for f in s["frontends"].as_array().into_iter().flatten() {
        let announced = match f["announced"].as_bool() {
            Some(true) => ", announced",
            Some(false) => ", not announced",
            None => "",
        };
        println!(
            "frontend {}/{} {}  {}{announced}",
            f["load_balancer"].as_str().unwrap_or("?"),
            f["name"].as_str().unwrap_or("?"),
            f["address"].as_str().unwrap_or("?"),
            if f["serving"] == true {
                "serving"
            } else {
                "no healthy backend"
            },
        );
    }
    ExitCode::SUCCESS
}
