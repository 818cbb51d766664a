//! Building the forwarding state from a config and what the control thread observed: stable
//! pool and backend ids across rebuilds, instance health, Maglev tables (shared with the
//! previous state where a pool's active set did not change), rules, the reverse NAT map and
//! the address and MAC indexes the lookups in [`super`] read; and finding a frontend by the
//! name an operator gives (`haports lookup`).

use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};
use ipnet::IpNet;

use super::*;
use crate::config::Config;
use crate::lb::hash::hash_bytes;
use crate::lb::maglev::{MaglevBackend, MaglevTable, TableSize};

impl Forwarding {
    /// Builds the state from a validated config. Maglev tables of pools whose active set
    /// did not change are shared with `previous` instead of rebuilt.
    pub fn build(
        cfg: &Config,
        obs: &Observations,
        generation: u64,
        previous: Option<&Forwarding>,
    ) -> Forwarding {
        let seed = cfg.dataplane.hash_seed;
        let size = TableSize::new(cfg.dataplane.maglev_table_size).unwrap_or(TableSize::DEFAULT);

        let interfaces: Vec<InterfaceState> = cfg
            .interface
            .iter()
            .enumerate()
            .map(|(i, ifc)| InterfaceState {
                name: ifc.name.clone(),
                port: ifc.port,
                mac: obs
                    .interface_macs
                    .get(i)
                    .copied()
                    .or(ifc.mac)
                    .unwrap_or(MacAddr::ZERO),
                addresses: ifc.address.clone(),
                mtu: obs.interface_mtus.get(i).copied().unwrap_or(1500),
            })
            .collect();

        let mut own_addresses = HashMap::new();
        let mut routes: Vec<(IpNet, Route)> = Vec::new();
        for (i, ifc) in cfg.interface.iter().enumerate() {
            for net in &ifc.address {
                own_addresses.insert(net.addr(), i as InterfaceId);
                routes.push((
                    net.trunc(),
                    Route {
                        interface: i as InterfaceId,
                        next_hop: net.addr(),
                    },
                ));
            }
        }
        // Configured routes: via a gateway on one of the interfaces' subnets.
        let on_link = routes.clone();
        for (i, ifc) in cfg.interface.iter().enumerate() {
            for r in &ifc.routes {
                let interface = on_link
                    .iter()
                    .find(|(net, _)| net.contains(&r.via))
                    .map(|(_, rt)| rt.interface)
                    .unwrap_or(i as InterfaceId);
                routes.push((
                    r.to.trunc(),
                    Route {
                        interface,
                        next_hop: r.via,
                    },
                ));
            }
        }
        // Longest prefix first, so the first match is the best.
        routes.sort_by_key(|r| std::cmp::Reverse(r.0.prefix_len()));

        let mut fwd = Forwarding {
            generation,
            config_generation: 1,
            hash_seed: seed,
            kernel_pps: cfg.dataplane.kernel_pps,
            interfaces,
            frontends: Vec::new(),
            pools: Vec::new(),
            backends: Vec::new(),
            links: Vec::new(),
            takes_new: Vec::new(),
            successors: HashMap::new(),
            has_vxlan: false,
            tunnels: Vec::new(),
            frontend_by_addr: HashMap::new(),
            frontend_v4: V4Index::default(),
            claimed_v4: V4Index::default(),
            addressees: HashMap::new(),
            frontend_by_mac: HashMap::new(),
            own_addresses,
            backend_sides: HashSet::new(),
            configured_macs: HashMap::new(),
            reverse_nat: HashMap::new(),
            reply_candidates: HashMap::new(),
            neighbours: obs.neighbours.clone(),
            routes,
        };

        // Stable ids (see `ids`).
        let mut ids = Ids::new(cfg, previous, obs);
        let mut pools: Vec<Option<PoolState>> = (0..previous.map_or(0, |p| p.pools.len()))
            .map(|_| None)
            .collect();
        let mut backends: Vec<Option<BackendState>> = (0..previous.map_or(0, |p| p.backends.len()))
            .map(|_| None)
            .collect();
        // Health is per rule, through its probe: a pool has one state for each probe its
        // rules use (one without any when a rule has none, or no rule uses the pool), and a
        // backend is healthy in it when that probe passes. An instance with several
        // addresses (an NVA with a NIC in several pools) is healthy only when every probe of
        // every one of its addresses passes, so both directions of a flow fail over together.
        let down_anywhere = |lb: &str, addr: IpAddr| {
            obs.down.contains(&addr)
                || obs
                    .down_probes
                    .iter()
                    .any(|(a, l, _)| *a == addr && l == lb)
        };
        let down_for = |lb: &str, addr: IpAddr, probe: Option<&str>| {
            obs.down.contains(&addr)
                || probe.is_some_and(|p| {
                    obs.down_probes
                        .contains(&(addr, lb.to_owned(), p.to_owned()))
                })
        };
        let mut instance_addresses: HashMap<(&str, String), HashSet<IpAddr>> = HashMap::new();
        for lb in &cfg.load_balancer {
            for b in lb.backend_pool.iter().flat_map(|p| p.backends.iter()) {
                instance_addresses
                    .entry((lb.name.as_str(), b.instance()))
                    .or_default()
                    .insert(b.address);
            }
        }
        let healthy =
            |lb: &str, b: &crate::config::Backend, probe: Option<&str>| match instance_addresses
                .get(&(lb, b.instance()))
            {
                Some(addrs) if addrs.len() > 1 => !addrs.iter().any(|&a| down_anywhere(lb, a)),
                _ => !down_for(lb, b.address, probe),
            };
        let mut pool_ids: HashMap<PoolKey, PoolId> = HashMap::new();
        for lb in &cfg.load_balancer {
            for pool in &lb.backend_pool {
                let mut probes: Vec<Option<&str>> = lb
                    .rule
                    .iter()
                    .filter(|r| r.backend_pool == pool.name)
                    .map(|r| r.probe.as_deref())
                    .collect();
                if probes.is_empty() {
                    probes.push(None);
                }
                probes.sort();
                probes.dedup();
                for probe in probes {
                    let key = (lb.name.as_str(), pool.name.as_str(), probe);
                    let pool_id = match ids.pool(&key) {
                        Some(id) => id,
                        None => {
                            pools.push(None);
                            (pools.len() - 1) as PoolId
                        }
                    };
                    pool_ids.insert(key, pool_id);
                    let mut members = Vec::new();
                    for b in &pool.backends {
                        let id = ids.backend((&lb.name, pool_id, b.address), &mut backends);
                        let route = fwd.route(b.address);
                        let next_hop_mac =
                            route.and_then(|r| obs.neighbours.get(&r.next_hop).map(|n| n.mac));
                        let mac = b.mac.or(next_hop_mac);
                        let vxlan = pool.encap.map(|_| (pool.vni.unwrap_or(0), next_hop_mac));
                        backends[id as usize] = Some(BackendState {
                            load_balancer: lb.name.clone(),
                            pool: pool_id,
                            address: b.address,
                            instance: b.instance(),
                            weight: b.weight,
                            priority: b.priority,
                            drain: b.drain,
                            healthy: healthy(lb.name.as_str(), b, probe),
                            retired: false,
                            route,
                            mac,
                            vxlan,
                            resolves: b.mac.is_none() || pool.encap.is_some(),
                        });
                        members.push(id);
                    }
                    pools[pool_id as usize] = Some(PoolState {
                        load_balancer: lb.name.clone(),
                        name: pool.name.clone(),
                        probe: probe.map(str::to_owned),
                        members,
                        active: Vec::new(),
                        table: Arc::new(MaglevTable::build(&[], size)),
                        retired: false,
                    });
                }
            }
        }
        // Retired slots keep their identity (for counters) but take no traffic.
        fwd.backends = backends
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                b.unwrap_or_else(|| {
                    let old = &previous
                        .expect("a retired slot comes from the previous state")
                        .backends[i];
                    BackendState {
                        healthy: false,
                        retired: true,
                        ..old.clone()
                    }
                })
            })
            .collect();
        let empty = Arc::new(MaglevTable::build(&[], size));
        fwd.pools = pools
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                p.unwrap_or_else(|| {
                    let old = &previous
                        .expect("a retired slot comes from the previous state")
                        .pools[i];
                    PoolState {
                        members: Vec::new(),
                        active: Vec::new(),
                        table: empty.clone(),
                        retired: true,
                        ..old.clone()
                    }
                })
            })
            .collect();
        for i in 0..fwd.pools.len() {
            if fwd.pools[i].retired {
                continue;
            }
            let active = active_tier(&fwd.backends, &fwd.pools[i].members);
            let maglev: Vec<MaglevBackend> = active
                .iter()
                .map(|&b| {
                    let be = &fwd.backends[b as usize];
                    MaglevBackend {
                        id: hash_bytes(be.instance.as_bytes(), seed),
                        weight: be.weight,
                    }
                })
                .collect();
            let reuse = previous
                .and_then(|p| p.pools.get(i).map(|q| (p, q)))
                .filter(|(p, q)| {
                    !q.retired && q.table.size() == size.get() && same_members(p, q, &fwd, &active)
                })
                .map(|(_, q)| q.table.clone());
            fwd.pools[i].table =
                reuse.unwrap_or_else(|| Arc::new(MaglevTable::build(&maglev, size)));
            fwd.pools[i].active = active;
        }

        // The frontends each (backend address, protocol, backend port) restores, and the NAT
        // rules each backend address serves, where its replies' flows are looked for when
        // the rules give one of its replies more than one frontend.
        type ReverseKey = (IpAddr, Option<u8>, u16);
        let mut restores_of: HashMap<ReverseKey, Vec<ReverseNat>> = HashMap::new();
        let mut serving: HashMap<IpAddr, Vec<(FrontendId, u32)>> = HashMap::new();
        for lb in &cfg.load_balancer {
            for fe in &lb.frontend {
                let fe_id = fwd.frontends.len() as FrontendId;
                let mut rules: Vec<RuleState> = lb
                    .rule
                    .iter()
                    .filter(|r| r.frontend == fe.name)
                    .filter_map(|r| {
                        let key = (
                            lb.name.as_str(),
                            r.backend_pool.as_str(),
                            r.probe.as_deref(),
                        );
                        let pool = *pool_ids.get(&key)?;
                        Some(RuleState {
                            name: r.name.clone(),
                            protocol: r.protocol,
                            frontend_port: r.frontend_port,
                            backend_port: r.backend_port,
                            floating_ip: r.floating_ip,
                            pool,
                            idle_timeout_ms: u64::from(r.idle_timeout_s) * 1000,
                            distribution: r.distribution,
                            translated_port: (!r.is_ha_ports() && r.backend_port != 0)
                                .then_some(r.backend_port),
                        })
                    })
                    .collect();
                rules.sort_by_key(|r| r.is_ha_ports());
                for (r, rule) in rules.iter().enumerate().filter(|(_, r)| !r.floating_ip) {
                    let (proto, port, fe_port) = match rule.protocol {
                        RuleProtocol::All => (None, 0, None),
                        RuleProtocol::Tcp => {
                            (Some(PROTO_TCP), rule.backend_port, Some(rule.frontend_port))
                        }
                        RuleProtocol::Udp => {
                            (Some(PROTO_UDP), rule.backend_port, Some(rule.frontend_port))
                        }
                    };
                    let restore = ReverseNat {
                        frontend: fe.address,
                        frontend_port: fe_port,
                    };
                    for &b in &fwd.pools[rule.pool as usize].members {
                        let addr = fwd.backends[b as usize].address;
                        let restores = restores_of.entry((addr, proto, port)).or_default();
                        if !restores.contains(&restore) {
                            restores.push(restore);
                        }
                        let rules_of = serving.entry(addr).or_default();
                        if !rules_of.contains(&(fe_id, r as u32)) {
                            rules_of.push((fe_id, r as u32));
                        }
                    }
                }
                fwd.frontend_by_addr.insert(fe.address, fe_id);
                fwd.frontends.push(FrontendState {
                    load_balancer: lb.name.clone(),
                    name: fe.name.clone(),
                    address: fe.address,
                    mac: frontend_mac(fe.address),
                    mac_word: mac_word(frontend_mac(fe.address)),
                    rules,
                    transit: false,
                });
            }
        }
        // A reply from a port of the address: the restores of its port rules for that port,
        // and of its HA-ports rules (which take any port).
        let ambiguous: HashSet<IpAddr> = restores_of
            .iter()
            .filter(|(&(addr, _, _), restores)| {
                let any_port = restores_of.get(&(addr, None, 0));
                let mut each = restores.iter().chain(any_port.into_iter().flatten());
                let first = each.next();
                each.any(|r| Some(r) != first)
            })
            .map(|(&(addr, _, _), _)| addr)
            .collect();
        fwd.reverse_nat = restores_of.iter().map(|(&k, r)| (k, r[0])).collect();
        serving.retain(|addr, _| ambiguous.contains(addr));
        fwd.reply_candidates = serving;
        let (pools, backends) = (&fwd.pools, &fwd.backends);
        let by_mac = |b: &BackendState| {
            b.vxlan.is_some() || b.route.map_or(true, |r| r.next_hop == b.address)
        };
        for fe in &mut fwd.frontends {
            let ha = fe.rules.iter().find(|r| r.is_ha_ports());
            fe.transit = ha.is_some_and(|r| {
                let members = &pools[r.pool as usize].members;
                members.iter().all(|&m| by_mac(&backends[m as usize]))
            });
        }
        fwd.frontend_v4 = V4Index::new(fwd.frontend_by_addr.iter().filter_map(|(a, &f)| match a {
            IpAddr::V4(v4) => Some((u32::from(*v4), f)),
            IpAddr::V6(_) => None,
        }));
        fwd.addressees = fwd
            .own_addresses
            .iter()
            .map(|(&a, &i)| (a, Addressee::Own(i)))
            .chain(
                fwd.frontend_by_addr
                    .iter()
                    .map(|(&a, &f)| (a, Addressee::Frontend(f))),
            )
            .collect();
        // And each interface subnet's broadcast address: a directed broadcast is no sender.
        let broadcasts = (fwd.interfaces.iter().flat_map(|i| &i.addresses))
            .filter(|n| n.prefix_len() < 31)
            .filter_map(|n| match n.broadcast() {
                IpAddr::V4(b) => Some(IpAddr::V4(b)),
                IpAddr::V6(_) => None,
            })
            .collect::<Vec<_>>();
        let claimed = fwd.addressees.keys().chain(&broadcasts);
        fwd.claimed_v4 = V4Index::new(claimed.filter_map(|a| match a {
            IpAddr::V4(v4) => Some((u32::from(*v4), 0)),
            IpAddr::V6(_) => None,
        }));
        fwd.frontend_by_mac = fwd
            .frontends
            .iter()
            .enumerate()
            .map(|(i, fe)| (fe.mac, i as FrontendId))
            .collect();
        fwd.tunnels = fwd.backends.iter().map(|b| tunnel_of(&fwd, b)).collect();
        // Each (load balancer, instance) numbered: one NVA's members of several pools.
        let instances: Vec<u32> = {
            let mut numbers: HashMap<(&str, &str), u32> = HashMap::new();
            (fwd.backends.iter())
                .map(|b| {
                    let next = numbers.len() as u32;
                    let name = (b.load_balancer.as_str(), b.instance.as_str());
                    *numbers.entry(name).or_insert(next)
                })
                .collect()
        };
        fwd.links = (fwd.backends.iter().zip(&fwd.tunnels).zip(instances))
            .map(|((b, t), i)| link_of(&fwd, b, t.is_some(), i))
            .collect();
        fwd.takes_new = vec![false; fwd.backends.len()];
        for &b in fwd.pools.iter().flat_map(|p| &p.active) {
            fwd.takes_new[b as usize] = true;
        }
        fwd.successors = successors(&fwd.backends, &fwd.pools);
        fwd.has_vxlan = fwd.backends.iter().any(|b| b.vxlan.is_some() && !b.retired);
        fwd.backend_sides = backend_sides(&fwd);
        fwd.configured_macs = (fwd.backends.iter())
            .filter(|b| !b.retired && !b.resolves && b.vxlan.is_none())
            .filter(|b| b.route.is_some_and(|r| r.next_hop == b.address))
            .filter_map(|b| Some((b.address, b.mac?)))
            .collect();
        fwd
    }

    /// A frontend by name (`name` or `lb/name`) or by address.
    /// A bare name only where one load balancer has a frontend of that name (names are
    /// unique only within a load balancer): `None` where it is ambiguous.
    pub fn frontend_named(&self, text: &str) -> Option<FrontendId> {
        if let Ok(addr) = text.parse::<IpAddr>() {
            return self.frontend(addr);
        }
        let qualified = |f: &FrontendState| format!("{}/{}", f.load_balancer, f.name) == text;
        if let Some(i) = self.frontends.iter().position(qualified) {
            return Some(i as FrontendId);
        }
        let mut named = (0..self.frontends.len()).filter(|&i| self.frontends[i].name == text);
        match (named.next(), named.next()) {
            (Some(i), None) => Some(i as FrontendId),
            _ => None,
        }
    }
}

#[path = "forwarding_ids.rs"]
mod ids;
use ids::{Ids, PoolKey};

#[path = "forwarding_links.rs"]
mod links;
use links::{active_tier, backend_sides, link_of, same_members, successors, tunnel_of};
