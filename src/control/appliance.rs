//! `haports run`: start, serve, stop.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::announce::{self, Announcer};
use super::frontend_macs::{frontend_macs_after_reload, FrontendMacs};
use super::metrics::{serve, MetricsSource};
use super::plane::{Plane, Reload};
use super::probes::Prober;
use super::retired::Retired;
use super::shutdown::{Shutdown, WITHDRAW_WAIT};
use super::socket::{self, ControlSocket, Request};
use super::status::{status, StatusInputs};
use super::twin::{self, KernelOut};
use super::twin_egress;
use super::Error;
use crate::config::{Config, Dataplane};
use crate::dataplane::counters::Counter;
use crate::dataplane::{
    KernelBudget, NeighbourReports, Report, ToTwin, Worker, WorkerCounters, WorkerState, REPORTS,
};
use crate::dpdk::{
    fixed_rx_queues, max_queues, port_socket, Eal, Mbuf, MbufBurst, Mempool, Port, PortConfig,
    TxBuffer,
};
use crate::lb::verdict::DropReason;
use crossbeam::queue::ArrayQueue;

/// How often reloads and socket requests are taken, neighbours asked again, probes reaped.
const HOUSEKEEPING: Duration = Duration::from_millis(50);
/// The most often new neighbours alone cause a new forwarding state.
const NEIGHBOUR_BATCH: Duration = Duration::from_millis(2);
/// How long the control thread sleeps when the twins had nothing to send.
const IDLE_SLEEP: Duration = Duration::from_micros(200);
const RX_DESCRIPTORS: u16 = Dataplane::RING_DESCRIPTORS;
const TX_DESCRIPTORS: u16 = Dataplane::RING_DESCRIPTORS;

/// Runs the appliance until SIGINT or SIGTERM. `cfg` must already be validated.
pub fn run(cfg: Config, config_path: &Path, extra_eal_args: &[String]) -> Result<(), Error> {
    // The signals only raise flags (SIGTERMs count); the control thread stops the workers.
    let stop = Arc::new(AtomicBool::new(false));
    let (interrupt, term, reload) =
        super::shutdown::signals().map_err(|e| Error::Config(format!("signal handling: {e}")))?;
    super::probes::raise_open_files_limit();
    // A running instance (the service, beside one started by hand) is left alone.
    if let Some(path) = cfg.control.socket.as_deref().filter(|p| socket::in_use(p)) {
        return Err(Error::Control(format!(
            "{} is in use: another haports runs with this control socket (left as it is)",
            path.display()
        )));
    }
    twin::names_free(&cfg)?;
    // Before any twin exists: no route a predecessor announced may come back with it (not a
    // running instance's, which it would not announce again while its health stays the
    // same). The routes file is claimed for as long as this instance runs.
    let mut claim = match &cfg.announce {
        Some(a) => Some(announce::routes_claim(a).map_err(Error::Announce)?),
        None => None,
    };
    let _claimed = match (&cfg.announce, claim.as_mut()) {
        (Some(a), Some(claim)) => {
            let held = claim.try_write().map_err(|e| {
                Error::Announce(format!(
                    "{}.lock is held ({e}): another haports announces through this routes \
                     file (its routes are left announced)",
                    a.routes_file.display()
                ))
            })?;
            announce::withdraw_at_start(a).map_err(Error::Announce)?;
            Some(held)
        }
        _ => None,
    };

    let started = Instant::now();
    let mut eal_args = cfg.dpdk.eal_args.clone();
    eal_args.extend_from_slice(extra_eal_args);
    let eal = Eal::init(&eal_args)?;
    let workers = cfg.dataplane.workers as usize;
    let lcores = eal.worker_lcores();
    if lcores.len() < workers {
        return Err(Error::Config(format!(
            "dataplane.workers = {workers} but EAL has {} worker lcore(s): give `-l` {} more",
            lcores.len(),
            workers - lcores.len()
        )));
    }

    // Packet buffers in a pool on each port's NUMA socket, where its device writes them, as
    // testpmd has them: a port's queues and its twin's take from it. Each pool holds as
    // many as configured (`check` refused fewer than the rings need), else what the rings
    // of its ports need.
    let sockets: Vec<Option<u32>> = cfg.interface.iter().map(|i| port_socket(i.port)).collect();
    let (pool_sockets, pool_of) = Mempool::per_socket(&sockets);
    let pools = (pool_sockets.iter().enumerate())
        .map(|(p, &socket)| {
            let count = match cfg.dataplane.mbufs {
                0 => cfg
                    .dataplane
                    .mbufs_for_rings(pool_of.iter().filter(|&&o| o == p).count()),
                n => n,
            };
            let name = socket.map_or("haports".into(), |s| format!("haports-{s}"));
            match socket {
                Some(s) => Mempool::near(&name, count, Dataplane::MBUF_CACHE, s),
                None => Mempool::new(&name, count, Dataplane::MBUF_CACHE, None),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pool = |interface: usize| &pools[pool_of[interface]];

    let mut ports = Vec::new();
    let mut twins = Vec::new();
    let mut macs = Vec::new();
    let mut mtus = Vec::new();
    let mut handoffs = Vec::new();
    let mut frontend_macs = Vec::new();
    // A twin has the control thread's RX and TX queue; the workers hand it theirs (`to_twin`).
    let twin_queues = Dataplane::TWIN_QUEUES;
    let mut to_twin = Vec::new();
    for (i, ifc) in cfg.interface.iter().enumerate() {
        // The control thread sends the twins' traffic on a TX queue of its own where the
        // port has one to spare, else through worker 0 (a lock-free hand-off queue).
        let (_, max_tx) = max_queues(ifc.port)?;
        if let Some(n) = fixed_rx_queues(ifc.port)?.filter(|&n| n > workers as u16) {
            return Err(Error::Config(format!(
                "interface `{}`: its device fills {n} RX queues (its vdev's qpairs or \
                 queue_count) but {workers} worker(s) poll {workers}: frames on the others \
                 would be lost; give the vdev qpairs={workers} (AF_PACKET) or \
                 queue_count={workers} (AF_XDP)",
                ifc.name
            )));
        }
        let own_queue = max_tx > workers as u16;
        handoffs.push((!own_queue).then(|| Arc::new(ArrayQueue::<Mbuf>::new(1024))));
        let port = Port::start(
            ifc.port,
            &PortConfig {
                rx_queues: workers as u16,
                tx_queues: workers as u16 + u16::from(own_queue),
                rx_descriptors: RX_DESCRIPTORS,
                tx_descriptors: TX_DESCRIPTORS,
                rss: true,
                mac: ifc.mac,
            },
            pool(i),
        )?;
        let mac = port.mac()?;
        let mut held = FrontendMacs::default();
        held.receive(&port, ifc.port, &cfg)?;
        let twin_port = twin::start(&eal, i, ifc, mac, pool(i), twin_queues)?;
        held.groups.join(ifc, &cfg);
        frontend_macs.push(held);
        tracing::info!(interface = %ifc.name, port = ifc.port, %mac, twin = %twin::kernel_name(&ifc.name), "interface up");
        mtus.push(port.mtu()?);
        ports.push(port);
        twins.push(twin_port);
        to_twin.push(Arc::new(ArrayQueue::<Mbuf>::new(1024)));
        macs.push(mac);
    }

    let (mut prober, transitions) = Prober::new();
    let mut plane = Plane::new(cfg, extra_eal_args, macs, mtus);
    let narrow = plane.narrow_ipv6_tunnels(&plane.cfg);
    if !narrow.is_empty() {
        return Err(Error::Config(narrow.join("; ")));
    }
    let forwarding = Arc::new(ArcSwap::from_pointee(plane.build(None)));
    let cfg = plane.cfg.clone();
    let reports = Worker::new_reports();
    let counters: Vec<Arc<WorkerCounters>> = (0..workers)
        .map(|_| Arc::new(WorkerCounters::default()))
        .collect();
    // The twins' packets this thread dropped, by reason (it is their counters' one writer):
    // those it could not send (`tx_full`), those in several segments or the twin's kernel
    // may not send (`unsupported`, `martian_source`, `truncated`: twin_egress).
    let control_drops: Arc<[Counter; DropReason::COUNT]> = Arc::default();
    let control_tx_full = &control_drops[DropReason::TxFull.index()];
    let control_to_kernel = Arc::new(Counter::default());

    // Before any worker runs: a socket another haports holds stops the start here.
    let socket = cfg
        .control
        .socket
        .as_deref()
        .map(ControlSocket::bind)
        .transpose()?;
    // Started now for the metrics; told what to announce only once the workers run.
    let announce = plane.cfg.announce.as_ref();
    let mut announcer = announce.map(Announcer::start).transpose()?;
    let mut metrics_thread = None;
    if let Some(addr) = cfg.control.metrics_listen {
        let source = MetricsSource {
            workers: counters.clone(),
            control_drops: control_drops.clone(),
            control_to_kernel: control_to_kernel.clone(),
            ports: cfg
                .interface
                .iter()
                .map(|i| i.name.clone())
                .zip(ports.iter().cloned())
                .collect(),
            forwarding: forwarding.clone(),
            probes: prober.status.clone(),
            neighbours: plane.neighbours.stats.clone(),
            announce: announcer.as_ref().map(|a| a.status.clone()),
            reloads: plane.reloads.clone(),
        };
        metrics_thread = Some(serve(addr, source, stop.clone())?);
    }

    // Once a worker runs, a failure must stop it before the ports and the pool go away.
    let kernel_budget = Arc::new(KernelBudget::default());
    // What the control thread asks its neighbours, for the workers to report their answers.
    let asking = plane.neighbours.asking.clone();
    let launched = (|| -> Result<(), Error> {
        for (w, lcore) in lcores.iter().take(workers).enumerate() {
            let worker = Worker {
                index: w,
                rx: ports.iter().map(|p| p.rx_queue(w as u16)).collect(),
                tx: ports.iter().map(|p| p.tx_queue(w as u16)).collect(),
                to_twin: to_twin.iter().map(ToTwin::clone).collect(),
                state: WorkerState {
                    kernel: kernel_budget.clone(),
                    new_flows: counters[w].backend_flows.clone(),
                    traffic: Some(counters[w].backend_traffic.clone()),
                    neighbours: NeighbourReports::answering(reports.clone(), asking.clone()),
                    ..WorkerState::on_socket(
                        cfg.dataplane.flow_table_capacity as usize,
                        reports.clone(),
                        eal.socket_of(*lcore),
                        w,
                    )
                },
                forwarding: forwarding.clone(),
                counters: counters[w].clone(),
                stop: stop.clone(),
                tsc_hz: eal.tsc_hz(),
                kernel_out: if w == 0 { handoffs.clone() } else { Vec::new() },
            };
            eal.launch(*lcore, move || worker.run())?;
            tracing::info!(worker = w, lcore = lcore.id(), "worker started");
        }
        Ok(())
    })();
    if let Err(e) = launched {
        tracing::error!(error = %e, "start-up failed; stopping the workers already launched");
        stop.store(true, Ordering::Relaxed);
        prober.stop();
        eal.wait_all();
        if let Some(t) = metrics_thread {
            let _ = t.join();
        }
        return Err(e);
    }

    // The control thread's own queues: each twin's RX and TX queue, and each port's spare TX
    // queue (`workers`) where it has one.
    let mut twin_rx: Vec<_> = (twins.iter().enumerate())
        .flat_map(|(ifc, t)| (0..twin_queues).map(move |q| (ifc, t.rx_queue(q))))
        .collect();
    let mut twin_tx: Vec<_> = twins
        .iter()
        .zip(&to_twin)
        .map(|(t, h)| (h.clone(), t.tx_queue(0)))
        .collect();
    let mut twin_buf = TxBuffer::default();
    let mut port_tx: Vec<KernelOut> = ports
        .iter()
        .zip(&handoffs)
        .map(|(p, h)| match h {
            Some(q) => KernelOut::Handoff(q.clone()),
            None => KernelOut::Queue(p.tx_queue(workers as u16)),
        })
        .collect();
    let mut tx_bufs: Vec<TxBuffer> = ports.iter().map(|_| TxBuffer::default()).collect();
    let mut burst = MbufBurst::default();
    let mut next_housekeeping = Instant::now();
    let mut last_publish = Instant::now();
    let mut neighbours_changed = false;
    let mut shutdown = Shutdown::Running;
    // Announcements wait for health (and config) to settle (see announce::settle_time).
    let mut last_health_change = Instant::now();
    // Control-socket reloads a withdrawal holds, answered once it applies (BIRD took it, or
    // in time); those applied this round, with their generations, once it is published.
    let mut reloads_waiting = Vec::new();
    let mut reloads_applied = Vec::new();
    // States replaced while the workers may hold them (dropped after the workers stop).
    let mut retired = Retired::default();
    tracing::info!(workers, interfaces = ports.len(), "haports running");
    super::notify::send("READY=1");
    // Probes start now that this loop relays them (a first probe before would time out).
    prober.set_targets(&plane.targets, &mut plane.health);

    loop {
        shutdown = shutdown.next(&interrupt, &term, announcer.as_ref(), &plane.cfg);
        if shutdown == Shutdown::Stop {
            break;
        }
        let mut moved = 0;
        for (ifc, rxq) in &mut twin_rx {
            let (ifc, n) = (*ifc, rxq.burst(&mut burst));
            moved += n;
            for slot in burst.slots_mut() {
                let Some(m) = slot.take() else { continue };
                // A frame the twin's MTU let grow past one buffer: the ports are not set up
                // to send chained ones (nor does a vector TX path expect them).
                let own = &plane.cfg.interface;
                match (m.is_chained(), twin_egress::may_leave(m.data(), own)) {
                    (false, Ok(())) => drop(tx_bufs[ifc].push(m)),
                    (true, _) => control_drops[DropReason::Unsupported.index()].add(1),
                    (false, Err(reason)) => control_drops[reason.index()].add(1),
                }
            }
            burst.clear();
            port_tx[ifc].send(&mut tx_bufs[ifc], control_tx_full);
        }
        for (q, txq) in &mut twin_tx {
            while !twin_buf.is_full() {
                let Some(m) = q.pop() else { break };
                let _ = twin_buf.push(m);
                moved += 1;
            }
            // What reached the twin counts as to the kernel, what it had no room for as a drop.
            let (sent, lost) = txq.flush(&mut twin_buf);
            control_to_kernel.add(sent as u64);
            control_tx_full.add(lost as u64);
        }

        // Health changes and reloads are published at once: failover must not wait; so is
        // the end of a pool's hold on flows as its backends came back (plane::settle_flows).
        let mut urgent = plane.settled_flows(Instant::now());
        while let Ok(t) = transitions.try_recv() {
            // A probe removed by a reload may still report once: not about a backend now.
            // Nor does one that says what was known already (carried over by a reload)
            // change the health view.
            if prober.is_current(&t) {
                if plane.health.insert(t.target, t.healthy) != Some(t.healthy) {
                    last_health_change = Instant::now();
                }
                urgent = true;
            }
        }
        // Workers' neighbour reports. A want is asked for at once (a packet is waiting);
        // answers are published at most once per NEIGHBOUR_BATCH, so that many new
        // neighbours at once do not keep the control thread rebuilding.
        let now = Instant::now();
        let mut ask_now = false;
        // A queue's worth a round at most: workers as fast as this cannot hold the thread.
        for report in std::iter::from_fn(|| reports.pop()).take(REPORTS) {
            ask_now |= matches!(report, Report::Want { .. });
            neighbours_changed |= plane.neighbours.report(report, now);
        }
        // A reload waiting for BIRD to take a withdrawal applies once it did (or in time).
        let mut applied = plane.apply_pending(&mut prober, announcer.as_ref(), now);
        let housekeeping = now >= next_housekeeping;
        if housekeeping {
            next_housekeeping = now + HOUSEKEEPING;
            let fwd = forwarding.load_full();
            if reload.swap(false, Ordering::Relaxed) {
                if let Reload::Applied(generation) =
                    plane.reload(config_path, &fwd, &mut prober, announcer.as_mut())
                {
                    applied = Some(generation);
                }
            }
            while let Some((request, reply)) = socket.as_ref().and_then(ControlSocket::next) {
                let answer = match request {
                    Request::Reload => {
                        match plane.reload(config_path, &fwd, &mut prober, announcer.as_mut()) {
                            // Answered once the state it makes is published.
                            Reload::Applied(generation) => {
                                applied = Some(generation);
                                reloads_applied.push((reply, generation));
                                continue;
                            }
                            Reload::Refused(problems) => serde_json::json!({
                                "outcome": "refused", "generation": plane.config_generation,
                                "problems": problems, "pending": plane.pending.is_some(),
                            }),
                            // Answered once it applies (BIRD took the withdrawal, or in time).
                            Reload::Withdrawing => {
                                reloads_waiting.push(reply);
                                continue;
                            }
                        }
                    }
                    Request::Status => {
                        let announced = announcer
                            .as_ref()
                            .map(|a| a.status.lock().unwrap_or_else(|e| e.into_inner()));
                        status(&StatusInputs {
                            started,
                            config_path,
                            cfg: &plane.cfg,
                            config_generation: plane.config_generation,
                            fwd: &forwarding.load(),
                            ports: &ports,
                            announce: announced.as_deref(),
                            shutdown,
                        })
                    }
                };
                let _ = reply.send(answer);
            }
            // Reaps stopped probe threads and starts any that could not start before.
            urgent |= prober.set_targets(&plane.targets, &mut plane.health);
        }
        if applied.is_some() {
            urgent = true;
            // A reload that changed nothing the health view rests on (the same config again,
            // as configuration management sends it) does not hold announcements back.
            if std::mem::take(&mut plane.balancing_changed) {
                last_health_change = now;
            }
            frontend_macs_after_reload(&ports, &mut frontend_macs, &plane.cfg);
        }
        if urgent || (neighbours_changed && now >= last_publish + NEIGHBOUR_BATCH) {
            let next = plane.build(Some(&forwarding.load()));
            // The replaced state is freed here once no worker holds it, not by a worker.
            retired.publish(&forwarding, next, &counters);
            last_publish = now;
            neighbours_changed = false;
        } else if housekeeping {
            retired.release(&counters);
        }
        // After the publication: a reload's new backends are asked for at once.
        if housekeeping || ask_now || applied.is_some() {
            let (solicitations, changed) = plane.neighbours.tick(&forwarding.load(), now);
            neighbours_changed |= changed;
            for (ifc, frame) in solicitations {
                if let Some(m) = Mbuf::from_bytes(pool(ifc as usize), &frame) {
                    let _ = tx_bufs[ifc as usize].push(m);
                    port_tx[ifc as usize].send(&mut tx_bufs[ifc as usize], control_tx_full);
                }
            }
        }
        // A reload is answered once the workers have its state (and no withdrawal holds it).
        for (reply, generation) in reloads_applied.drain(..) {
            let _ = reply.send(serde_json::json!({"outcome": "applied", "generation": generation}));
        }
        if let Some(generation) = applied.filter(|_| plane.pending.is_none()) {
            let answer = plane.applied_after_withdrawal(generation);
            for reply in reloads_waiting.drain(..) {
                let _ = reply.send(answer.clone());
            }
        }
        // Announced: the frontends served now, until a drain begins; while a reload waits for
        // BIRD to take a withdrawal, only withdrawals (the state still serving the frontends
        // it drops would announce them again, but a frontend that stops serving meanwhile
        // goes at once).
        if let Some(a) = announcer.as_mut() {
            if shutdown != Shutdown::Running {
                a.want(announce::Routes::new());
            } else if urgent || housekeeping {
                let reported = plane.targets.iter().all(|t| plane.health.contains_key(t));
                let settled = reported
                    && now >= last_health_change + announce::settle_time(&plane.cfg)
                    && plane.pending.is_none();
                let serving = announce::serving(&forwarding.load(), &plane.cfg);
                a.want(announce::to_announce(serving, a.wanted(), settled));
            }
        }
        if moved == 0 {
            std::thread::sleep(IDLE_SLEEP);
        }
    }

    // Withdrawn before the workers stop (after a drain, already).
    if let Some(mut a) = announcer.take() {
        a.want(announce::Routes::new());
        if !a.wait_settled(WITHDRAW_WAIT) {
            tracing::warn!("BIRD has not confirmed the withdrawal; stopping anyway (the routes die with the twins)");
        }
    }
    tracing::info!("stopping: waiting for workers");
    stop.store(true, Ordering::Relaxed);
    prober.stop();
    eal.wait_all();
    if let Some(t) = metrics_thread {
        let _ = t.join();
    }
    drop((twin_rx, twin_tx, twin_buf, port_tx));
    // The last holder of the hand-off queues (the workers' are gone): packets still in them
    // go back to the pool now, while it exists. Left to the end of this function they were
    // freed into a pool already gone: a crash on the way out, seen once in tests/scale_out.
    drop((handoffs, to_twin));
    drop(tx_bufs);
    drop(burst);
    drop(twins);
    drop(ports);
    drop(pools);
    tracing::info!("stopped");
    Ok(())
}
