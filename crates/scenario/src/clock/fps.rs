//! Frame rates as exact rationals: [`Fps`], the rate a camera captures and a display scans out
//! at, and the tick of frame `n` on the virtual clock.
//!
//! # The concept
//! Video rates are not integers (NTSC's 29.97 Hz is `30000/1001`), and a period rounded to
//! whole nanoseconds drifts: the start of frame `n` is computed from `n` every time, never by
//! adding a period. A scenario may write a rate three ways (integer, decimal, fraction in a
//! string); every way gives the same exact value, and anything else is refused with an
//! [`FpsError`] that says what is accepted.
//!
//! # Locking and lifetime
//! A plain `Copy` value.

use super::VirtualTime;
use std::fmt;

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
