//! The headline figures of a report, read from `report.json` as plain JSON.
//!
//! `dmabuf diff` and `dmabuf sweep` read reports written by other runs, possibly by another
//! version of the binary whose report has more (or fewer) fields. So a report is read as a
//! [`serde_json::Value`], never into the typed `Report`: a field this version does not know is
//! carried along, and a field that is missing reads as absent (`None`), never as zero.

use serde_json::Value;

/// One headline figure: its column name and how it is computed from a report.
pub struct Figure {
    /// The column name (`"p99_us"`), also the name `--plot` takes.
    pub name: &'static str,
    /// What it is, for the docs and `--plot` errors.
    pub meaning: &'static str,
    get: fn(&Value) -> Option<f64>,
}

impl Figure {
    /// The figure of `report`, `None` if the report lacks what it is computed from.
    pub fn of(&self, report: &Value) -> Option<f64> {
        (self.get)(report)
    }
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

fn arr<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Vec<Value>> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_array()
}

fn sum(v: &Value, path: &[&str], field: &str) -> Option<f64> {
    Some(
        arr(v, path)?
            .iter()
            .filter_map(|e| e.get(field)?.as_f64())
            .sum(),
    )
}

fn unexpected_findings(v: &Value) -> Option<f64> {
    Some(
        arr(v, &["checker", "findings"])?
            .iter()
            .filter(|f| !f.get("expected").and_then(Value::as_bool).unwrap_or(false))
            .count() as f64,
    )
}

/// The headline figures, in column order.
pub const FIGURES: &[Figure] = &[
    Figure {
        name: "produced",
        meaning: "frames the sources produced",
        get: |v| num(v, &["frames", "produced"]),
    },
    Figure {
        name: "delivered",
        meaning: "frames that reached every sink intact",
        get: |v| num(v, &["frames", "delivered"]),
    },
    Figure {
        name: "dropped",
        meaning: "frames dropped",
        get: |v| num(v, &["frames", "dropped"]),
    },
    Figure {
        name: "corrupted",
        meaning: "frames a sink received with a wrong checksum",
        get: |v| num(v, &["frames", "corrupted"]),
    },
    Figure {
        name: "p50_us",
        meaning: "median latency, virtual µs",
        get: |v| num(v, &["latency_us", "p50"]),
    },
    Figure {
        name: "p99_us",
        meaning: "99th-percentile latency, virtual µs",
        get: |v| num(v, &["latency_us", "p99"]),
    },
    Figure {
        name: "max_us",
        meaning: "worst latency, virtual µs",
        get: |v| num(v, &["latency_us", "max"]),
    },
    Figure {
        name: "duration_us",
        meaning: "virtual time of the run, µs",
        get: |v| num(v, &["duration_us"]),
    },
    Figure {
        name: "migrations",
        meaning: "buffer migrations",
        get: |v| arr(v, &["migrations"]).map(|m| m.len() as f64),
    },
    Figure {
        name: "migrated_bytes",
        meaning: "bytes copied by migrations",
        get: |v| sum(v, &["migrations"], "bytes"),
    },
    Figure {
        name: "stall_us",
        meaning: "total migration stall, virtual µs",
        get: |v| sum(v, &["migrations"], "stall_us"),
    },
    Figure {
        name: "maps_first",
        meaning: "attachment maps that built a mapping",
        get: |v| num(v, &["maps", "first"]),
    },
    Figure {
        name: "maps_cached",
        meaning: "attachment maps served from the cache",
        get: |v| num(v, &["maps", "cached"]),
    },
    Figure {
        name: "device_bytes",
        meaning: "bytes all devices read and wrote",
        get: |v| Some(sum(v, &["devices"], "bytes_read")? + sum(v, &["devices"], "bytes_written")?),
    },
    Figure {
        name: "findings",
        meaning: "checker findings",
        get: |v| arr(v, &["checker", "findings"]).map(|f| f.len() as f64),
    },
    Figure {
        name: "unexpected_findings",
        meaning: "checker findings the scenario did not expect",
        get: unexpected_findings,
    },
    Figure {
        name: "errors",
        meaning: "run-time errors",
        get: |v| arr(v, &["errors"]).map(|e| e.len() as f64),
    },
];

/// The figure named `name`.
pub fn figure(name: &str) -> Option<&'static Figure> {
    FIGURES.iter().find(|f| f.name == name)
}

/// The names of every figure, comma separated.
pub fn names() -> String {
    FIGURES
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The verdict the report carries: `VERIFIED`, `FAILED` (run-time errors) or `NOT VERIFIED`
/// (corruption or unexpected findings), as the text summary spells it.
pub fn verdict(report: &Value) -> &'static str {
    let count = |n: &str| figure(n).and_then(|f| f.of(report)).unwrap_or(0.0);
    if count("errors") > 0.0 {
        "FAILED"
    } else if count("corrupted") > 0.0 || count("unexpected_findings") > 0.0 {
        "NOT VERIFIED"
    } else {
        "VERIFIED"
    }
}

/// A figure as JSON: an integer when it is one, `null` when absent.
pub fn to_json(x: Option<f64>) -> Value {
    match x {
        Some(x) if x.fract() == 0.0 && x.abs() < 9e15 => Value::from(x as i64),
        Some(x) => Value::from(x),
        None => Value::Null,
    }
}

/// A figure as a short decimal: integers without a fraction, others with up to 3 decimals.
pub fn show(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        let s = format!("{x:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_figures_read_a_report_and_missing_fields_are_absent_not_zero() {
        let r: Value = serde_json::from_str(
            r#"{"frames": {"produced": 10, "delivered": 9, "dropped": 1, "corrupted": 0},
                "latency_us": {"p50": 16.5, "p99": 20, "max": 21},
                "migrations": [{"bytes": 100, "stall_us": 2.5}, {"bytes": 50, "stall_us": 1}],
                "devices": [{"bytes_read": 3, "bytes_written": 4}],
                "checker": {"findings": [{"kind": "k", "expected": true}]},
                "errors": [], "something_new": {"x": 1}}"#,
        )
        .unwrap();
        let get = |n: &str| figure(n).unwrap().of(&r);
        assert_eq!(get("dropped"), Some(1.0));
        assert_eq!(get("p50_us"), Some(16.5));
        assert_eq!(get("migrated_bytes"), Some(150.0));
        assert_eq!(get("stall_us"), Some(3.5));
        assert_eq!(get("device_bytes"), Some(7.0));
        assert_eq!(get("unexpected_findings"), Some(0.0));
        assert_eq!(get("maps_first"), None);
        assert_eq!(verdict(&r), "VERIFIED");
        assert_eq!(show(16.5), "16.5");
        assert_eq!(show(3.0), "3");
        assert_eq!(show(1.0 / 3.0), "0.333");
        assert_eq!(to_json(Some(8.0)), serde_json::json!(8));
        assert_eq!(to_json(Some(2.5)), serde_json::json!(2.5));
        assert_eq!(to_json(None), Value::Null);
    }
}
