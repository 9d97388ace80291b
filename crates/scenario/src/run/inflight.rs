//! Independent jobs at once: a device job's bytes move on the run's pool of host threads
//! between its start and its completion event, while the loop goes on planning other jobs.
//!
//! # The concept
//! A job that starts on the virtual clock is *spawned* ([`drivers::job::DeviceJob::spawn_on`]):
//! its pieces go to the pool's workers and the loop carries on. Its result is *collected*
//! (the loop waits for it, moving the pieces no worker took yet itself) at fixed points of the
//! loop, never when the host happens to finish it:
//! 1. its completion event, before anything reads its effects (the fence signal, the
//!    consumers' hand-over, the checksum check);
//! 2. before another job starts that shares a buffer with it or runs on the same device
//!    ([`Sched::make_room`]): jobs that touch the same memory never run at once, whatever
//!    the reason (a consumer handed a buffer early, a producer writing a buffer a reader
//!    still holds), so they are found by what they touch, not by a list of faults;
//! 3. before a job that does not run this way starts: a GPU ring job, a faulted job, a
//!    held-back or overlapped one (module `faults`) — they run as before, alone;
//! 4. before the machine's counters are sampled, a CPU reader (the thumbnailer) reads, or a
//!    scenario event applies (the loop's `barrier`), and at the end of the run.
//!
//! Those points depend on the virtual clock only, so every mapping goes back, and every
//! mapping is made, in the same order for any number of host threads; with one thread the
//! bytes move inside the collection instead. The bytes each job sees are the same as when it
//! ran alone, because nothing it reads is written, and nothing it writes is read, until it is
//! collected (rule 2).
//!
//! # The DMA-API checker's findings
//! A running job raises its findings (if any) on the pool's threads at a moment the host
//! picks. So while any job is running the loop leaves the checker's findings where they are,
//! and takes them out, sorted, when the last running job is collected: the set taken is fixed
//! by the collection points, and so is its order. (Jobs that run alone drain the checker
//! around themselves as before, `super::workers`.)
//!
//! Locking and lifetime: everything here runs on the loop's thread, which owns [`Sched`]; a
//! running job's views stay in its [`drivers::job::Running`] until it is collected, and its
//! mappings go back then (`super::workers`'s `collect`).

use super::sched::{InFlight, Sched};
use super::workers::Pending;
use crate::schema::DriverKind;
use drivers::fault::Fault;
use drivers::job::DeviceJob;

impl Sched<'_> {
    /// Whether node `n`'s job reading `inputs` and writing `outputs` runs on the pool while
    /// the loop goes on (module doc): not a GPU ring job, not with `--engine-threads`, no
    /// fault, not held back nor overlapping a held-back job.
    pub(super) fn runs_concurrently(
        &self,
        n: usize,
        fault: Option<Fault>,
        inputs: &[(usize, usize)],
        outputs: &[(usize, usize)],
    ) -> bool {
        self.workers.is_none()
            && self.w.nodes[n].desc.driver != DriverKind::Gpu
            && fault.is_none()
            && !self.defers(n)
            && self.overlaps(inputs, outputs).is_none()
    }

    /// Before node `n`'s job maps anything (module doc, rules 2 and 3): collects the running
    /// jobs it must not run beside (every one, if it does not run `concurrent`ly itself), in
    /// the order they started.
    pub(super) fn make_room(
        &mut self,
        n: usize,
        concurrent: bool,
        inputs: &[(usize, usize)],
        outputs: &[(usize, usize)],
    ) {
        let ids: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.result.is_running())
            .filter(|(_, j)| !concurrent || self.shares(n, j, inputs, outputs))
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            self.barrier_one(id);
        }
    }

    /// Whether running job `j` and node `n`'s job touch the same buffer or device.
    fn shares(
        &self,
        n: usize,
        j: &InFlight,
        inputs: &[(usize, usize)],
        outputs: &[(usize, usize)],
    ) -> bool {
        let (a, b) = (&self.w.nodes[n], &self.w.nodes[j.node]);
        if a.dev.name() == b.dev.name() || a.engine_name == b.engine_name {
            return true;
        }
        let mine = inputs.iter().chain(outputs).map(|x| x.1);
        let theirs: Vec<usize> = j.inputs.iter().chain(&j.outputs).map(|x| x.1).collect();
        mine.into_iter().any(|bi| theirs.contains(&bi))
    }

    /// Starts moving `io`'s bytes on the run's pool (module doc).
    pub(super) fn spawn_job(&mut self, io: DeviceJob) -> Pending {
        let dma = self.w.kernel.dma().clone();
        Pending::running(io.spawn_on(&dma, &self.pool))
    }

    /// Collects every running job (module doc, rule 4), in the order they started.
    pub(crate) fn collect_running(&mut self) {
        let ids: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.result.is_running())
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            self.barrier_one(id);
        }
    }

    /// A running job was collected: once none runs, the checker's findings come out, sorted
    /// (module doc).
    pub(crate) fn running_collected(&mut self) {
        if !self.jobs.values().any(|j| j.result.is_running()) {
            self.drain_findings(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{setup, RunOptions};
    use super::Sched;
    use crate::clock::VirtualTime;

    /// A camera, an ISP and a display, three buffers a link: while the ISP processes frame 0
    /// the camera captures frame 1, into another buffer (600 frames: the counters are sampled
    /// every 5th frame, not at frame 1).
    const PIPE: &str = r#"name = "pipe"
frames = 600

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
width = 256
height = 128

[[nodes]]
name = "isp"
driver = "isp"
device = "isp0"
width = 256
height = 128

[[nodes]]
name = "screen"
driver = "display"
device = "display0"
width = 256
height = 128

[[links]]
from = "cam"
to = "isp"
buffers = 3

[[links]]
from = "isp"
to = "screen"
buffers = 3
"#;

    fn running(s: &Sched<'_>) -> Vec<u64> {
        let r = s.jobs.iter().filter(|(_, j)| j.result.is_running());
        r.map(|(&id, _)| id).collect()
    }

    /// The loop with the ISP's job on frame 0 (id 1) and the camera's on frame 1 (id 2) out.
    fn two_out(s: &crate::Scenario) -> Sched<'_> {
        let opts = RunOptions {
            threads: 2,
            ..RunOptions::default()
        };
        let mut sched = setup(s, &opts).expect("boots");
        sched.tick(0, VirtualTime::ZERO);
        assert_eq!(running(&sched), [0], "the capture is out on the pool");
        let end = sched.jobs[&0].end;
        sched.done(0, end);
        assert!(
            sched.start_job(1, end, Some((0, 0))),
            "the ISP takes frame 0"
        );
        sched.tick(0, end);
        assert!(sched.errors.is_empty(), "{:?}", sched.errors);
        sched
    }

    #[test]
    fn the_camera_captures_while_the_isp_processes_and_both_frames_verify() {
        let s = crate::validate(PIPE, "pipe.toml").expect("valid");
        let mut sched = two_out(&s);
        assert_eq!(running(&sched), [1, 2], "two jobs out at once");
        for id in [1, 2] {
            let end = sched.jobs[&id].end;
            sched.done(id, end);
        }
        assert!(running(&sched).is_empty());
        assert!(sched.errors.is_empty(), "{:?}", sched.errors);
        // The ISP verified frame 0 as the camera wrote it.
        let f0 = sched.frames.get(&(0, 0)).expect("frame 0 in flight");
        assert!(!f0.corrupted);
        assert!(sched.findings.is_empty(), "{:?}", sched.findings);
    }

    #[test]
    fn a_job_sharing_a_buffer_with_a_running_one_collects_it_first_and_no_other() {
        let s = crate::validate(PIPE, "pipe.toml").expect("valid");
        let mut sched = two_out(&s);
        let written = sched.jobs[&2].outputs.clone();
        // The display: another device, no buffer in common: both stay out.
        sched.make_room(2, true, &[], &[]);
        assert_eq!(running(&sched), [1, 2]);
        // Reading the buffer the camera is writing: the camera's job is collected first, the
        // ISP's goes on.
        sched.make_room(2, true, &written, &[]);
        assert_eq!(running(&sched), [1]);
        assert!(sched.jobs[&2].result.is_settled(), "its mappings went back");
        // On the ISP's device: the ISP's job is collected.
        sched.make_room(1, true, &[], &[]);
        assert!(running(&sched).iter().all(|&id| sched.jobs[&id].node != 1));
        // A job that runs alone collects every running one.
        sched.make_room(2, false, &[], &[]);
        assert!(running(&sched).is_empty());
    }
}
