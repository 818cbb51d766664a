//! `haports run`: start, serve, stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::metrics::{serve, MetricsSource};
use super::neighbours::Neighbours;
use super::{twin, Error};
use crate::config::Config;
use crate::dataplane::{Worker, WorkerCounters, WorkerState};
use crate::dpdk::{max_queues, Eal, Mbuf, MbufBurst, Mempool, Port, PortConfig, TxBuffer, TxQueue};
use crate::lb::forwarding::{Forwarding, Observations};
use crossbeam::queue::ArrayQueue;

/// How often neighbours are re-solicited and reports folded into a new state.
const HOUSEKEEPING: Duration = Duration::from_millis(50);
/// How long the control thread sleeps when the twins had nothing to send.
const IDLE_SLEEP: Duration = Duration::from_micros(200);
const RX_DESCRIPTORS: u16 = 1024;
const TX_DESCRIPTORS: u16 = 1024;

/// Where the control thread sends a port's share of the twins' traffic.
enum KernelOut {
    Queue(TxQueue),
    Handoff(Arc<ArrayQueue<Mbuf>>),
}

impl KernelOut {
    fn send(&mut self, buf: &mut TxBuffer) {
        match self {
            KernelOut::Queue(q) => {
                q.flush(buf);
            }
            KernelOut::Handoff(q) => {
                for m in buf.drain() {
                    // Full: the worker is behind; drop like a full TX ring would.
                    let _ = q.push(m);
                }
            }
        }
    }
}

/// Runs the appliance until SIGINT or SIGTERM. `cfg` must already be validated.
pub fn run(cfg: Config, extra_eal_args: &[String]) -> Result<(), Error> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| Error::Config(format!("signal handler: {e}")))?;
    }
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .map_err(|e| Error::Config(format!("signal handler: {e}")))?;

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

    // Mbufs: every RX/TX ring of every port and twin, per-lcore caches, bursts in flight.
    let rings = cfg.interface.len() * workers * 2 * 2;
    let count = (rings * usize::from(RX_DESCRIPTORS) + 4096).next_power_of_two() - 1;
    let pool = Mempool::new("haports", count as u32, 256)?;

    let mut ports = Vec::new();
    let mut twins = Vec::new();
    let mut macs = Vec::new();
    let mut handoffs = Vec::new();
    for (i, ifc) in cfg.interface.iter().enumerate() {
        // The control thread sends the twins' traffic on a TX queue of its own where the
        // port has one to spare, else through worker 0 (a lock-free hand-off queue).
        let (_, max_tx) = max_queues(ifc.port)?;
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
            &pool,
        )?;
        let mac = port.mac()?;
        let kname = twin::kernel_name(&ifc.name);
        let vdev = twin::vdev_name(i);
        let twin_id = eal.probe_vdev(&format!("{vdev},iface={kname},mac={mac}"), &vdev)?;
        let twin_port = Port::start(
            twin_id,
            &PortConfig {
                rx_queues: workers as u16,
                tx_queues: workers as u16,
                rx_descriptors: RX_DESCRIPTORS,
                tx_descriptors: TX_DESCRIPTORS,
                rss: false,
                mac: None,
            },
            &pool,
        )?;
        let routes: Vec<_> = ifc.routes.iter().map(|r| (r.to, r.via)).collect();
        twin::configure(&kname, &ifc.address, &routes)?;
        tracing::info!(interface = %ifc.name, port = ifc.port, %mac, twin = %kname, "interface up");
        ports.push(port);
        twins.push(twin_port);
        macs.push(mac);
    }

    let mut neighbours = Neighbours::default();
    let mut generation = 1;
    let observations = |n: &Neighbours| Observations {
        down: Default::default(),
        neighbours: n.known.clone(),
        interface_macs: macs.clone(),
    };
    let forwarding = Arc::new(ArcSwap::from_pointee(Forwarding::build(
        &cfg,
        &observations(&neighbours),
        generation,
        None,
    )));
    let gleans = Worker::new_gleans();
    let counters: Vec<Arc<WorkerCounters>> = (0..workers)
        .map(|_| Arc::new(WorkerCounters::default()))
        .collect();

    for (w, lcore) in lcores.iter().take(workers).enumerate() {
        let worker = Worker {
            index: w,
            rx: ports.iter().map(|p| p.rx_queue(w as u16)).collect(),
            tx: ports.iter().map(|p| p.tx_queue(w as u16)).collect(),
            twin_tx: twins.iter().map(|p| p.tx_queue(w as u16)).collect(),
            state: WorkerState::new(cfg.dataplane.flow_table_capacity as usize, gleans.clone()),
            forwarding: forwarding.clone(),
            counters: counters[w].clone(),
            stop: stop.clone(),
            tsc_hz: eal.tsc_hz(),
            kernel_out: if w == 0 { handoffs.clone() } else { Vec::new() },
        };
        eal.launch(*lcore, move || worker.run())?;
        tracing::info!(worker = w, lcore = lcore.0, "worker started");
    }

    let mut metrics_thread = None;
    if let Some(addr) = cfg.control.metrics_listen {
        let source = MetricsSource {
            workers: counters.clone(),
            ports: cfg
                .interface
                .iter()
                .map(|i| i.name.clone())
                .zip(ports.iter().cloned())
                .collect(),
            forwarding: forwarding.clone(),
        };
        metrics_thread = Some(serve(addr, source, stop.clone())?);
    }

    // The control thread's own queues: RX of every twin queue, TX queue `workers` of each port.
    let mut twin_rx: Vec<_> = twins
        .iter()
        .flat_map(|t| (0..workers as u16).map(move |q| t.rx_queue(q)))
        .collect();
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
    tracing::info!(workers, interfaces = ports.len(), "haports running");

    while !stop.load(Ordering::Relaxed) {
        let mut moved = 0;
        for (i, rxq) in twin_rx.iter_mut().enumerate() {
            let ifc = i / workers;
            let n = rxq.burst(&mut burst);
            moved += n;
            for slot in burst.slots_mut() {
                if let Some(m) = slot.take() {
                    let _ = tx_bufs[ifc].push(m);
                }
            }
            burst.clear();
            port_tx[ifc].send(&mut tx_bufs[ifc]);
        }

        let now = Instant::now();
        if now >= next_housekeeping {
            next_housekeeping = now + HOUSEKEEPING;
            let mut changed = false;
            while let Some((addr, mac)) = gleans.pop() {
                changed |= neighbours.learn(addr, mac);
            }
            if changed {
                generation += 1;
                let next = Forwarding::build(
                    &cfg,
                    &observations(&neighbours),
                    generation,
                    Some(&forwarding.load()),
                );
                forwarding.store(Arc::new(next));
                tracing::debug!(
                    generation,
                    neighbours = neighbours.known.len(),
                    "published forwarding state"
                );
            }
            for (ifc, frame) in neighbours.solicitations(&forwarding.load(), now) {
                if let Some(m) = Mbuf::from_bytes(&pool, &frame) {
                    let _ = tx_bufs[ifc as usize].push(m);
                    port_tx[ifc as usize].send(&mut tx_bufs[ifc as usize]);
                }
            }
            if reload.swap(false, Ordering::Relaxed) {
                tracing::warn!(
                    "SIGHUP: configuration reload is not supported yet; keeping the running config"
                );
            }
        }
        if moved == 0 {
            std::thread::sleep(IDLE_SLEEP);
        }
    }

    tracing::info!("stopping: waiting for workers");
    eal.wait_all();
    if let Some(t) = metrics_thread {
        let _ = t.join();
    }
    drop(twin_rx);
    drop(port_tx);
    drop(tx_bufs);
    drop(burst);
    drop(twins);
    drop(ports);
    drop(pool);
    tracing::info!("stopped");
    Ok(())
}
