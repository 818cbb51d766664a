//! Prometheus metrics at `control.metrics_listen` + `/metrics`.
//!
//! A `prometheus-client` collector reads the per-worker counters, the ports' statistics and
//! the current forwarding state at scrape time, so the data plane keeps plain integers and
//! never touches the registry. [`http`](super::http) serves it on a thread of its own.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::announce::AnnounceStatus;
use super::http::Response;
use super::neighbours::NeighbourStats;
use super::plane::ReloadStats;
use super::probes::StatusBoard;
use crate::dataplane::counters::{Counter, MAX_COUNTED_BACKENDS};
use crate::dataplane::WorkerCounters;
use crate::dpdk::Port;
use crate::lb::forwarding::Forwarding;
use crate::lb::verdict::DropReason;

/// What a scrape reads.
#[derive(Debug)]
pub struct MetricsSource {
    pub workers: Vec<Arc<WorkerCounters>>,
    /// The control thread's drops by reason: `tx_full`, the kernel twins' packets it could not
    /// send and the workers' packets for a twin that the twin's queue had no room for;
    /// `unsupported`, the twins' packets in several segments; and what a twin may not send
    /// (`martian_source`, `unsupported`, `truncated`: `twin_egress::may_leave`).
    pub control_drops: Arc<[Counter; DropReason::COUNT]>,
    /// The workers' packets for a twin that the control thread sent (where they hand them
    /// over: a twin of one queue).
    pub control_to_kernel: Arc<Counter>,
    /// (interface name, its DPDK port).
    pub ports: Vec<(String, Port)>,
    pub forwarding: Arc<ArcSwap<Forwarding>>,
    pub probes: StatusBoard,
    pub neighbours: Arc<NeighbourStats>,
    /// What BIRD took, with `[announce]`.
    pub announce: Option<Arc<Mutex<AnnounceStatus>>>,
    /// Reloads refused (SIGHUP's too, which nothing else answers).
    pub reloads: Arc<ReloadStats>,
}

type Labels = Vec<(&'static str, String)>;

/// A label value as the text format writes it: `\`, `"` and a newline escaped (Prometheus'
/// exposition format, and OpenMetrics'). Names from the config reach label values, and
/// `prometheus-client` writes values as they are: one `"` would make the whole scrape
/// invalid.
struct Escaped<'a>(&'a str);

impl EncodeLabelValue for Escaped<'_> {
    fn encode(&self, enc: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        let mut rest = self.0;
        while let Some(at) = rest.find(['\\', '"', '\n']) {
            enc.write_str(&rest[..at])?;
            enc.write_str(match rest.as_bytes()[at] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[at + 1..];
        }
        enc.write_str(rest)
    }
}

/// The labels of a series as they are written: every family goes through this.
fn escaped(labels: &Labels) -> Vec<(&'static str, Escaped<'_>)> {
    labels.iter().map(|(k, v)| (*k, Escaped(v))).collect()
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family =
        enc.encode_descriptor(name, help, None, ConstCounter::new(0u64).metric_type())?;
    for (labels, v) in series {
        ConstCounter::new(*v).encode(family.encode_family(&escaped(labels))?)?;
    }
    Ok(())
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, i64)],
) -> Result<(), std::fmt::Error> {
    let mut family =
        enc.encode_descriptor(name, help, None, ConstGauge::new(0i64).metric_type())?;
    for (labels, v) in series {
        ConstGauge::new(*v).encode(family.encode_family(&escaped(labels))?)?;
    }
    Ok(())
}

impl prometheus_client::collector::Collector for MetricsSource {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let fwd = self.forwarding.load();
        let sum =
            |f: &dyn Fn(&WorkerCounters) -> u64| self.workers.iter().map(|w| f(w)).sum::<u64>();

        let stats: Vec<_> = self
            .ports
            .iter()
            .filter_map(|(n, p)| Some((n.clone(), p.id(), p.stats()?)))
            .collect();
        let port_labels =
            |name: &str, id: u16| vec![("port", id.to_string()), ("interface", name.to_owned())];
        // Counter names get `_total` appended by the encoder.
        counter(
            &mut enc,
            "haports_port_rx_packets",
            "Packets received by the port (PMD statistics)",
            &stats
                .iter()
                .map(|(n, id, s)| (port_labels(n, *id), s.rx_packets))
                .collect::<Vec<_>>(),
        )?;
        counter(
            &mut enc,
            "haports_port_tx_packets",
            "Packets sent by the port (PMD statistics)",
            &stats
                .iter()
                .map(|(n, id, s)| (port_labels(n, *id), s.tx_packets))
                .collect::<Vec<_>>(),
        )?;
        counter(
            &mut enc,
            "haports_port_rx_dropped",
            "Packets the NIC dropped for lack of RX descriptors or buffers",
            &stats
                .iter()
                .map(|(n, id, s)| (port_labels(n, *id), s.rx_missed + s.rx_no_mbuf))
                .collect::<Vec<_>>(),
        )?;
        counter(
            &mut enc,
            "haports_drops",
            "Packets dropped by the data plane, by reason",
            &DropReason::ALL
                .iter()
                .map(|r| {
                    (
                        vec![("reason", r.as_str().to_owned())],
                        sum(&|w| w.drops[r.index()].get()) + self.control_drops[r.index()].get(),
                    )
                })
                .collect::<Vec<_>>(),
        )?;
        // Counted by the control thread as it sends them (the workers hand them over).
        let to_kernel = self.control_to_kernel.get();
        counter(
            &mut enc,
            "haports_kernel_packets",
            "Packets handed to the kernel twins (the exception path)",
            &[(vec![], to_kernel)],
        )?;
        let n = &self.neighbours;
        let ignored = n.ignored.load(Ordering::Relaxed) + sum(&|w| w.neighbours_ignored.get());
        gauge(
            &mut enc,
            "haports_neighbours",
            "Entries in the neighbour cache (resolved or being asked for)",
            &[(vec![], n.entries.load(Ordering::Relaxed) as i64)],
        )?;
        counter(
            &mut enc,
            "haports_neighbour_answers",
            "Answers to the appliance's own ARP requests and neighbour solicitations, learnt",
            &[(vec![], n.answers.load(Ordering::Relaxed))],
        )?;
        counter(
            &mut enc,
            "haports_neighbour_ignored",
            "ARP and neighbour advertisements not learnt: nobody asked, repeated, over the rate",
            &[(vec![], ignored)],
        )?;
        counter(
            &mut enc,
            "haports_neighbour_refused",
            "Next hops the full neighbour cache refused, or pushed out unanswered for newer ones",
            &[(vec![], n.refused.load(Ordering::Relaxed))],
        )?;
        // Packets by backend as each pool's state for a probe holds it (a pool whose rules
        // use different probes has one per probe: `probe` tells them apart, "" for none). A
        // slot beyond those counted has no series, rather than a constant 0.
        let per_backend = |count: &dyn Fn(&WorkerCounters, usize) -> u64| -> Vec<(Labels, u64)> {
            fwd.backends
                .iter()
                .enumerate()
                .filter(|(i, b)| !b.retired && *i < MAX_COUNTED_BACKENDS)
                .map(|(i, b)| {
                    let pool = &fwd.pools[b.pool as usize];
                    let labels = vec![
                        ("lb", b.load_balancer.clone()),
                        ("pool", pool.name.clone()),
                        ("probe", pool.probe.clone().unwrap_or_default()),
                        ("backend", b.address.to_string()),
                    ];
                    (labels, sum(&|w| count(w, i)))
                })
                .collect()
        };
        let at = |counters: &[Counter], i: usize| counters.get(i).map_or(0, |c| c.get());
        counter(
            &mut enc,
            "haports_backend_packets",
            "Packets decided for each backend (a full TX queue may still drop them: tx_full)",
            &per_backend(&|w, i| w.backend_traffic.get(i).map_or(0, |t| t.packets.get())),
        )?;
        counter(
            &mut enc,
            "haports_backend_bytes",
            "Bytes (frames as sent) decided for each backend (tx_full may still drop them)",
            &per_backend(&|w, i| w.backend_traffic.get(i).map_or(0, |t| t.bytes.get())),
        )?;
        counter(
            &mut enc,
            "haports_backend_flows",
            "New flows decided for each backend (Maglev's pick for a flow the table did not hold; \
             not those a full table could not remember: haports_flow_table_refused)",
            &per_backend(&|w, i| at(&w.backend_flows, i)),
        )?;
        // How rules, frontends, pools and probes fit together, for `haports stats` and
        // dashboards to join the per-backend series on.
        let rules: Vec<(Labels, i64)> = fwd
            .frontends
            .iter()
            .flat_map(|fe| {
                fe.rules.iter().map(|r| {
                    let pool = &fwd.pools[r.pool as usize];
                    let labels = vec![
                        ("lb", fe.load_balancer.clone()),
                        ("frontend", fe.name.clone()),
                        ("address", fe.address.to_string()),
                        ("rule", r.name.clone()),
                        ("pool", pool.name.clone()),
                        ("probe", pool.probe.clone().unwrap_or_default()),
                    ];
                    (labels, 1)
                })
            })
            .collect();
        gauge(
            &mut enc,
            "haports_rule_info",
            "1 for each rule: its load balancer, frontend (name and address), pool and probe",
            &rules,
        )?;
        // Health and resolution for each rule's backends: health is per rule (its probe).
        let mut by_rule = Vec::new();
        for fe in &fwd.frontends {
            for r in &fe.rules {
                let pool = &fwd.pools[r.pool as usize];
                for &b in &pool.members {
                    let be = &fwd.backends[b as usize];
                    let labels = vec![
                        ("lb", fe.load_balancer.clone()),
                        ("rule", r.name.clone()),
                        ("pool", pool.name.clone()),
                        ("backend", be.address.to_string()),
                    ];
                    // Behind VXLAN, the tunnel's next hop must be resolved too.
                    let resolved = be.mac.is_some() && be.vxlan.map_or(true, |(_, h)| h.is_some());
                    by_rule.push((labels, be.healthy, resolved));
                }
            }
        }
        gauge(
            &mut enc,
            "haports_backend_healthy",
            "1 when the backend is up for the rule: the rule's probe passes (a rule without one \
             takes every backend as up), and, for an instance of several addresses, every \
             probe of each of them in the load balancer; else 0",
            &by_rule
                .iter()
                .map(|(l, h, _)| (l.clone(), i64::from(*h)))
                .collect::<Vec<_>>(),
        )?;
        gauge(
            &mut enc,
            "haports_backend_resolved",
            "1 when the backend's MAC address is known (configured or resolved; behind VXLAN, and \
             the tunnel's next hop's), else 0",
            &by_rule
                .iter()
                .map(|(l, _, r)| (l.clone(), i64::from(*r)))
                .collect::<Vec<_>>(),
        )?;
        probe_series(&mut enc, &self.probes)?;
        gauge(
            &mut enc,
            "haports_flow_table_entries",
            "Flows in each worker's flow table",
            &self
                .workers
                .iter()
                .enumerate()
                .map(|(i, w)| (vec![("worker", i.to_string())], w.flow_entries.get() as i64))
                .collect::<Vec<_>>(),
        )?;
        let per_worker = |f: &dyn Fn(&WorkerCounters) -> u64| -> Vec<(Labels, u64)> {
            self.workers
                .iter()
                .enumerate()
                .map(|(i, w)| (vec![("worker", i.to_string())], f(w)))
                .collect()
        };
        counter(
            &mut enc,
            "haports_worker_rx_packets",
            "Packets each worker received, over all ports",
            &per_worker(&|w| w.rx_packets.iter().map(Counter::get).sum()),
        )?;
        counter(
            &mut enc,
            "haports_worker_drops",
            "Packets each worker dropped, over all reasons",
            &per_worker(&|w| w.drops.iter().map(Counter::get).sum()),
        )?;
        counter(
            &mut enc,
            "haports_flow_table_refused",
            "Packets of new flows a worker's full flow table could not remember (each decided \
             by Maglev alone)",
            &[(vec![], sum(&|w| w.flows_refused.get()))],
        )?;
        counter(
            &mut enc,
            "haports_fragment_table_evicted",
            "Datagrams still followed in fragments that left a worker's full fragment table, \
             the oldest first, for newer ones (their later fragments are dropped as `fragment`)",
            &[(vec![], sum(&|w| w.fragments_evicted.get()))],
        )?;
        gauge(
            &mut enc,
            "haports_config_generation",
            "Configs applied: 1 for the config at start, +1 per successful reload",
            &[(vec![], fwd.config_generation as i64)],
        )?;
        counter(
            &mut enc,
            "haports_config_reloads_refused",
            "Reloads refused (SIGHUP or haports reload): the running config kept",
            &[(vec![], self.reloads.refused.load(Ordering::Relaxed))],
        )?;
        gauge(
            &mut enc,
            "haports_config_last_reload_successful",
            "0 when the last reload was refused, else 1 (also before any reload)",
            &[(
                vec![],
                i64::from(!self.reloads.last_refused.load(Ordering::Relaxed)),
            )],
        )?;
        if let Some(announce) = &self.announce {
            let st = announce.lock().unwrap_or_else(|e| e.into_inner());
            gauge(
                &mut enc,
                "haports_frontend_announced",
                "1 while BIRD has the frontend's route from this instance (see [announce])",
                &fwd.frontends
                    .iter()
                    .map(|fe| {
                        (
                            vec![
                                ("lb", fe.load_balancer.clone()),
                                ("frontend", fe.name.clone()),
                                ("address", fe.address.to_string()),
                            ],
                            i64::from(st.announced.contains(&fe.address)),
                        )
                    })
                    .collect::<Vec<_>>(),
            )?;
            counter(
                &mut enc,
                "haports_announce_errors",
                "Times BIRD could not be reached or refused the routes file",
                &[(vec![], st.errors)],
            )?;
        }
        Ok(())
    }
}

/// Serves `/metrics` on `addr` from a thread of its own until `stop` is set, with bounded
/// connections, time and memory ([`http`](super::http)).
pub fn serve(
    addr: SocketAddr,
    source: MetricsSource,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, super::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(source));
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| super::Error::Metrics(format!("listening on {addr}: {e}")))?;
    tracing::info!(%addr, "metrics at http://{addr}/metrics");
    std::thread::Builder::new()
        .name("haports-metrics".into())
        .spawn(move || {
            super::http::serve(listener, &stop, |path| {
                // (Without its query, a Prometheus job's `params`: it asks for no other.)
                if path != "/metrics" {
                    return Response {
                        status: 404,
                        content_type: "text/plain; charset=utf-8",
                        body: "see /metrics\n".into(),
                    };
                }
                let mut body = String::new();
                match prometheus_client::encoding::text::encode(&mut body, &registry) {
                    Ok(()) => Response {
                        status: 200,
                        content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        body,
                    },
                    Err(_) => Response {
                        status: 500,
                        content_type: "text/plain; charset=utf-8",
                        body: "encoding failed\n".into(),
                    },
                }
            })
        })
        .map_err(|e| super::Error::Metrics(format!("starting the metrics thread: {e}")))
}

#[path = "metrics_probes.rs"]
mod targets;
use targets::probe_series;

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
