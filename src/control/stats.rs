//! `haports stats`: an operator's view of a running instance, from two scrapes of its
//! metrics an interval apart: load balancer → frontend → rule → backend, with health,
//! packets and bits per second, new flows and each backend's share of them; ports and
//! workers; drops by reason with their rates.
//!
//! [`view`] turns the two scrapes into one JSON object (what `--json` prints); [`render`]
//! lays that object out as text, so both outputs say the same.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

/// One series of a scrape: its name, labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    fn label(&self, key: &str) -> &str {
        self.labels.get(key).map_or("", String::as_str)
    }
}

/// How long a scrape may take before the endpoint counts as not answering.
const SCRAPE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// One scrape of the metrics endpoint, within [`SCRAPE_TIMEOUT`] (an endpoint that takes the
/// connection but never answers is one that does not answer).
pub fn scrape(endpoint: &str) -> Result<Vec<Sample>, String> {
    use std::io::Read;
    // The largest config's metrics (65,536 backend slots, each under several rules) run to
    // tens of MiB: more than ureq's `into_string` takes (10 MiB).
    const MAX_SCRAPE: u64 = 1 << 30;
    let agent = ureq::AgentBuilder::new().timeout(SCRAPE_TIMEOUT).build();
    let response = agent.get(endpoint).call().map_err(|e| {
        format!("fetching {endpoint}: {e} (is haports running with control.metrics_listen?)")
    })?;
    let mut body = String::new();
    (response.into_reader().take(MAX_SCRAPE + 1))
        .read_to_string(&mut body)
        .map_err(|e| format!("reading {endpoint}: {e}"))?;
    if body.len() as u64 > MAX_SCRAPE {
        return Err(format!("reading {endpoint}: more than {MAX_SCRAPE} bytes"));
    }
    Ok(parse(&body))
}

/// The samples of a Prometheus text scrape (comments and unparsable lines are skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, rest)) = series.split_once('{') else {
        return Some(Sample {
            name: series.to_owned(),
            labels: BTreeMap::new(),
            value,
        });
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let key = key.trim_start_matches(',').trim().to_owned();
        if key.is_empty() || key == "}" {
            break;
        }
        if chars.next() != Some('"') {
            return None;
        }
        let mut v = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => v.push(match chars.next()? {
                    'n' => '\n',
                    other => other,
                }),
                '"' => break,
                c => v.push(c),
            }
        }
        labels.insert(key, v);
    }
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// A scrape's samples by name, and by name and backend (a config's thousands of backends
/// are each looked up a few times a rule: not by a scan of every sample each time).
struct Index<'a> {
    by_name: HashMap<&'a str, Vec<&'a Sample>>,
    by_backend: HashMap<(&'a str, &'a str), Vec<&'a Sample>>,
}

impl<'a> Index<'a> {
    fn new(samples: &'a [Sample]) -> Index<'a> {
        let mut by_name: HashMap<&str, Vec<&Sample>> = HashMap::new();
        let mut by_backend: HashMap<(&str, &str), Vec<&Sample>> = HashMap::new();
        for s in samples {
            by_name.entry(&s.name).or_default().push(s);
            if let Some(b) = s.labels.get("backend") {
                by_backend.entry((&s.name, b)).or_default().push(s);
            }
        }
        Index {
            by_name,
            by_backend,
        }
    }

    /// The samples named `name`, in the scrape's order.
    fn named(&self, name: &str) -> impl Iterator<Item = &'a Sample> + '_ {
        self.by_name.get(name).into_iter().flatten().copied()
    }

    /// The value of `name` with exactly these labels' values (others ignored).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let backend = labels.iter().find(|(k, _)| *k == "backend");
        let candidates = match backend {
            Some(&(_, b)) => self.by_backend.get(&(name, b)),
            None => self.by_name.get(name),
        };
        (candidates.into_iter().flatten())
            .find(|s| labels.iter().all(|(k, v)| s.label(k) == *v))
            .map(|s| s.value)
    }
}

/// The operator's view of the change from `before` to `after`, `seconds` apart.
pub fn view(before: &[Sample], after: &[Sample], seconds: f64) -> Value {
    let seconds = seconds.max(1e-3);
    let (before, after) = (Index::new(before), Index::new(after));
    let rate = |name: &str, labels: &[(&str, &str)]| {
        let now = after.value(name, labels).unwrap_or(0.0);
        let then = before.value(name, labels).unwrap_or(0.0);
        ((now - then).max(0.0)) / seconds
    };
    // A backend's series absent from the first scrape has no rate: a backend a reload
    // brought back gets its old slot, counts and all (which are no traffic of the interval).
    let backend_rate = |name: &str, labels: &[(&str, &str)]| {
        let then = before.value(name, labels)?;
        let now = after.value(name, labels).unwrap_or(0.0);
        Some(((now - then).max(0.0)) / seconds)
    };

    let ports: Vec<Value> = after
        .named("haports_port_rx_packets_total")
        .map(|s| {
            let l = [("port", s.label("port"))];
            json!({
                "interface": s.label("interface"), "port": s.label("port"),
                "rx_pps": rate("haports_port_rx_packets_total", &l),
                "tx_pps": rate("haports_port_tx_packets_total", &l),
                "nic_drops_per_s": rate("haports_port_rx_dropped_total", &l),
                "rx_packets": count(s.value),
            })
        })
        .collect();
    let workers: Vec<Value> = after
        .named("haports_flow_table_entries")
        .map(|s| {
            let l = [("worker", s.label("worker"))];
            json!({
                "worker": s.label("worker"),
                "rx_pps": rate("haports_worker_rx_packets_total", &l),
                "drops_per_s": rate("haports_worker_drops_total", &l),
                "flows": count(s.value),
            })
        })
        .collect();

    // Rules by load balancer and frontend, each with its backends.
    let mut lbs: BTreeMap<String, BTreeMap<(String, String), Vec<Value>>> = BTreeMap::new();
    for r in after.named("haports_rule_info") {
        let (lb, pool, probe, rule) = (
            r.label("lb"),
            r.label("pool"),
            r.label("probe"),
            r.label("rule"),
        );
        let of_pool = [("lb", lb), ("pool", pool), ("probe", probe)];
        let new_flows: f64 = after
            .named("haports_backend_flows_total")
            .filter(|s| of_pool.iter().all(|(k, v)| s.label(k) == *v))
            .filter_map(|s| {
                backend_rate(
                    &s.name,
                    &[
                        ("lb", lb),
                        ("pool", pool),
                        ("probe", probe),
                        ("backend", s.label("backend")),
                    ],
                )
            })
            .sum();
        let backends: Vec<Value> = after
            .named("haports_backend_healthy")
            .filter(|s| s.label("lb") == lb && s.label("rule") == rule && s.label("pool") == pool)
            .map(|h| {
                let b = h.label("backend");
                let l = [("lb", lb), ("pool", pool), ("probe", probe), ("backend", b)];
                let flows_per_s = backend_rate("haports_backend_flows_total", &l);
                let share = flows_per_s
                    .filter(|_| new_flows > 0.0)
                    .map(|f| f / new_flows);
                let total = |name| count(after.value(name, &l).unwrap_or(0.0));
                let resolved = [("lb", lb), ("rule", rule), ("backend", b)];
                json!({
                    "address": b,
                    "healthy": h.value == 1.0,
                    "resolved": after.value("haports_backend_resolved", &resolved) == Some(1.0),
                    "pps": backend_rate("haports_backend_packets_total", &l),
                    "bps": backend_rate("haports_backend_bytes_total", &l).map(|r| r * 8.0),
                    "new_flows_per_s": flows_per_s,
                    "new_flow_share": share,
                    "packets": total("haports_backend_packets_total"),
                    "flows": total("haports_backend_flows_total"),
                })
            })
            .collect();
        let announced = after.value(
            "haports_frontend_announced",
            &[("lb", lb), ("frontend", r.label("frontend"))],
        );
        let rule = json!({
            "name": rule, "pool": pool, "probe": probe, "announced": announced.map(|v| v == 1.0),
            "backends": backends,
        });
        lbs.entry(lb.to_owned())
            .or_default()
            .entry((
                r.label("frontend").to_owned(),
                r.label("address").to_owned(),
            ))
            .or_default()
            .push(rule);
    }
    let load_balancers: Vec<Value> = lbs
        .into_iter()
        .map(|(lb, frontends)| {
            let frontends: Vec<Value> = frontends
                .into_iter()
                .map(|((name, address), rules)| {
                    let announced = rules.first().and_then(|r| r["announced"].as_bool());
                    json!({"name": name, "address": address, "announced": announced, "rules": rules})
                })
                .collect();
            json!({"name": lb, "frontends": frontends})
        })
        .collect();

    let drops: Vec<Value> = after
        .named("haports_drops_total")
        .filter(|s| s.value > 0.0)
        .map(|s| {
            let l = [("reason", s.label("reason"))];
            let per_s = rate(&s.name, &l);
            json!({"reason": s.label("reason"), "per_s": per_s, "total": count(s.value)})
        })
        .collect();
    json!({
        "interval_s": seconds,
        "config_generation": after.value("haports_config_generation", &[]).map(count),
        "ports": ports,
        "workers": workers,
        "load_balancers": load_balancers,
        "drops": drops,
        "flow_table_refused_per_s": rate("haports_flow_table_refused_total", &[]),
    })
}

/// A count as JSON: a whole number where it is one (counters and gauges of things), so that
/// a typed reader takes it as an integer.
fn count(v: f64) -> Value {
    if v.fract() == 0.0 && (0.0..9.007_199_254_740_992e15).contains(&v) {
        json!(v as u64)
    } else {
        json!(v)
    }
}

/// `1234567` as `1.23M`.
fn si(x: f64) -> String {
    let x = x.max(0.0);
    match x {
        x if x >= 1e9 => format!("{:.2}G", x / 1e9),
        x if x >= 1e6 => format!("{:.2}M", x / 1e6),
        x if x >= 1e4 => format!("{:.1}k", x / 1e3),
        x if x >= 10.0 || x == 0.0 => format!("{x:.0}"),
        x => format!("{x:.1}"),
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// A rate as text, `-` where there is none.
fn si_or_none(v: &Value) -> String {
    v.as_f64().map_or("-".to_owned(), si)
}

/// The view as text, in columns.
pub fn render(v: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "haports stats over {:.1} s, config generation {}",
        f(&v["interval_s"]),
        v["config_generation"]
            .as_f64()
            .map_or("?".to_owned(), |g| format!("{g:.0}"))
    );
    let _ = writeln!(
        out,
        "\n{:<20} {:>10} {:>10} {:>12} {:>10}",
        "PORT", "RX/s", "TX/s", "NIC DROP/s", "RX"
    );
    for p in v["ports"].as_array().into_iter().flatten() {
        let name = format!("{} ({})", s(&p["interface"]), s(&p["port"]));
        let _ = writeln!(
            out,
            "{name:<20} {:>10} {:>10} {:>12} {:>10}",
            si(f(&p["rx_pps"])),
            si(f(&p["tx_pps"])),
            si(f(&p["nic_drops_per_s"])),
            si(f(&p["rx_packets"]))
        );
    }
    let _ = writeln!(
        out,
        "\n{:<20} {:>10} {:>10} {:>12}",
        "WORKER", "RX/s", "DROP/s", "FLOWS"
    );
    for w in v["workers"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<20} {:>10} {:>10} {:>12}",
            s(&w["worker"]),
            si(f(&w["rx_pps"])),
            si(f(&w["drops_per_s"])),
            si(f(&w["flows"]))
        );
    }
    for lb in v["load_balancers"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "\nLOAD BALANCER {}", s(&lb["name"]));
        for fe in lb["frontends"].as_array().into_iter().flatten() {
            let announced = match fe["announced"].as_bool() {
                Some(true) => ", announced",
                Some(false) => ", not announced",
                None => "",
            };
            let _ = writeln!(
                out,
                "  frontend {} {}{announced}",
                s(&fe["name"]),
                s(&fe["address"])
            );
            for r in fe["rules"].as_array().into_iter().flatten() {
                let probe = match s(&r["probe"]) {
                    "" => String::new(),
                    p => format!(", probe {p}"),
                };
                let _ = writeln!(
                    out,
                    "    rule {}: pool {}{probe}",
                    s(&r["name"]),
                    s(&r["pool"])
                );
                let _ = writeln!(
                    out,
                    "      {:<24} {:<6} {:>9} {:>9} {:>11} {:>6} {:>10}",
                    "BACKEND", "HEALTH", "PKT/s", "BIT/s", "NEW FLOW/s", "SHARE", "PACKETS"
                );
                for b in r["backends"].as_array().into_iter().flatten() {
                    let health = match (b["healthy"].as_bool(), b["resolved"].as_bool()) {
                        (Some(true), Some(true)) => "up",
                        (Some(true), _) => "up/arp",
                        _ => "DOWN",
                    };
                    let share = b["new_flow_share"]
                        .as_f64()
                        .map_or("-".to_owned(), |x| format!("{:.0}%", x * 100.0));
                    let _ = writeln!(
                        out,
                        "      {:<24} {:<6} {:>9} {:>9} {:>11} {:>6} {:>10}",
                        s(&b["address"]),
                        health,
                        si_or_none(&b["pps"]),
                        si_or_none(&b["bps"]),
                        si_or_none(&b["new_flows_per_s"]),
                        share,
                        si(f(&b["packets"]))
                    );
                }
            }
        }
    }
    let drops = v["drops"].as_array().map_or(&[][..], Vec::as_slice);
    let _ = writeln!(out, "\n{:<20} {:>10} {:>10}", "DROPS", "PER s", "TOTAL");
    if drops.is_empty() {
        let _ = writeln!(out, "(none)");
    }
    for d in drops {
        let _ = writeln!(
            out,
            "{:<20} {:>10} {:>10}",
            s(&d["reason"]),
            si(f(&d["per_s"])),
            si(f(&d["total"]))
        );
    }
    out
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
