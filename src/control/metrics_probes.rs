//! The probe targets' series: health, latency, transitions and counts, one series each
//! target (a probe of one service apart by timing or thresholds is a target of its own).

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

use super::super::probes::StatusBoard;
use super::{counter, escaped, gauge};

/// Encodes each probe target's series from the probes' status `board`.
pub(super) fn probe_series(
    enc: &mut DescriptorEncoder,
    board: &StatusBoard,
) -> Result<(), std::fmt::Error> {
    let probes: Vec<_> = {
        let board = board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        board
            .iter()
            .map(|(t, st)| {
                // Probes of the same service apart by timing or thresholds are targets
                // of their own: each its own series.
                let labels = vec![
                    ("backend", t.address.to_string()),
                    ("probe", t.describe()),
                    ("interval_ms", t.interval_ms.to_string()),
                    ("unhealthy_threshold", t.unhealthy_threshold.to_string()),
                    ("healthy_threshold", t.healthy_threshold.to_string()),
                ];
                (labels, st.clone())
            })
            .collect()
    };
    gauge(
        enc,
        "haports_probe_healthy",
        "1 when the probe target is up, 0 when down, -1 before its first result",
        &probes
            .iter()
            .map(|(l, s)| (l.clone(), s.healthy.map_or(-1, i64::from)))
            .collect::<Vec<_>>(),
    )?;
    {
        let mut family = enc.encode_descriptor(
            "haports_probe_latency_seconds",
            "Time the last passing probe took",
            None,
            ConstGauge::new(0f64).metric_type(),
        )?;
        for (l, s) in &probes {
            if let Some(d) = s.last_latency {
                let labels = escaped(l);
                ConstGauge::new(d.as_secs_f64()).encode(family.encode_family(&labels)?)?;
            }
        }
    }
    counter(
        enc,
        "haports_probe_transitions",
        "Probe state changes, by the state entered",
        &probes
            .iter()
            .flat_map(|(l, s)| {
                let up = [l.clone(), vec![("to", "up".to_owned())]].concat();
                let down = [l.clone(), vec![("to", "down".to_owned())]].concat();
                [(up, s.transitions_up), (down, s.transitions_down)]
            })
            .collect::<Vec<_>>(),
    )?;
    counter(
        enc,
        "haports_probes",
        "Probes run, passing or not",
        &probes
            .iter()
            .map(|(l, s)| (l.clone(), s.probes))
            .collect::<Vec<_>>(),
    )?;
    counter(
        enc,
        "haports_probe_failures",
        "Probes the backend failed (not those the appliance could not make: \
         haports_probe_local_errors)",
        &probes
            .iter()
            .map(|(l, s)| (l.clone(), s.failures))
            .collect::<Vec<_>>(),
    )?;
    counter(
        enc,
        "haports_probe_local_errors",
        "Probes the appliance could not make (out of descriptors, buffers or local ports): \
         the target's state stays as it was meanwhile",
        &probes
            .iter()
            .map(|(l, s)| (l.clone(), s.local_errors))
            .collect::<Vec<_>>(),
    )?;
    Ok(())
}
