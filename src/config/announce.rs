//! `[announce]`: how the frontends reach the routers (DESIGN §10). haports writes the routes
//! it announces into a file that BIRD 2 includes, as static routes through the kernel twin,
//! and asks BIRD over its control socket to read its config again. A route through the twin
//! dies with the process: the twin is a tap device that exists only while haports runs.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[announce]`: announcing frontends by BGP through BIRD. Absent: nothing is announced, and
/// SIGTERM stops at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Announce {
    /// BIRD's control socket (`birdc -s`); Debian's bird2 listens on `/run/bird/bird.ctl`.
    pub bird_socket: PathBuf,
    /// The file haports writes: two static protocols, `haports4` and `haports6`, with one
    /// route a frontend announced. BIRD's config includes it; BGP exports those protocols.
    pub routes_file: PathBuf,
    /// SIGTERM: withdraw every frontend, keep forwarding this many seconds (so the routers
    /// move the flows to the other instances first), then stop.
    pub drain_s: u32,
    /// The interface whose twin the routes go through; the first interface by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

impl Announce {
    pub const DEFAULT_BIRD_SOCKET: &'static str = "/run/bird/bird.ctl";
    pub const DEFAULT_ROUTES_FILE: &'static str = "/run/haports/bird-routes.conf";
    pub const DEFAULT_DRAIN_S: u32 = 5;
    pub const MAX_DRAIN_S: u32 = 3600;
}

impl Default for Announce {
    fn default() -> Self {
        Announce {
            bird_socket: PathBuf::from(Self::DEFAULT_BIRD_SOCKET),
            routes_file: PathBuf::from(Self::DEFAULT_ROUTES_FILE),
            drain_s: Self::DEFAULT_DRAIN_S,
            interface: None,
        }
    }
}
