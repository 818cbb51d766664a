//! The frames each port receives for the frontends: their own MACs, which frames routed
//! through a frontend carry (by the port's MAC filter, else in promiscuous mode), and their
//! solicited-node groups, which a switch snooping MLD forwards where they are reported
//! ([`FrontendGroups`]).

use super::frontend_groups::FrontendGroups;
use super::Error;
use crate::config::Config;
use crate::dpdk::{DpdkError, Port};
use crate::lb::forwarding::frontend_mac;
use crate::wire::MacAddr;

/// What a port's MAC filter holds for the frontends, so that a reload takes out those of
/// frontends it removed (a NIC's filter has room for a few dozen: reloads that rotate
/// frontends would otherwise fill it, and every later port would fall back to promiscuous
/// mode); `promiscuous` once the filter could not take one.
#[derive(Debug, Default)]
pub(super) struct FrontendMacs {
    held: Vec<MacAddr>,
    promiscuous: bool,
    /// The IPv6 frontends' groups, joined on the interface's kernel twin.
    pub(super) groups: FrontendGroups,
}

/// A port's MAC filter, as [`FrontendMacs`] uses it.
pub(super) trait MacFilter {
    fn add_mac(&self, mac: MacAddr) -> Result<(), DpdkError>;
    fn remove_mac(&self, mac: MacAddr) -> Result<(), DpdkError>;
    fn enable_promiscuous(&self) -> Result<(), DpdkError>;
    fn disable_promiscuous(&self) -> Result<(), DpdkError>;
}

impl MacFilter for Port {
    fn add_mac(&self, mac: MacAddr) -> Result<(), DpdkError> {
        Port::add_mac(self, mac)
    }
    fn remove_mac(&self, mac: MacAddr) -> Result<(), DpdkError> {
        Port::remove_mac(self, mac)
    }
    fn enable_promiscuous(&self) -> Result<(), DpdkError> {
        Port::set_promiscuous(self, true)
    }
    fn disable_promiscuous(&self) -> Result<(), DpdkError> {
        Port::set_promiscuous(self, false)
    }
}

impl FrontendMacs {
    /// Has `port` (interface port `id`) receive the frames addressed to every frontend's own
    /// MAC in `cfg` and no longer those of frontends gone from it: by its MAC filter, else in
    /// promiscuous mode, which it leaves once the filter holds them all again (a reload
    /// that took frontends out). A MAC the filter holds already is no error.
    pub(super) fn receive(
        &mut self,
        port: &impl MacFilter,
        id: u16,
        cfg: &Config,
    ) -> Result<(), Error> {
        let wanted = wanted(cfg);
        // A MAC the filter would not give up stays held: the next reload tries it again.
        self.held.retain(|m| {
            let removed = || match port.remove_mac(*m) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(port = id, mac = %m, reason = %e, "frontend MAC not removed from the filter");
                    false
                }
            };
            wanted.contains(m) || !removed()
        });
        for mac in wanted {
            if self.held.contains(&mac) {
                continue;
            }
            if let Err(e) = port.add_mac(mac) {
                if !self.promiscuous {
                    let what = "no MAC filter for the frontends; using promiscuous mode";
                    tracing::info!(port = id, reason = %e, "{what}");
                    port.enable_promiscuous()?;
                    self.promiscuous = true;
                }
                return Ok(());
            }
            self.held.push(mac);
        }
        if self.promiscuous {
            match port.disable_promiscuous() {
                Ok(()) => {
                    tracing::info!(
                        port = id,
                        "the MAC filter holds the frontends again; promiscuous mode off"
                    );
                    self.promiscuous = false;
                }
                Err(e) => tracing::warn!(port = id, reason = %e, "promiscuous mode stays on"),
            }
        }
        Ok(())
    }
}

/// Every frontend's own MAC in `cfg`, once each.
fn wanted(cfg: &Config) -> Vec<MacAddr> {
    let mut macs: Vec<MacAddr> = (cfg.load_balancer.iter())
        .flat_map(|lb| lb.frontend.iter().map(|fe| frontend_mac(fe.address)))
        .collect();
    macs.sort_by_key(|m| m.0);
    macs.dedup();
    macs
}

/// [`FrontendMacs::receive`] on every port once a reload applied: frontends it added are
/// received as those at start are (on a NIC that filters by MAC, their frames were dropped),
/// those it removed no longer; and their groups joined or left.
pub(super) fn frontend_macs_after_reload(ports: &[Port], held: &mut [FrontendMacs], cfg: &Config) {
    for ((ifc, port), held) in cfg.interface.iter().zip(ports).zip(held) {
        if let Err(e) = held.receive(port, ifc.port, cfg) {
            tracing::error!(port = ifc.port, reason = %e, "cannot receive the frontends' frames after the reload");
        }
        held.groups.join(ifc, cfg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A filter of `room` entries, as a NIC's.
    struct Filter {
        room: usize,
        held: RefCell<Vec<MacAddr>>,
        promiscuous: RefCell<bool>,
    }

    impl MacFilter for Filter {
        fn add_mac(&self, mac: MacAddr) -> Result<(), DpdkError> {
            let mut held = self.held.borrow_mut();
            if held.len() == self.room {
                return Err(DpdkError::from_code("adding a MAC", 28));
            }
            held.push(mac);
            Ok(())
        }
        fn remove_mac(&self, mac: MacAddr) -> Result<(), DpdkError> {
            self.held.borrow_mut().retain(|m| *m != mac);
            Ok(())
        }
        fn enable_promiscuous(&self) -> Result<(), DpdkError> {
            *self.promiscuous.borrow_mut() = true;
            Ok(())
        }
        fn disable_promiscuous(&self) -> Result<(), DpdkError> {
            *self.promiscuous.borrow_mut() = false;
            Ok(())
        }
    }

    fn with_frontends(addresses: impl Iterator<Item = String>) -> Config {
        let mut cfg = Config::from_toml(crate::config::testdata::MINIMAL, "t").unwrap();
        let fe = cfg.load_balancer[0].frontend[0].clone();
        cfg.load_balancer[0].frontend = addresses
            .enumerate()
            .map(|(i, a)| {
                let mut fe = fe.clone();
                (fe.name, fe.address) = (format!("fe{i}"), a.parse().unwrap());
                fe
            })
            .collect();
        cfg
    }

    /// Reloads that move the frontends along, 200 in all, four at a time, keep a filter of 8
    /// holding the present four alone: never full, never promiscuous.
    #[test]
    fn reloads_take_out_the_macs_of_frontends_they_removed() {
        let port = Filter {
            room: 8,
            held: RefCell::default(),
            promiscuous: RefCell::default(),
        };
        let mut macs = FrontendMacs::default();
        for first in 0..197u32 {
            let addresses =
                (first..first + 4).map(|n| format!("10.0.{}.{}", n / 200, n % 200 + 20));
            let cfg = with_frontends(addresses);
            macs.receive(&port, 0, &cfg).unwrap();
            let mut held = port.held.borrow().clone();
            held.sort_by_key(|m| m.0);
            assert_eq!(held, wanted(&cfg), "after frontends {first}..");
        }
        assert!(!*port.promiscuous.borrow());
        // More frontends than the filter holds: promiscuous, and said once.
        let cfg = with_frontends((0..9).map(|n| format!("10.0.0.{}", n + 20)));
        macs.receive(&port, 0, &cfg).unwrap();
        assert!(*port.promiscuous.borrow());
        // Still too many, one moved: promiscuous still.
        let cfg = with_frontends((1..10).map(|n| format!("10.0.0.{}", n + 20)));
        macs.receive(&port, 0, &cfg).unwrap();
        assert!(*port.promiscuous.borrow());
        // A reload back to four: the filter holds them all, and promiscuous mode goes.
        let cfg = with_frontends((0..4).map(|n| format!("10.0.0.{}", n + 20)));
        macs.receive(&port, 0, &cfg).unwrap();
        assert!(!*port.promiscuous.borrow(), "promiscuous for good");
        let mut held = port.held.borrow().clone();
        held.sort_by_key(|m| m.0);
        assert_eq!(held, wanted(&cfg));
    }
}
