//! The host memory a run needs for its simulated memory, checked against a budget before any
//! work.
//!
//! The simulated banks are backed lazily (a page of host memory only once the simulated page is
//! written), so a 1 TiB bank costs nothing until used. What a run does write is every buffer of
//! every link, at most as many as the link ever has (its `buffers`, or more after a
//! `set_buffers` event), and the memory a `memory_pressure` or `vram_pressure` event takes. The
//! estimate is the sum of those, per link and per event; [`Scenario::check_host_memory`] refuses
//! a scenario above a budget with an error naming the biggest consumers, at `frames` (exit 2).

use super::Scenario;
use crate::error::{Location, ScenarioError};
use crate::schema::EventAction;

impl Scenario {
    /// What the run will write of the simulated memory, by what writes it: `(what, bytes)`,
    /// largest first (`"link camera->isp: 4 buffers of 12 MiB"`).
    pub fn host_memory(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = Vec::new();
        for l in &self.links {
            let name = l.link_name();
            let most = self
                .events
                .iter()
                .filter_map(|e| match &e.action {
                    EventAction::SetBuffers { link, count } if link == &name => Some(*count),
                    _ => None,
                })
                .fold(l.buffers, u32::max);
            let size = self.buffer_size(l);
            out.push((
                format!("link {name}: {most} buffers of {}", soc::human_size(size)),
                size.saturating_mul(u64::from(most)),
            ));
        }
        for e in &self.events {
            if let EventAction::VramPressure { bank, bytes, .. }
            | EventAction::MemoryPressure { bank, bytes, .. } = &e.action
            {
                out.push((format!("events[{}]: pressure on {bank}", e.index), *bytes));
            }
        }
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// Refuses the scenario (exit 2) if [`Scenario::host_memory`] adds up to more than
    /// `budget` bytes; the message names the budget and the largest consumers.
    pub fn check_host_memory(&self, budget: u64) -> Result<(), ScenarioError> {
        let parts = self.host_memory();
        let total: u64 = parts.iter().map(|p| p.1).fold(0, u64::saturating_add);
        if total <= budget {
            return Ok(());
        }
        let top: Vec<String> = parts
            .iter()
            .take(3)
            .map(|(what, b)| format!("{what} ({})", soc::human_size(*b)))
            .collect();
        Err(ScenarioError::Invalid {
            location: Location::whole_file(&self.file),
            message: format!(
                "the run would write {} of simulated memory, more than the host memory budget \
                 of {} (--max-host-memory): {}",
                soc::human_size(total),
                soc::human_size(budget),
                top.join(", ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    const T: &str = r#"name = "t"
frames = 10

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
width = 1920
height = 1080

[[nodes]]
name = "screen"
driver = "display"
device = "display0"

[[links]]
from = "cam"
to = "screen"
buffers = 4

[[events]]
at_frame = 2
action = "set_buffers"
link = "cam->screen"
count = 8
"#;

    #[test]
    fn the_estimate_counts_the_most_buffers_a_link_ever_has() {
        let s = crate::validate(T, "t.toml").unwrap();
        let parts = s.host_memory();
        let frame = 1920 * 1080 * 3 / 2;
        assert_eq!(parts[0].1, 8 * frame, "{parts:?}");
        assert!(parts[0].0.contains("cam->screen: 8 buffers"), "{parts:?}");
    }

    #[test]
    fn a_scenario_over_the_budget_is_refused_naming_the_link() {
        let s = crate::validate(T, "t.toml").unwrap();
        let frame = 1920 * 1080 * 3 / 2;
        s.check_host_memory(8 * frame).expect("at the budget");
        let e = s.check_host_memory(8 * frame - 1).unwrap_err();
        assert_eq!(e.exit_code(), crate::ExitCode::Invalid);
        let m = e.to_string();
        assert!(
            m.contains("--max-host-memory") && m.contains("link cam->screen"),
            "{m}"
        );
    }
}
