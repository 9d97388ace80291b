//! `dmabuf sweep`: one scenario run over the cartesian product of varied fields.
//!
//! `dmabuf sweep SCENARIO --vary PATH=V1,V2 [--vary ...] [--jobs N]` validates every point
//! first (an invalid value is answered before anything runs, naming the `--vary`), writes the
//! plan (`DIR/plan.json`), runs each point as an independent `dmabuf run` process (this same
//! executable, `--jobs` at a time, each into `DIR/runs/NNN/` with its output in `run.log`), then
//! collects: `DIR/sweep.csv` and `DIR/sweep.json` (one row per point: the varied values, the exit
//! code, the verdict and the headline figures of [`crate::figures`]) and `DIR/sweep.svg` (the
//! `--plot` figure against the first varied field, one line per combination of the others).
//!
//! `--emit-jobs` writes the plan and prints one `dmabuf run ...` command line per point instead
//! of running them, for a batch system (with absolute paths: the jobs may run elsewhere);
//! `dmabuf sweep --collect DIR` then gathers the reports
//! (a point whose report is missing is a row with verdict `MISSING`).
//!
//! Exit code: 0 when every point verified, 1 when one did not (or is missing), 2 for invalid
//! arguments or an invalid point.

mod plan;
mod plot;

pub use plan::{shell_quote, Plan, Vary};

use crate::figures::{self, show, FIGURES};
use crate::source;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The arguments of `dmabuf sweep`.
pub struct Args {
    /// The scenario argument (`None` with `--collect`).
    pub scenario: Option<String>,
    /// `--vary PATH=V1,V2,...`.
    pub vary: Vec<String>,
    /// `--set PATH=VALUE` for every point.
    pub set: Vec<String>,
    /// `--frames`.
    pub frames: Option<u64>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--jobs`.
    pub jobs: Option<usize>,
    /// `--out`.
    pub out: PathBuf,
    /// `--plot`.
    pub plot: String,
    /// `--emit-jobs`.
    pub emit_jobs: bool,
    /// `--collect DIR`.
    pub collect: Option<PathBuf>,
}

fn invalid(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Runs `dmabuf sweep`.
pub fn main(args: Args) -> ExitCode {
    if figures::figure(&args.plot).is_none() {
        return invalid(format!(
            "--plot {}: no such figure (figures: {})",
            args.plot,
            figures::names()
        ));
    }
    if let Some(dir) = &args.collect {
        if args.scenario.is_some() || !args.vary.is_empty() || args.emit_jobs {
            return invalid("--collect DIR takes no scenario, --vary or --emit-jobs");
        }
        return collect(dir, &args.plot, None);
    }
    let Some(scenario) = args.scenario.clone() else {
        return invalid("a scenario to sweep is required (or --collect DIR)");
    };
    if args.vary.is_empty() {
        return invalid("at least one --vary PATH=V1,V2,... is required");
    }
    if args.jobs == Some(0) {
        return invalid("--jobs 0: expected at least 1");
    }
    match prepare(&args, &scenario) {
        Ok(plan) if args.emit_jobs => {
            let dir = std::fs::canonicalize(&args.out).unwrap_or_else(|_| args.out.clone());
            emit(&plan, &dir)
        }
        Ok(plan) => {
            let codes = run_points(&plan, &args.out, args.jobs);
            collect(&args.out, &args.plot, Some(&codes))
        }
        Err(code) => code,
    }
}

/// Parses and validates every point and writes the plan; errors are printed.
fn prepare(args: &Args, scenario: &str) -> Result<Plan, ExitCode> {
    let vary = args
        .vary
        .iter()
        .enumerate()
        .map(|(i, a)| Vary::parse(i + 1, a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    let (text, file) = source::text_of(scenario).map_err(|e| crate::fail(&e))?;
    crate::outdir::prepare(&args.out).map_err(invalid)?;
    // Standard input is read once: the points run a copy of it. Emitted jobs may run in
    // another directory (a batch system's), so their paths are absolute.
    let absolute = |p: &Path| -> PathBuf {
        match (args.emit_jobs, std::fs::canonicalize(p)) {
            (true, Ok(abs)) => abs,
            _ => p.to_path_buf(),
        }
    };
    let run_arg = if scenario == "-" {
        let copy = args.out.join("scenario.toml");
        std::fs::write(&copy, &text)
            .map_err(|e| invalid(format!("writing {}: {e}", copy.display())))?;
        absolute(&copy).display().to_string()
    } else if Path::new(scenario).exists() {
        absolute(Path::new(scenario)).display().to_string()
    } else {
        scenario.to_string()
    };
    let plan = Plan::new(
        run_arg,
        args.set.clone(),
        args.frames,
        args.seed,
        vary.clone(),
    )
    .map_err(invalid)?;
    let common = source::parse_sets(&args.set).map_err(|e| crate::fail(&e))?;
    for (i, point) in plan.points.iter().enumerate() {
        let mut sets = common.clone();
        for (j, (v, x)) in vary.iter().zip(point).enumerate() {
            let o = scenario::schema::Override::parse(
                &format!("--vary #{}", j + 1),
                &format!("{}={x}", v.path),
            )
            .map_err(|e| crate::fail(&e))?;
            sets.push(o);
        }
        let checked = source::validate(&text, &file, &sets).and_then(|s| match args.frames {
            Some(f) => s.with_frames(f),
            None => Ok(s),
        });
        if let Err(e) = checked {
            eprintln!(
                "sweep: point {i} ({}) is invalid:",
                plan.assignments(i).join(", ")
            );
            return Err(crate::fail(&e));
        }
    }
    let path = args.out.join("plan.json");
    std::fs::write(&path, plan.to_json())
        .map_err(|e| invalid(format!("writing {}: {e}", path.display())))?;
    // A report left by an earlier sweep in the same directory must not be collected as this
    // one's.
    for i in 0..plan.points.len() {
        let stale = args.out.join(Plan::run_dir(i)).join("report.json");
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(invalid(format!("removing {}: {e}", stale.display())))
            }
            _ => {}
        }
    }
    Ok(plan)
}

fn exe() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "dmabuf".to_string())
}

/// Prints one command line per point.
fn emit(plan: &Plan, dir: &Path) -> ExitCode {
    let exe = exe();
    for i in 0..plan.points.len() {
        let args: Vec<String> = plan.args(i, dir).iter().map(|a| shell_quote(a)).collect();
        outln!("{} {}", shell_quote(&exe), args.join(" "));
    }
    eprintln!(
        "sweep: {} point(s) planned in {}; run the lines above, then `dmabuf sweep --collect {}`",
        plan.points.len(),
        dir.display(),
        dir.display()
    );
    ExitCode::SUCCESS
}

/// Runs every point, `jobs` at a time; the exit code of each (`None` if it could not start).
fn run_points(plan: &Plan, dir: &Path, jobs: Option<usize>) -> Vec<Option<i32>> {
    let n = plan.points.len();
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(n)
        .max(1);
    let next = AtomicUsize::new(0);
    let codes = Mutex::new(vec![None; n]);
    let exe = exe();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let run_dir = dir.join(Plan::run_dir(i));
                let code = std::fs::create_dir_all(&run_dir)
                    .and_then(|()| std::fs::File::create(run_dir.join("run.log")))
                    .and_then(|log| {
                        let err = log.try_clone()?;
                        Command::new(&exe)
                            .args(plan.args(i, dir))
                            .stdin(Stdio::null())
                            .stdout(log)
                            .stderr(err)
                            .status()
                    });
                let code = match code {
                    Ok(status) => status.code(),
                    Err(e) => {
                        eprintln!(
                            "sweep: point {i}: cannot run {exe}: {}",
                            scenario::io_by_name(&e)
                        );
                        None
                    }
                };
                eprintln!(
                    "sweep: point {i} ({}): exit {}",
                    plan.assignments(i).join(", "),
                    code.map_or("none".to_string(), |c| c.to_string())
                );
                if let Ok(mut c) = codes.lock() {
                    c[i] = code;
                }
            });
        }
    });
    codes.into_inner().unwrap_or_default()
}

/// One collected point.
struct Row {
    values: Vec<String>,
    exit: Option<i32>,
    verdict: &'static str,
    figures: Vec<Option<f64>>,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Reads each point's report, writes `sweep.csv`, `sweep.json`, `sweep.svg` and prints the
/// table. `codes` are the exit codes of a run that just happened (`None` when collecting a
/// sweep run elsewhere: the code is then the one the report's verdict implies).
fn collect(dir: &Path, plot_field: &str, codes: Option<&[Option<i32>]>) -> ExitCode {
    let plan = match std::fs::read_to_string(dir.join("plan.json"))
        .map_err(|e| e.to_string())
        .and_then(|t| Plan::from_json(&t))
    {
        Ok(p) => p,
        Err(e) => {
            return invalid(format!(
                "{}: {e} (a sweep directory has the plan.json that `dmabuf sweep` or \
                 `--emit-jobs` wrote)",
                dir.join("plan.json").display()
            ))
        }
    };
    let mut rows = Vec::new();
    let mut reports = Vec::new();
    for (i, values) in plan.points.iter().enumerate() {
        let path = dir.join(Plan::run_dir(i)).join("report.json");
        let report: Option<Value> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let ran = codes.and_then(|c| c.get(i).copied().flatten());
        let row = match &report {
            Some(r) => {
                let verdict = figures::verdict(r);
                Row {
                    values: values.clone(),
                    exit: ran.or(Some(i32::from(verdict != "VERIFIED"))),
                    verdict,
                    figures: FIGURES.iter().map(|f| f.of(r)).collect(),
                }
            }
            None => {
                eprintln!("sweep: point {i}: no report at {}", path.display());
                Row {
                    values: values.clone(),
                    exit: ran,
                    verdict: "MISSING",
                    figures: vec![None; FIGURES.len()],
                }
            }
        };
        reports.push(report);
        rows.push(row);
    }
    let written = write_outputs(dir, &plan, &rows, plot_field);
    if let Err(e) = written {
        eprintln!("error: writing the sweep's files in {}: {e}", dir.display());
        return ExitCode::from(1);
    }
    out!("{}", table(&plan, &rows, plot_field));
    eprintln!(
        "wrote sweep.csv, sweep.json, sweep.svg in {}",
        dir.display()
    );
    let ok = rows
        .iter()
        .all(|r| r.verdict == "VERIFIED" && r.exit == Some(0));
    ExitCode::from(u8::from(!ok))
}

fn write_outputs(dir: &Path, plan: &Plan, rows: &[Row], plot_field: &str) -> std::io::Result<()> {
    let mut csv = String::from("point");
    for v in &plan.vary {
        csv += &format!(",{}", csv_field(&v.path));
    }
    csv += ",exit,verdict";
    for f in FIGURES {
        csv += &format!(",{}", f.name);
    }
    csv.push('\n');
    for (i, r) in rows.iter().enumerate() {
        csv += &i.to_string();
        for v in &r.values {
            csv += &format!(",{}", csv_field(v));
        }
        csv += &format!(
            ",{},{}",
            r.exit.map_or(String::new(), |c| c.to_string()),
            r.verdict
        );
        for f in &r.figures {
            csv += &format!(",{}", f.map_or(String::new(), show));
        }
        csv.push('\n');
    }
    std::fs::write(dir.join("sweep.csv"), csv)?;
    let json_rows: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let values: serde_json::Map<String, Value> = plan
                .vary
                .iter()
                .zip(&r.values)
                .map(|(v, x)| (v.path.clone(), json!(x)))
                .collect();
            let figs: serde_json::Map<String, Value> = FIGURES
                .iter()
                .zip(&r.figures)
                .map(|(f, x)| (f.name.to_string(), figures::to_json(*x)))
                .collect();
            json!({
                "point": i,
                "dir": Plan::run_dir(i).display().to_string(),
                "values": values,
                "exit": r.exit,
                "verdict": r.verdict,
                "figures": figs,
            })
        })
        .collect();
    let doc = json!({
        "scenario": plan.scenario,
        "vary": plan.vary.iter().map(|v| json!({"path": v.path, "values": v.values})).collect::<Vec<_>>(),
        "rows": json_rows,
    });
    std::fs::write(
        dir.join("sweep.json"),
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n",
    )?;
    let k = FIGURES
        .iter()
        .position(|f| f.name == plot_field)
        .unwrap_or(0);
    let points: Vec<(Vec<String>, Option<f64>)> = rows
        .iter()
        .map(|r| (r.values.clone(), r.figures[k]))
        .collect();
    let svg = plot::svg(&plan.vary, &points, &FIGURES[k]);
    std::fs::write(dir.join("sweep.svg"), svg)
}

/// The table printed to stdout: the varied values, the verdict and a few headline figures.
fn table(plan: &Plan, rows: &[Row], plot_field: &str) -> String {
    let mut cols: Vec<&str> = vec!["p50_us", "p99_us", "dropped", "migrations"];
    if !cols.contains(&plot_field) {
        cols.push(plot_field);
    }
    let mut head: Vec<String> = vec!["point".into()];
    head.extend(plan.vary.iter().map(|v| v.path.clone()));
    head.push("verdict".into());
    head.extend(cols.iter().map(|c| c.to_string()));
    let mut lines = vec![head];
    for (i, r) in rows.iter().enumerate() {
        let mut l = vec![i.to_string()];
        l.extend(r.values.iter().cloned());
        l.push(r.verdict.to_string());
        for c in &cols {
            let k = FIGURES.iter().position(|f| f.name == *c).unwrap_or(0);
            l.push(r.figures[k].map_or("-".to_string(), show));
        }
        lines.push(l);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(x, w)| format!("{x:w$}"))
            .collect();
        s += cells.join("  ").trim_end();
        s.push('\n');
    }
    s
}
