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

/// A frame rate as an exact rational `num/den` frames per second (NTSC's 29.97 is
/// `30000/1001`), kept in lowest terms.
///
/// Frame `n` of a clock at this rate starts at [`Fps::tick`]`(n)` = `floor(n * den * 1e9 / num)`
/// nanoseconds, computed from `n` every time (never by adding a rounded period, which drifts:
/// at 60 fps a rounded 16,666,667 ns period is 333 µs late after a million frames).
///
/// A scenario writes it as an integer (`fps = 60`), a decimal (`fps = 29.97`, exactly
/// `2997/100`) or a fraction in a string (`fps = "30000/1001"`); see [`Fps::parse`].
///
/// ```
/// use scenario::clock::Fps;
/// let ntsc = Fps::parse("30000/1001").unwrap();
/// assert_eq!(ntsc.tick(1_000_000).as_ns(), 33_366_666_666_666);
/// assert_eq!(Fps::parse("29.97").unwrap(), Fps::new(2997, 100).unwrap());
/// assert_eq!(Fps::from_int(60).tick(3).as_ns(), 50_000_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fps {
    num: u64,
    den: u64,
}

/// Why a frame rate was refused (see [`Fps::parse`] for what is accepted).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("fps {given}: {why}; expected an integer (60), a decimal (29.97) or a fraction in a string (\"30000/1001\") above zero")]
pub struct FpsError {
    /// The value as written.
    pub given: String,
    /// What is wrong with it.
    pub why: &'static str,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Fps {
    /// `num/den` frames per second in lowest terms; `None` if `den` is 0.
    pub fn new(num: u64, den: u64) -> Option<Fps> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        Some(Fps {
            num: num / g,
            den: den / g,
        })
    }

    /// An integer rate.
    pub const fn from_int(fps: u32) -> Fps {
        Fps {
            num: fps as u64,
            den: 1,
        }
    }

    /// The numerator (frames).
    pub const fn num(self) -> u64 {
        self.num
    }

    /// The denominator (seconds).
    pub const fn den(self) -> u64 {
        self.den
    }

    /// Parses `"60"`, `"29.97"` (a decimal: exactly `2997/100`) or `"30000/1001"`. Refused: an
    /// empty or non-numeric text, a sign, a zero denominator, a number with more digits than a
    /// `u64` holds. A zero rate parses (`0` is for the caller's range check to refuse with its
    /// own bounds).
    pub fn parse(text: &str) -> Result<Fps, FpsError> {
        let err = |why| FpsError {
            given: text.to_string(),
            why,
        };
        let t = text.trim();
        let digits = |s: &str| -> Result<u64, FpsError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("not a number"));
            }
            s.parse::<u64>()
                .map_err(|_| err("more digits than a 64-bit integer holds"))
        };
        if let Some((n, d)) = t.split_once('/') {
            let (n, d) = (digits(n.trim())?, digits(d.trim())?);
            return Fps::new(n, d).ok_or_else(|| err("a zero denominator"));
        }
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        if int.is_empty() && frac.is_empty() {
            return Err(err("not a number"));
        }
        let int = if int.is_empty() { 0 } else { digits(int)? };
        let frac_digits = frac.trim_end_matches('0');
        if frac_digits.is_empty() {
            return Ok(Fps { num: int, den: 1 });
        }
        let f = digits(frac_digits)?;
        let den = u32::try_from(frac_digits.len())
            .ok()
            .and_then(|k| 10u64.checked_pow(k))
            .ok_or_else(|| err("more digits than a 64-bit integer holds"))?;
        let num = int
            .checked_mul(den)
            .and_then(|i| i.checked_add(f))
            .ok_or_else(|| err("more digits than a 64-bit integer holds"))?;
        Ok(Fps::new(num, den).expect("den is a power of ten"))
    }

    /// The start of frame `n`: `floor(n * den * 1e9 / num)` ns, in 128 bits, saturating; zero
    /// for a zero rate.
    pub fn tick(self, n: u64) -> VirtualTime {
        if self.num == 0 {
            return VirtualTime::ZERO;
        }
        let ns = n as u128 * self.den as u128 * 1_000_000_000 / self.num as u128;
        VirtualTime(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// The index of the first frame starting at or after `t` (the least `n` with
    /// `tick(n) >= t`); zero for a zero rate.
    pub fn first_tick_at_or_after(self, t: VirtualTime) -> u64 {
        if self.num == 0 {
            return 0;
        }
        // tick(n) >= t  <=>  n * den * 1e9 / num >= t  <=>  n >= t * num / (den * 1e9).
        let d = self.den as u128 * 1_000_000_000;
        let n = (t.0 as u128)
            .checked_mul(self.num as u128)
            .map_or(u128::MAX / d, |x| x.div_ceil(d));
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// Whether `lo <= self <= hi` (integers).
    pub fn within(self, lo: u64, hi: u64) -> bool {
        let (n, d) = (self.num as u128, self.den as u128);
        n >= lo as u128 * d && n <= hi as u128 * d
    }

    /// The rate as a float (for messages and reports).
    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den.max(1) as f64
    }
}

impl Default for Fps {
    /// 60 frames per second.
    fn default() -> Self {
        Fps::from_int(60)
    }
}

impl fmt::Display for Fps {
    /// `60`, or `30000/1001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

impl serde::Serialize for Fps {
    /// An integer rate as an integer, another as the string `"num/den"` (both read back).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.den == 1 {
            s.serialize_u64(self.num)
        } else {
            s.serialize_str(&self.to_string())
        }
    }
}

impl<'de> serde::Deserialize<'de> for Fps {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Fps, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Fps;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a frame rate: an integer (60), a decimal (29.97) or a fraction in a string \
                     (\"30000/1001\")",
                )
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Fps, E> {
                Ok(Fps { num: v, den: 1 })
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Fps, E> {
                u64::try_from(v)
                    .map(|v| Fps { num: v, den: 1 })
                    .map_err(|_| {
                        E::custom(FpsError {
                            given: v.to_string(),
                            why: "a negative rate",
                        })
                    })
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Fps, E> {
                let why = if v.is_nan() {
                    Some("not a number")
                } else if v < 0.0 {
                    Some("a negative rate")
                } else if v.is_infinite() {
                    Some("an infinite rate")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(E::custom(FpsError {
                        given: v.to_string(),
                        why,
                    }));
                }
                // Display gives the shortest decimal that reads back as `v` (29.97, not
                // 29.969999...), and never an exponent.
                Fps::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Fps, E> {
                let t = v.trim();
                if t.starts_with('-') {
                    return Err(E::custom(FpsError {
                        given: v.to_string(),
                        why: "a negative rate",
                    }));
                }
                Fps::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}
