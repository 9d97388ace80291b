//! `-` reads the scenario from standard input; `--set PATH=VALUE` overrides a field and is
//! validated like the file; errors go to stderr, the report to stdout.

mod common;
use common::{dmabuf, dmabuf_with_stdin, tmp, TINY};

#[test]
fn test_check_and_run_read_the_scenario_from_stdin() {
    let out = dmabuf_with_stdin(&["check", "-"], TINY);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("<stdin>: valid (2 nodes, 1 links"),
        "{}",
        out.stdout
    );

    let dir = tmp("stdin-run");
    let out = dmabuf_with_stdin(&["run", "-", "--out", dir.to_str().unwrap()], TINY);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("scenario tiny (seed 0): VERIFIED"));
    // The report alone on stdout; where the files went is on stderr.
    let wrote = format!("in {}: report.json", dir.display());
    assert!(!out.stdout.contains(&wrote), "{}", out.stdout);
    assert!(out.stderr.contains(&wrote), "{}", out.stderr);
    assert!(dir.join("report.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn test_errors_in_stdin_say_stdin_line_and_column_on_stderr() {
    let bad = TINY.replace("buffers = 3", "buffers = 3\ncolour = 1");
    let out = dmabuf_with_stdin(&["check", "-"], &bad);
    assert_eq!(out.code, 2);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("--> <stdin>:20:1"), "{}", out.stderr);
    let zero = TINY.replace("frames = 4", "frames = 0");
    let out = dmabuf_with_stdin(&["run", "-"], &zero);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("<stdin>:2:"), "{}", out.stderr);
}

#[test]
fn test_set_overrides_a_field_in_check_and_run() {
    let dir = tmp("set-run");
    let file = dir.join("tiny.toml");
    std::fs::write(&file, TINY).unwrap();
    let f = file.to_str().unwrap();
    let out = dmabuf(&[
        "check",
        f,
        "--set",
        "frames=7",
        "--set",
        "links.cam->screen.buffers=5",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("7 frames"), "{}", out.stdout);

    let out = dmabuf(&[
        "run",
        f,
        "--set",
        "frames=3",
        "--set",
        "links.cam->screen.buffers=2",
        "--format",
        "json",
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\"produced\": 3"), "{}", out.stdout);
    assert!(out.stdout.contains("cam->screen[1]"));
    assert!(!out.stdout.contains("cam->screen[2]"), "2 buffers, not 3");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn test_set_on_the_machine_of_a_bundled_scenario() {
    let out = dmabuf(&["check", "default", "--set", "soc.cma[0].size=64MiB"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A CMA region larger than its bank: the machine's own check rejects it, naming the override.
    let out = dmabuf(&[
        "check",
        "default",
        "--set",
        "seed=1",
        "--set",
        "soc.cma[0].size=64GiB",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("error: --set #2 (soc.cma[0].size=64GiB): "),
        "{}",
        out.stderr
    );
}

#[test]
fn test_bad_set_points_at_the_override_and_exits_2() {
    for (args, want) in [
        (
            &["--set", "seed=5", "--set", "links.camera->isp.buffers=100"][..],
            "error: --set #2 (links.camera->isp.buffers=100): `links[0].buffers`",
        ),
        (
            &["--set", "links.camera->nowhere.buffers=1"][..],
            "has no element named `camera->nowhere`",
        ),
        (
            &["--set", "nodes.camera.colour=red"][..],
            "--set #1 (nodes.camera.colour=red): unknown field `colour`",
        ),
        (
            &["--set", "frames"][..],
            "--set #1 (frames): expected PATH=VALUE",
        ),
    ] {
        let mut all = vec!["check", "default"];
        all.extend_from_slice(args);
        let out = dmabuf(&all);
        assert_eq!(out.code, 2, "{args:?}");
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn test_run_time_errors_go_to_stderr_too() {
    let dir = tmp("set-fail");
    let out = dmabuf(&["run", "unsatisfiable", "--out", dir.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("error: ENOMEM"), "{}", out.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}
