//! A constraint link's image layout and migration engine, as the runner hands them to the
//! exporter: the modifier/pitch negotiation (`constraint::Negotiation`, with the format and
//! modifier tables of `drivers::modifier`), the copy engine (`migrate_with`), and the planes of
//! a buffer after a re-layout.
//!
//! Negotiation is asked for only when a device of the link lists modifiers or a pitch
//! alignment (otherwise the format table's layout holds as before, byte for byte). The
//! buffer's size is reserved for the largest layout any subset of the link's devices could
//! negotiate (the pitch LCM of all of them, each modifier of the producer's list that holds the
//! image): a dma-buf never grows, and a late attach must find room for its re-layout.

use super::sched::Sched;
use super::world::{ExporterHandle, World};
use crate::clock::VirtualTime;
use constraint::{CpuMover, DmaEngineMover, ImageLayouts, MigrationConfig, Negotiation};
use drivers::modifier::ImageSpec;
use std::sync::Arc;

impl World {
    /// The negotiation of link `li`'s buffers and the size to reserve, or `None` when no
    /// device of the link asks for modifiers or pitch alignment.
    pub(crate) fn link_negotiation(&self, li: usize) -> Option<(Negotiation, u64)> {
        let l = &self.links[li];
        let users: Vec<usize> = std::iter::once(l.from)
            .chain(l.to.iter().copied())
            .collect();
        let descs: Vec<&soc::DeviceDesc> =
            users.iter().map(|&n| self.nodes[n].dev.desc()).collect();
        if descs
            .iter()
            .all(|d| d.modifiers.is_empty() && d.pitch_align <= 1)
        {
            return None;
        }
        let producer = &self.nodes[l.from].desc;
        let image = ImageSpec {
            format: producer.format.info(),
            width: producer.width,
            height: producer.height,
        };
        let preference = descs[0].modifiers.clone();
        let pitch = descs
            .iter()
            .fold(1, |a, d| constraint::lcm(a, d.pitch_align.max(1)));
        let candidates: Vec<&str> = if preference.is_empty() {
            vec![constraint::MOD_LINEAR]
        } else {
            preference.iter().map(String::as_str).collect()
        };
        let reserve = candidates
            .iter()
            .filter_map(|m| image.layout(m, pitch).ok())
            .map(|l| l.size)
            .max()
            .unwrap_or(0);
        Some((
            Negotiation {
                preference,
                image: Arc::new(image),
            },
            reserve,
        ))
    }

    /// The copy engine of link `li`'s migrations: the link's `migrate_with`, else `[soc]
    /// migrate_with`, else the default rule (`DmaEngineMover::auto`).
    pub(crate) fn migration_config(&self, li: usize) -> MigrationConfig {
        let with = self.links[li]
            .desc
            .migrate_with
            .clone()
            .or_else(|| self.kernel.soc().desc().migrate_with.clone());
        let mover: Arc<dyn constraint::Mover> = match with.as_deref() {
            None => Arc::new(DmaEngineMover::auto()),
            Some("cpu") => Arc::new(CpuMover),
            Some(dev) => Arc::new(DmaEngineMover::device(dev)),
        };
        MigrationConfig {
            mover,
            ..MigrationConfig::default()
        }
    }

    /// Once its first users attached, buffer `bi`'s planes are the ones they negotiate.
    pub(crate) fn settle_layout(&mut self, bi: usize) -> Result<(), super::world::RunFailure> {
        if let Some(ExporterHandle::Constraint(exp)) = self.bufs[bi].as_ref().map(|b| &b.exporter) {
            exp.settle_layout().map_err(|e| {
                super::world::RunFailure::new(&e, format!("negotiating the buffer's layout: {e}"))
            })?;
        }
        self.refresh_planes(bi);
        Ok(())
    }

    /// After a re-layout, buffer `bi`'s planes are the exporter's new ones.
    pub(crate) fn refresh_planes(&mut self, bi: usize) {
        let Some(b) = self.bufs[bi].as_mut() else {
            return;
        };
        if let ExporterHandle::Constraint(exp) = &b.exporter {
            b.planes = exp
                .layout()
                .planes
                .iter()
                .map(|p| (p.offset, p.len))
                .collect();
        }
    }
}

impl Sched<'_> {
    /// Marks a migration copy on `engine`'s lane from `start` to `end` on the engine's trace
    /// lane; `Some(0.0)` (the cost so far, which `super::migcost` adds to as the jobs it
    /// delays run) if pipeline nodes use that engine, `None` if none does.
    pub(crate) fn copy_cost(
        &mut self,
        engine: &str,
        start: VirtualTime,
        end: VirtualTime,
    ) -> Option<f64> {
        let track = self.w.trace.track(engine);
        self.w.trace.instant(
            track,
            &format!(
                "migration copy on {engine} ({:.1} us)",
                (end - start).as_us_f64()
            ),
            start,
        );
        let used = self
            .w
            .nodes
            .iter()
            .any(|n| n.engine_name == engine && n.active && engine != "cpu");
        used.then_some(0.0)
    }
}
