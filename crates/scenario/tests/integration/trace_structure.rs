//! The structure of `trace.json` on every bundled scenario: on every track the slices nest
//! (no partial overlap, which Perfetto mis-draws), every flow arrow has both ends and each end
//! lies on a slice of its track, every counter value is a number, and every track an event
//! lies on is a named thread of a named process (one Perfetto process per device engine and per
//! simulated process), and every counter lies on a named process: a simulated process's
//! dma-buf memory and its nodes' queue depths on that process's own, a device's bandwidth,
//! IOMMU and cache maintenance counters on that device's engine.

use scenario::run::{run, RunOptions};
use scenario::validate;
use serde_json::Value;
use std::collections::BTreeMap;

/// Slices per `(pid, tid)`: `(start, end, name)`.
type Slices = BTreeMap<(u64, u64), Vec<(f64, f64, String)>>;

/// Tolerance for float timestamps (virtual µs with ns fractions).
const EPS: f64 = 1e-6;

/// The structural faults of a Chrome trace, in words (empty: none).
fn faults(json: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(json).expect("trace.json parses");
    let events = v["traceEvents"].as_array().expect("traceEvents");
    let mut out = Vec::new();
    let mut slices: Slices = BTreeMap::new();
    for e in events {
        if e["ph"] == "X" {
            let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
            let ts = e["ts"].as_f64().unwrap();
            let dur = e["dur"].as_f64().unwrap();
            if dur < 0.0 {
                out.push(format!("negative slice {}", e["name"]));
            }
            slices.entry(key).or_default().push((
                ts,
                ts + dur,
                e["name"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    for (key, v) in &mut slices {
        // Longest first at equal starts: the enclosing slice opens first.
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut stack: Vec<&(f64, f64, String)> = Vec::new();
        for s in v.iter() {
            while stack.last().is_some_and(|top| top.1 <= s.0 + EPS) {
                stack.pop();
            }
            if let Some(top) = stack.last() {
                if s.1 > top.1 + EPS {
                    out.push(format!(
                        "track {key:?}: {} [{}, {}] overlaps {} [{}, {}] without nesting",
                        s.2, s.0, s.1, top.2, top.0, top.1
                    ));
                }
            }
            stack.push(s);
        }
    }
    let on_slice = |pid: u64, tid: u64, ts: f64| {
        slices
            .get(&(pid, tid))
            .is_some_and(|v| v.iter().any(|s| s.0 <= ts + EPS && ts <= s.1 + EPS))
    };
    let mut flows: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
    for e in events {
        let ph = e["ph"].as_str().unwrap_or("");
        if ph == "s" || ph == "f" {
            let id = e["id"].as_u64().unwrap();
            let ends = flows.entry(id).or_default();
            if ph == "s" {
                ends.0 += 1;
            } else {
                ends.1 += 1;
            }
            let (pid, tid) = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
            if !on_slice(pid, tid, e["ts"].as_f64().unwrap()) {
                out.push(format!("flow {id} {ph} end is on no slice of its track"));
            }
        }
        if ph == "C" {
            let args = e["args"].as_object();
            if args.is_none_or(|a| a.is_empty() || !a.values().all(Value::is_number)) {
                out.push(format!(
                    "counter {} has a value that is not a number",
                    e["name"]
                ));
            }
        }
    }
    for (id, (s, f)) in flows {
        if (s, f) != (1, 1) {
            out.push(format!("flow {id}: {s} starts and {f} finishes"));
        }
    }
    // Every slice, instant and flow end lies on a named thread of a named process.
    let meta = |what: &str| -> std::collections::BTreeSet<(u64, u64)> {
        events
            .iter()
            .filter(|e| e["ph"] == "M" && e["name"] == what)
            .filter_map(|e| Some((e["pid"].as_u64()?, e["tid"].as_u64()?)))
            .collect()
    };
    let (threads, processes) = (meta("thread_name"), meta("process_name"));
    // Every counter lies on a named process; a simulated process's memory and its nodes'
    // queue depths on that process, not the run's.
    let process_name = |pid: u64| {
        events
            .iter()
            .find(|e| e["ph"] == "M" && e["name"] == "process_name" && e["pid"] == pid)
            .and_then(|e| e["args"]["name"].as_str())
    };
    for e in events.iter().filter(|e| e["ph"] == "C") {
        let name = e["name"].as_str().unwrap_or("");
        let pid = e["pid"].as_u64().unwrap_or(0);
        let Some(on) = process_name(pid) else {
            out.push(format!("counter {name} lies on an unnamed process {pid}"));
            continue;
        };
        if let Some(proc_name) = name
            .strip_prefix("process ")
            .and_then(|r| r.split(" dma-buf ").next())
        {
            let want = format!("process {proc_name}");
            if on != want {
                out.push(format!("counter {name} lies on {on}, not on {want}"));
            }
        }
        // A device's traffic, IOMMU and cache maintenance under that device's engine.
        let device = ["device ", "iommu ", "cache "]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .and_then(|r| r.split(' ').next());
        if let Some(device) = device {
            if on != device {
                out.push(format!(
                    "counter {name} lies on {on}, not on device {device}"
                ));
            }
        }
        if name.starts_with("queue ") && !on.starts_with("process ") {
            out.push(format!(
                "counter {name} lies on {on}, not on its node's simulated process"
            ));
        }
    }
    for e in events {
        if !matches!(e["ph"].as_str(), Some("X" | "i" | "s" | "f")) {
            continue;
        }
        let (pid, tid) = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        if !threads.contains(&(pid, tid)) || !processes.contains(&(pid, 0)) {
            out.push(format!(
                "{} lies on an unnamed track ({pid}, {tid})",
                e["name"]
            ));
        }
    }
    out
}

#[test]
fn structure_check_fires_on_partial_overlap_unbound_flow_and_non_numeric_counter() {
    let bad = r#"{"traceEvents":[
        {"ph":"M","name":"process_name","pid":1,"tid":0,"args":{"name":"p"}},
        {"ph":"M","name":"thread_name","pid":1,"tid":1,"args":{"name":"t"}},
        {"ph":"X","name":"stray","pid":3,"tid":7,"ts":0,"dur":1},
        {"ph":"X","name":"a","pid":1,"tid":1,"ts":0,"dur":10},
        {"ph":"X","name":"b","pid":1,"tid":1,"ts":5,"dur":10},
        {"ph":"s","id":1,"name":"f","pid":1,"tid":1,"ts":1},
        {"ph":"C","name":"c","pid":1,"ts":0,"args":{"value":"x"}},
        {"ph":"C","name":"process cam dma-buf rss (bytes)","pid":1,"ts":0,"args":{"value":1}},
        {"ph":"C","name":"queue isp <- cam->isp (buffers)","pid":1,"ts":0,"args":{"value":1}},
        {"ph":"C","name":"bank dram0 used (bytes)","pid":9,"ts":0,"args":{"value":1}},
        {"ph":"C","name":"device isp0 bandwidth (bytes/s)","pid":1,"ts":0,"args":{"value":1}},
        {"ph":"C","name":"iommu gpu0 maps (calls)","pid":1,"ts":0,"args":{"value":1}},
        {"ph":"C","name":"cache camera0 cleaned (bytes)","pid":1,"ts":0,"args":{"value":1}}
    ]}"#;
    let f = faults(bad);
    assert!(f.iter().any(|x| x.contains("without nesting")), "{f:?}");
    assert!(
        f.iter().any(|x| x.contains("1 starts and 0 finishes")),
        "{f:?}"
    );
    assert!(f.iter().any(|x| x.contains("not a number")), "{f:?}");
    assert!(
        f.iter()
            .any(|x| x.contains("dma-buf rss (bytes) lies on p, not on process cam")),
        "{f:?}"
    );
    assert!(
        f.iter()
            .any(|x| x.contains("not on its node's simulated process")),
        "{f:?}"
    );
    assert!(
        f.iter().any(|x| x.contains("lies on an unnamed process 9")),
        "{f:?}"
    );
    assert!(
        f.iter()
            .any(|x| x.contains("\"stray\" lies on an unnamed track")),
        "{f:?}"
    );
    for (counter, device) in [
        ("device isp0 bandwidth (bytes/s)", "isp0"),
        ("iommu gpu0 maps (calls)", "gpu0"),
        ("cache camera0 cleaned (bytes)", "camera0"),
    ] {
        let want = format!("{counter} lies on p, not on device {device}");
        assert!(f.iter().any(|x| x.contains(&want)), "{want}: {f:?}");
    }
    let good = r#"{"traceEvents":[
        {"ph":"M","name":"process_name","pid":1,"tid":0,"args":{"name":"p"}},
        {"ph":"M","name":"thread_name","pid":1,"tid":1,"args":{"name":"t"}},
        {"ph":"M","name":"thread_name","pid":1,"tid":2,"args":{"name":"u"}},
        {"ph":"X","name":"a","pid":1,"tid":1,"ts":0,"dur":10},
        {"ph":"X","name":"b","pid":1,"tid":1,"ts":5,"dur":5},
        {"ph":"X","name":"c","pid":1,"tid":2,"ts":20,"dur":5},
        {"ph":"s","id":1,"name":"f","pid":1,"tid":1,"ts":1},
        {"ph":"f","bp":"e","id":1,"name":"f","pid":1,"tid":2,"ts":20},
        {"ph":"C","name":"c","pid":1,"ts":0,"args":{"value":3}},
        {"ph":"M","name":"process_name","pid":2,"tid":0,"args":{"name":"process cam"}},
        {"ph":"C","name":"process cam dma-buf rss (bytes)","pid":2,"ts":0,"args":{"value":1}},
        {"ph":"C","name":"queue isp <- cam->isp (buffers)","pid":2,"ts":0,"args":{"value":1}},
        {"ph":"M","name":"process_name","pid":3,"tid":0,"args":{"name":"isp0"}},
        {"ph":"C","name":"device isp0 bandwidth (bytes/s)","pid":3,"ts":0,"args":{"value":1}},
        {"ph":"C","name":"iommu isp0 maps (calls)","pid":3,"ts":0,"args":{"value":1}},
        {"ph":"C","name":"cache isp0 cleaned (bytes)","pid":3,"ts":0,"args":{"value":1}}
    ]}"#;
    assert_eq!(faults(good), Vec::<String>::new());
}

#[test]
fn every_bundled_scenario_trace_nests_binds_its_flows_and_has_numeric_counters() {
    for (name, _, _) in scenario::bundled() {
        let text = scenario::bundled_text(name).unwrap();
        // The default's encoder joins at frame 3 so that its migrations are in the trace.
        let text = if *name == "default" {
            text.replace("at_frame = 300", "at_frame = 3")
                .replace("frames = 600", "frames = 8")
                .replace("frame = 100", "frame = 2")
        } else {
            text.to_string()
        };
        let s = validate(&text, name).unwrap();
        let s = if s.frames > 24 {
            s.with_frames(24).unwrap()
        } else {
            s
        };
        let out = run(&s, &RunOptions::default());
        let f = faults(&out.trace.to_chrome_json());
        assert!(f.is_empty(), "{name}: {f:#?}");
        if *name == "default" {
            assert!(!out.report.migrations.is_empty(), "the default migrates");
        }
    }
}

#[test]
fn engines_and_simulated_processes_are_perfetto_processes_and_fence_waits_are_slices() {
    let s = scenario::load_bundled("explicit-sync")
        .unwrap()
        .with_frames(12)
        .unwrap();
    let out = run(&s, &RunOptions::default());
    assert!(
        out.report.nodes.iter().any(|n| n.fence_wait_us > 0.0),
        "a consumer waits on its acquire fences"
    );
    let json = out.trace.to_chrome_json();
    assert_eq!(faults(&json), Vec::<String>::new());
    let v: Value = serde_json::from_str(&json).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    let process = |name: &str| {
        events
            .iter()
            .find(|e| e["ph"] == "M" && e["name"] == "process_name" && e["args"]["name"] == name)
            .and_then(|e| e["pid"].as_u64())
    };
    // Each engine is its own process, apart from the run's (pid 1).
    let engines: Vec<u64> = ["camera0", "gpu0"]
        .iter()
        .map(|d| process(d).unwrap_or_else(|| panic!("no process for {d}")))
        .collect();
    assert!(engines.iter().all(|&p| p > 1) && engines[0] != engines[1]);
    // The fence waits are slices of the waiting node's simulated process, each as long as the
    // wait, and they add up to the report's fence_wait_us.
    let waits: Vec<&Value> = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "fence-wait")
        .collect();
    assert!(!waits.is_empty());
    let total: f64 = waits.iter().map(|e| e["dur"].as_f64().unwrap()).sum();
    let reported: f64 = out.report.nodes.iter().map(|n| n.fence_wait_us).sum();
    assert!((total - reported).abs() < 1e-3, "{total} vs {reported}");
    for w in waits {
        let pid = w["pid"].as_u64().unwrap();
        let name = events
            .iter()
            .find(|e| e["ph"] == "M" && e["name"] == "process_name" && e["pid"] == pid)
            .and_then(|e| e["args"]["name"].as_str())
            .unwrap();
        assert!(name.starts_with("process "), "{name}");
    }
}
