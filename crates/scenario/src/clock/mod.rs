//! The virtual clock, the discrete-event queue and the device time model.
//!
//! A deterministic run never reads the host clock. Time is a [`VirtualTime`] (nanoseconds since
//! the start of the run) that moves only when the runner takes the next event from an
//! [`EventQueue`]; how long a DMA job takes comes from the [`TimeModel`] (latency plus bytes over
//! bandwidth, from each device's [`soc::DeviceDesc`]), and an [`Engine`] serialises the jobs of one
//! device. The same scenario and seed therefore give the same timings on any host, under any load.
//!
//! # Ordering guarantee
//! 1. [`EventQueue::pop`] returns events in increasing time.
//! 2. Events at the same time come out in the order they were pushed (FIFO): each push takes a
//!    sequence number, and the queue orders by `(time, seq)`. Nothing depends on hash order or
//!    on the heap's internal layout.
//! 3. Time never goes backwards: pushing an event earlier than [`EventQueue::now`] is refused
//!    with [`ClockError::InPast`] (a runner bug, reported instead of reordering history).
//!
//! ```
//! use scenario::clock::{EventQueue, VirtualTime};
//! let mut q = EventQueue::new();
//! q.push(VirtualTime::from_us(5), "late").unwrap();
//! q.push(VirtualTime::from_us(1), "first").unwrap();
//! q.push(VirtualTime::from_us(1), "second").unwrap(); // same time: FIFO
//! let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
//! assert_eq!(order, ["first", "second", "late"]);
//! assert_eq!(q.now(), VirtualTime::from_us(5));
//! ```

use soc::DeviceDesc;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::ops::{Add, Sub};

mod fps;

pub use fps::{Fps, FpsError};

/// A point in virtual time, in nanoseconds since the start of the run. Also used for durations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VirtualTime(pub u64);

impl VirtualTime {
    /// The start of the run.
    pub const ZERO: VirtualTime = VirtualTime(0);

    /// From nanoseconds.
    pub const fn from_ns(ns: u64) -> VirtualTime {
        VirtualTime(ns)
    }

    /// A span of `d` (saturating at `u64::MAX` nanoseconds): what a driver's job reports it
    /// costs ([`drivers::media::dma_cost`]) placed on the virtual clock.
    pub fn from_duration(d: std::time::Duration) -> VirtualTime {
        VirtualTime(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// From microseconds (saturating).
    pub const fn from_us(us: u64) -> VirtualTime {
        VirtualTime(us.saturating_mul(1_000))
    }

    /// From milliseconds (saturating).
    pub const fn from_ms(ms: u64) -> VirtualTime {
        VirtualTime(ms.saturating_mul(1_000_000))
    }

    /// Nanoseconds.
    pub const fn as_ns(self) -> u64 {
        self.0
    }

    /// Microseconds, with the nanoseconds as a fraction (what reports and traces print).
    pub fn as_us_f64(self) -> f64 {
        self.0 as f64 / 1_000.0
    }

    /// `self + d`, saturating at the end of time.
    pub const fn saturating_add(self, d: VirtualTime) -> VirtualTime {
        VirtualTime(self.0.saturating_add(d.0))
    }

    /// `self - earlier`, zero if `earlier` is later.
    pub const fn saturating_sub(self, earlier: VirtualTime) -> VirtualTime {
        VirtualTime(self.0.saturating_sub(earlier.0))
    }

    /// The period of a rate in frames per second, rounded to the nearest nanosecond; zero fps
    /// gives zero.
    ///
    /// ```
    /// use scenario::clock::VirtualTime;
    /// assert_eq!(VirtualTime::frame_period(60).as_ns(), 16_666_667);
    /// ```
    pub const fn frame_period(fps: u32) -> VirtualTime {
        if fps == 0 {
            return VirtualTime(0);
        }
        let fps = fps as u64;
        VirtualTime((1_000_000_000 + fps / 2) / fps)
    }
}

impl Add for VirtualTime {
    type Output = VirtualTime;
    /// Saturating addition.
    fn add(self, rhs: VirtualTime) -> VirtualTime {
        self.saturating_add(rhs)
    }
}

impl Sub for VirtualTime {
    type Output = VirtualTime;
    /// Saturating subtraction.
    fn sub(self, rhs: VirtualTime) -> VirtualTime {
        self.saturating_sub(rhs)
    }
}

impl fmt::Display for VirtualTime {
    /// `12.345678ms`, `3.2us`, `15ns`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ns if ns >= 1_000_000 => write!(f, "{}ms", ns as f64 / 1e6),
            ns if ns >= 1_000 => write!(f, "{}us", ns as f64 / 1e3),
            ns => write!(f, "{ns}ns"),
        }
    }
}

/// A misuse of the clock.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// An event was pushed before the current time.
    #[error("event scheduled at {at} but the clock is already at {now}")]
    InPast {
        /// When the event was asked for.
        at: VirtualTime,
        /// The current time.
        now: VirtualTime,
    },
    /// The time model has no device of this name.
    #[error("the time model has no device `{0}`")]
    UnknownDevice(String),
}

struct Entry<E> {
    at: VirtualTime,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A discrete-event queue on a virtual clock (see the module doc for the ordering guarantee).
///
/// # Invariants
/// Every queued event is at or after `now`; sequence numbers are unique and increasing.
pub struct EventQueue<E> {
    heap: BinaryHeap<Reverse<Entry<E>>>,
    now: VirtualTime,
    next_seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> fmt::Debug for EventQueue<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventQueue")
            .field("now", &self.now)
            .field("pending", &self.heap.len())
            .finish()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue at time zero.
    pub fn new() -> EventQueue<E> {
        EventQueue {
            heap: BinaryHeap::new(),
            now: VirtualTime::ZERO,
            next_seq: 0,
        }
    }

    /// The current time: that of the last event popped.
    pub fn now(&self) -> VirtualTime {
        self.now
    }

    /// Schedules `event` at `at`; returns its sequence number (the tie-break among events at the
    /// same time). Errors: [`ClockError::InPast`] if `at` is before [`now`](Self::now).
    pub fn push(&mut self, at: VirtualTime, event: E) -> Result<u64, ClockError> {
        if at < self.now {
            return Err(ClockError::InPast { at, now: self.now });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        // INVARIANT: `at >= now`, and `seq` is fresh.
        self.heap.push(Reverse(Entry { at, seq, event }));
        Ok(seq)
    }

    /// Schedules `event` `delay` after now.
    pub fn push_after(&mut self, delay: VirtualTime, event: E) -> u64 {
        let at = self.now + delay;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Entry { at, seq, event }));
        seq
    }

    /// Takes the earliest event (FIFO among equals) and advances the clock to its time.
    pub fn pop(&mut self) -> Option<(VirtualTime, E)> {
        let Reverse(entry) = self.heap.pop()?;
        self.now = entry.at;
        Some((entry.at, entry.event))
    }

    /// The time of the next event, without taking it.
    pub fn peek_time(&self) -> Option<VirtualTime> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// The bandwidth and per-transfer latency of one device's DMA engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceTiming {
    /// Bytes per second; at least 1.
    pub bandwidth_bps: u64,
    /// Fixed cost per transfer.
    pub latency: VirtualTime,
}

impl DeviceTiming {
    /// The timing of a device description (`bandwidth_bps`, `latency_ns`).
    pub fn of(desc: &DeviceDesc) -> DeviceTiming {
        DeviceTiming {
            bandwidth_bps: desc.bandwidth_bps.max(1),
            latency: VirtualTime::from_ns(desc.latency_ns),
        }
    }

    /// How long moving `bytes` takes: `latency + ceil(bytes * 1e9 / bandwidth)` nanoseconds,
    /// computed in 128 bits and saturating: the drivers' time model
    /// ([`drivers::media::transfer_ns`]), the one every device job is timed with.
    ///
    /// ```
    /// use scenario::clock::{DeviceTiming, VirtualTime};
    /// let t = DeviceTiming { bandwidth_bps: 1_000_000_000, latency: VirtualTime::from_us(2) };
    /// assert_eq!(t.transfer_time(4096).as_ns(), 2_000 + 4_096);
    /// assert_eq!(t.transfer_time(0).as_ns(), 2_000);
    /// ```
    pub fn transfer_time(&self, bytes: u64) -> VirtualTime {
        VirtualTime(drivers::media::transfer_ns(
            self.latency.as_ns(),
            self.bandwidth_bps,
            bytes,
        ))
    }
}

/// The time model of a machine: the timing of every device, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeModel {
    devices: BTreeMap<String, DeviceTiming>,
}

impl TimeModel {
    /// The model of a machine description.
    pub fn from_desc(desc: &soc::SocDesc) -> TimeModel {
        TimeModel {
            devices: desc
                .devices
                .iter()
                .map(|d| (d.name.clone(), DeviceTiming::of(d)))
                .collect(),
        }
    }

    /// The timing of a device.
    pub fn device(&self, name: &str) -> Result<DeviceTiming, ClockError> {
        self.devices
            .get(name)
            .copied()
            .ok_or_else(|| ClockError::UnknownDevice(name.to_string()))
    }

    /// How long `device` takes to move `bytes` ([`DeviceTiming::transfer_time`]).
    pub fn transfer_time(&self, device: &str, bytes: u64) -> Result<VirtualTime, ClockError> {
        Ok(self.device(device)?.transfer_time(bytes))
    }

    /// How long a copy of `bytes` by `device` takes: it reads and writes every byte.
    pub fn copy_time(&self, device: &str, bytes: u64) -> Result<VirtualTime, ClockError> {
        Ok(self.device(device)?.transfer_time(bytes.saturating_mul(2)))
    }
}

/// One DMA engine: jobs run one at a time, in the order they are submitted.
///
/// ```
/// use scenario::clock::{Engine, VirtualTime};
/// let mut e = Engine::default();
/// let a = e.submit(VirtualTime::from_us(0), VirtualTime::from_us(10));
/// let b = e.submit(VirtualTime::from_us(4), VirtualTime::from_us(10)); // waits for `a`
/// assert_eq!(a, (VirtualTime::from_us(0), VirtualTime::from_us(10)));
/// assert_eq!(b, (VirtualTime::from_us(10), VirtualTime::from_us(20)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Engine {
    busy_until: VirtualTime,
    busy_total: VirtualTime,
}

impl Engine {
    /// Submits a job that is ready at `ready` and takes `duration`; returns its `(start, end)`:
    /// it starts when both it is ready and the engine is free.
    pub fn submit(
        &mut self,
        ready: VirtualTime,
        duration: VirtualTime,
    ) -> (VirtualTime, VirtualTime) {
        let start = ready.max(self.busy_until);
        let end = start + duration;
        self.busy_until = end;
        self.busy_total = self.busy_total + duration;
        (start, end)
    }

    /// When the engine is next free.
    pub fn busy_until(&self) -> VirtualTime {
        self.busy_until
    }

    /// Total time spent on jobs.
    pub fn busy_total(&self) -> VirtualTime {
        self.busy_total
    }
}
