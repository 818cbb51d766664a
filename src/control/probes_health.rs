//! The threshold state machine of a probe target: its results folded into up or down.

use super::once::Outcome;
use super::Target;

/// The threshold state machine of one target.
#[derive(Debug, Default)]
pub(super) struct Health {
    pub(super) healthy: Option<bool>,
    pub(super) passes: u32,
    pub(super) fails: u32,
}

impl Health {
    /// Folds in one outcome; returns the new state when it changed.
    pub(super) fn observe(&mut self, t: &Target, outcome: &Outcome) -> Option<bool> {
        let next = match (outcome, self.healthy) {
            (Outcome::Pass, _) => {
                self.passes += 1;
                self.fails = 0;
                match self.healthy {
                    None => Some(true),
                    Some(false) if self.passes >= t.healthy_threshold => Some(true),
                    h => h,
                }
            }
            (Outcome::Fail(_), h) => {
                self.fails += 1;
                self.passes = 0;
                match h {
                    None => Some(false),
                    Some(true) if self.fails >= t.unhealthy_threshold => Some(false),
                    h => h,
                }
            }
            (Outcome::Local(_), None) => Some(false),
            (Outcome::Local(_), h) => h,
            (Outcome::Reject(_), _) => {
                self.fails += 1;
                self.passes = 0;
                Some(false)
            }
        };
        let changed = next != self.healthy;
        self.healthy = next;
        changed.then_some(next.unwrap_or(false))
    }
}
