//! Configs the `lb` tests share.

use crate::config::Config;

/// Two pools of one load balancer over the same three NVAs, one NIC in each (the two-NIC
/// NVA behind two frontends); `drain` names an instance drained in both, `nva4` adds one.
pub(crate) fn two_nic_config(drain: &str, nva4: bool) -> Config {
    let backends = |net: u8| {
        let n = if nva4 { 4 } else { 3 };
        let each = (1..=n).map(|i| {
            let drained = if drain == format!("nva{i}") {
                ", drain = true"
            } else {
                ""
            };
            format!("{{ address = \"10.{net}.0.1{i}\", instance = \"nva{i}\"{drained} }}")
        });
        each.collect::<Vec<_>>().join(", ")
    };
    let rule = |name: &str, frontend: &str, pool: &str| {
        format!(
            "[[load_balancer.rule]]\nname = \"{name}\"\nfrontend = \"{frontend}\"\n\
             backend_pool = \"{pool}\"\nprotocol = \"all\"\nfrontend_port = 0\n\
             backend_port = 0\nfloating_ip = true\n"
        )
    };
    let text = format!(
        r#"
[dataplane]
maglev_table_size = 1021
[[interface]]
name = "untrusted"
port = 0
address = "10.10.0.2/24"
[[interface]]
name = "trusted"
port = 1
address = "10.20.0.2/24"
[[load_balancer]]
name = "nva"
kind = "internal"
[[load_balancer.frontend]]
name = "u"
address = "10.10.0.100"
[[load_balancer.frontend]]
name = "t"
address = "10.20.0.100"
[[load_balancer.backend_pool]]
name = "untrusted"
backends = [{}]
[[load_balancer.backend_pool]]
name = "trusted"
backends = [{}]
{}{}"#,
        backends(10),
        backends(20),
        rule("ru", "u", "untrusted"),
        rule("rt", "t", "trusted"),
    );
    Config::from_toml(&text, "test").unwrap()
}
