//! The scheduler's copy of each CA's circuit, read from the store's [`CaHealth`]. Only
//! an open circuit with a cool-down still running holds a certificate back; half-open
//! lets the issuer's one probe and one order through.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use renewd_core::CaName;
use renewd_store::{CaHealth, CircuitState};

/// Each known CA's open circuit and the end of its cool-down.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Circuits {
    open_until: HashMap<CaName, DateTime<Utc>>,
}

impl Circuits {
    /// The circuits as `health` records them (CAs never stored are closed).
    pub fn from_health<'a>(health: impl IntoIterator<Item = &'a CaHealth>) -> Self {
        let mut circuits = Self::default();
        for h in health {
            circuits.update(h);
        }
        circuits
    }

    /// Takes in a CA's current health. Returns whether what the scheduler cares about (open,
    /// and until when) changed.
    pub fn update(&mut self, health: &CaHealth) -> bool {
        let open = match (health.circuit, health.open_until) {
            // An open circuit without an end is the issuer's to manage: it cannot be waited
            // for, so it holds nothing back here.
            (CircuitState::Open, Some(until)) => Some(until),
            _ => None,
        };
        let before = match open {
            Some(until) => self.open_until.insert(health.ca.clone(), until),
            None => self.open_until.remove(&health.ca),
        };
        before != open
    }

    /// Forgets a CA (its circuit counts as closed).
    pub fn forget(&mut self, ca: &CaName) -> bool {
        self.open_until.remove(ca).is_some()
    }

    /// When `ca`'s cool-down ends, if its circuit is open and the cool-down still runs at
    /// `at`.
    pub fn blocked_at(&self, ca: &CaName, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.open_until.get(ca).copied().filter(|until| *until > at)
    }

    /// When every CA of `cas` is blocked at `at`: the earliest end of their cool-downs and
    /// that CA. `None` when any of them (or none at all, for an empty list) is usable.
    pub fn all_blocked(
        &self,
        cas: &[CaName],
        at: DateTime<Utc>,
    ) -> Option<(CaName, DateTime<Utc>)> {
        let mut earliest: Option<(&CaName, DateTime<Utc>)> = None;
        for ca in cas {
            let until = self.blocked_at(ca, at)?;
            if earliest.is_none_or(|(_, e)| until < e) {
                earliest = Some((ca, until));
            }
        }
        earliest.map(|(ca, until)| (ca.clone(), until))
    }
}
