//! `dmabuf diff` between two reports, `dmabuf sweep` over a small grid, and the batch path:
//! `--emit-jobs`, running the lines elsewhere, `--collect`.

mod common;
use common::{dmabuf, dmabuf_with_stdin, tmp, TINY};
use std::process::Command;

fn run_report(dir: &std::path::Path, name: &str, sets: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    let mut args = vec!["run", "-", "--out", out.to_str().unwrap()];
    for s in sets {
        args.extend(["--set", s]);
    }
    let r = dmabuf_with_stdin(&args, TINY);
    assert_eq!(r.code, 0, "{}", r.stderr);
    out.join("report.json")
}

#[test]
fn test_diff_shows_what_changed_between_two_runs() {
    let dir = tmp("diff");
    let a = run_report(&dir, "a", &[]);
    let b = run_report(&dir, "b", &["frames=6", "links.cam->screen.buffers=4"]);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());

    let same = dmabuf(&["diff", a, a]);
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert!(same.stdout.contains("the reports are the same"));

    let d = dmabuf(&["diff", a, b]);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(d.stdout.contains("headline:"), "{}", d.stdout);
    assert!(d.stdout.contains("  produced  "), "{}", d.stdout);
    assert!(d.stdout.contains("4 -> 6 (+50%)"), "{}", d.stdout);
    // The fourth buffer exists only in B: added as a whole, matched by name.
    assert!(d.stdout.contains("  + [cam->screen[3]]: {"), "{}", d.stdout);

    let j = dmabuf(&["diff", "--json", a, b]);
    assert_eq!(j.code, 1);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["same"], false);
    let changes = v["changes"].as_array().unwrap();
    assert!(changes
        .iter()
        .any(|c| c["path"] == "frames.produced" && c["a"] == 4 && c["b"] == 6));
    assert!(changes
        .iter()
        .any(|c| c["path"] == "buffers[cam->screen[3]]" && c["kind"] == "added"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn test_diff_tolerates_fields_it_does_not_know_and_rejects_non_reports() {
    let dir = tmp("diff-unknown");
    let a = run_report(&dir, "a", &[]);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    v["drops_by_cause"] = serde_json::json!({"queue_empty": 2});
    v["frames"]["dropped"] = serde_json::json!(2);
    let b = dir.join("b.json");
    std::fs::write(&b, v.to_string()).unwrap();
    let d = dmabuf(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.stdout
            .contains("\n+ drops_by_cause: {\"queue_empty\":2}\n"),
        "{}",
        d.stdout
    );
    assert!(
        d.stdout.contains("frames:\n  dropped: 0 -> 2"),
        "{}",
        d.stdout
    );

    std::fs::write(dir.join("bad.json"), "[1, 2]").unwrap();
    let bad = dmabuf(&[
        "diff",
        a.to_str().unwrap(),
        dir.join("bad.json").to_str().unwrap(),
    ]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("not a report"), "{}", bad.stderr);
    let missing = dmabuf(&["diff", a.to_str().unwrap(), "/nonexistent/report.json"]);
    assert_eq!(missing.code, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn test_sweep_runs_every_point_and_writes_csv_json_and_plot() {
    let dir = tmp("sweep");
    let out = dir.join("sw");
    let s = dmabuf_with_stdin(
        &[
            "sweep",
            "-",
            "--vary",
            "links.cam->screen.buffers=2,4",
            "--set",
            "frames=6",
            "--jobs",
            "2",
            "--plot",
            "maps_first",
            "--out",
            out.to_str().unwrap(),
        ],
        TINY,
    );
    assert_eq!(s.code, 0, "{}{}", s.stdout, s.stderr);
    assert!(
        s.stdout
            .starts_with("point  links.cam->screen.buffers  verdict"),
        "{}",
        s.stdout
    );
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("point,links.cam->screen.buffers,exit,verdict,produced,"));
    let col = lines[0].split(',').position(|c| c == "maps_first").unwrap();
    let maps: Vec<u64> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect();
    // With more frames than buffers, each buffer is mapped once by each of the two devices.
    assert_eq!(maps, [4, 8], "{csv}");
    // Two buffers through KMS: the one on screen stays scanned out until the next flip latches,
    // so the camera finds no free buffer twice (dropped `queue_full`, explained: VERIFIED);
    // four buffers deliver every frame.
    assert!(lines[1].starts_with("0,2,0,VERIFIED,6,4,2,"), "{csv}");
    assert!(lines[2].starts_with("1,4,0,VERIFIED,6,6,0,"), "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(json["rows"][1]["values"]["links.cam->screen.buffers"], "4");
    assert_eq!(json["rows"][1]["figures"]["maps_first"], maps[1]);
    let svg = std::fs::read_to_string(out.join("sweep.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("maps_first"));
    assert_eq!(svg.matches("<circle").count(), 2);
    assert!(out.join("runs/001/report.json").exists());
    // One point at a time gives the same table: the runs are independent and deterministic.
    let serial = dir.join("serial");
    let s = dmabuf_with_stdin(
        &[
            "sweep",
            "-",
            "--vary",
            "links.cam->screen.buffers=2,4",
            "--set",
            "frames=6",
            "--jobs",
            "1",
            "--out",
            serial.to_str().unwrap(),
        ],
        TINY,
    );
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert_eq!(
        std::fs::read_to_string(serial.join("sweep.csv")).unwrap(),
        csv
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn test_sweep_rejects_an_invalid_point_before_running_anything() {
    let dir = tmp("sweep-bad");
    let out = dir.join("sw");
    let s = dmabuf_with_stdin(
        &[
            "sweep",
            "-",
            "--vary",
            "frames=2,0",
            "--out",
            out.to_str().unwrap(),
        ],
        TINY,
    );
    assert_eq!(s.code, 2);
    assert!(
        s.stderr.contains("point 1 (frames=0) is invalid"),
        "{}",
        s.stderr
    );
    assert!(
        s.stderr.contains("--vary #1 (frames=0): `frames`"),
        "{}",
        s.stderr
    );
    assert!(!out.join("runs").exists());
    let s = dmabuf(&["sweep", "default", "--vary", "seed=1", "--plot", "nonsense"]);
    assert_eq!(s.code, 2);
    assert!(
        s.stderr.contains("--plot nonsense: no such figure"),
        "{}",
        s.stderr
    );
    let s = dmabuf(&["sweep", "default"]);
    assert_eq!(s.code, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn test_emit_jobs_then_collect_gathers_the_reports_and_notes_missing_ones() {
    let dir = tmp("emit");
    let file = dir.join("tiny.toml");
    std::fs::write(&file, TINY).unwrap();
    let out = dir.join("sw");
    let e = dmabuf(&[
        "sweep",
        file.to_str().unwrap(),
        "--vary",
        "seed=1,2,3",
        "--frames",
        "2",
        "--emit-jobs",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(e.code, 0, "{}", e.stderr);
    let lines: Vec<&str> = e.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", e.stdout);
    assert!(
        lines[1].contains(" run ") && lines[1].contains("--set seed=2"),
        "{}",
        lines[1]
    );
    assert!(!out.join("runs").exists(), "nothing ran");
    // A batch system runs two of the three lines.
    for line in &lines[..2] {
        let status = Command::new("sh").args(["-c", line]).output().unwrap();
        assert!(status.status.success(), "{line}");
    }
    let c = dmabuf(&["sweep", "--collect", out.to_str().unwrap()]);
    assert_eq!(c.code, 1, "the third point is missing: {}", c.stderr);
    assert!(c.stderr.contains("point 2: no report"), "{}", c.stderr);
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(
        csv.lines().nth(1).unwrap().starts_with("0,1,0,VERIFIED,2,"),
        "{csv}"
    );
    assert!(
        csv.lines().nth(3).unwrap().starts_with("2,3,,MISSING,"),
        "{csv}"
    );
    let status = Command::new("sh").args(["-c", lines[2]]).output().unwrap();
    assert!(status.status.success());
    let c = dmabuf(&["sweep", "--collect", out.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    // Planning again in the same directory forgets the earlier reports.
    let again = dmabuf(&[
        "sweep",
        file.to_str().unwrap(),
        "--vary",
        "seed=1,2,3",
        "--emit-jobs",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let c = dmabuf(&["sweep", "--collect", out.to_str().unwrap()]);
    assert_eq!(c.code, 1);
    assert_eq!(c.stderr.matches("no report").count(), 3, "{}", c.stderr);
    let c = dmabuf(&["sweep", "--collect", dir.to_str().unwrap()]);
    assert_eq!(c.code, 2, "no plan.json there");
    std::fs::remove_dir_all(&dir).unwrap();
}
