//! `dmabuf`: the command-line front of the dmabuf simulator.
//!
//! With no argument it runs the bundled default scenario (`dmabuf run`): a 4K camera -> ISP ->
//! GPU -> display pipeline on the simulated SoC, an encoder joining mid-stream that forces a
//! migration, a thumbnail pulled by the CPU; it prints the summary and writes `out/`.
//!
//! Exit codes: 0 verified; 1 corruption, unexpected checker findings or a run-time error; 2 an
//! invalid scenario or invalid arguments (with file:line:col and what was expected).
#![deny(unsafe_code)]

#[macro_use]
mod stdout;

mod bench;
mod budget;
mod demo;
mod diff;
mod explain;
mod figures;
mod outdir;
mod source;
mod sweep;

use clap::{Parser, Subcommand, ValueEnum};
use scenario::report::Report;
use scenario::run::{run, RunOptions};
use scenario::ScenarioError;
use std::path::PathBuf;
use std::process::ExitCode;

/// Linux's dma-buf framework on a simulated SoC whose devices really move bytes.
#[derive(Parser)]
#[command(name = "dmabuf", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Run a scenario and copy as many bytes as its devices moved with `copy_from_slice` on as
    /// many host threads: wall time, real-time factor, ratio to that copy bound.
    Pipeline {
        /// A scenario file, a bundled scenario's name, or `-` (default: the bundled default).
        scenario: Option<String>,
        /// Host threads for the run and the copy (default: the machine's cores).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
        threads: Option<u32>,
        /// Override the number of frames.
        #[arg(long)]
        frames: Option<u64>,
        /// Override any scenario field, as for `run`.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario (a file, the name of a bundled one, or `-` for standard input; default:
    /// the bundled default). The report goes to stdout, errors and warnings to stderr.
    Run {
        /// A scenario file, a bundled scenario's name, or `-` (standard input).
        scenario: Option<String>,
        /// Where report.json, trace.json, timeline.svg, latency.svg, memory.svg and
        /// thumbnail.jpg go.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// What stdout gets.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Host threads the devices' bytes move on (default: the machine's cores; 1 is the
        /// single-threaded reference). Outputs are byte-identical for any number.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
        threads: Option<u32>,
        /// Every device engine on its own OS thread instead (a stress mode: not deterministic).
        #[arg(long, conflicts_with = "threads")]
        engine_threads: bool,
        /// Override the number of frames.
        #[arg(long)]
        frames: Option<u64>,
        /// Override any scenario field, validated like the file (repeatable, later wins):
        /// `--set links.camera->isp.buffers=6`, `--set soc.cma[0].size=64MiB`.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Most host memory the simulated memory may take (default: half the host's RAM).
        #[arg(long, value_name = "SIZE")]
        max_host_memory: Option<String>,
    },
    /// Validate a scenario without running it.
    Check {
        /// A scenario file, a bundled scenario's name, or `-` (standard input).
        scenario: String,
        /// Override any scenario field (as for `run`).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Most host memory the simulated memory may take (as for `run`).
        #[arg(long, value_name = "SIZE")]
        max_host_memory: Option<String>,
    },
    /// What changed between two reports (report.json): placements, migrations, latency, drops,
    /// maps, device traffic, findings. Exit code 0 when the same, 1 when they differ.
    Diff {
        /// The first report.
        a: PathBuf,
        /// The second report.
        b: PathBuf,
        /// Print the differences as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a scenario over the cartesian product of varied fields, as parallel processes;
    /// writes sweep.csv, sweep.json and sweep.svg in --out.
    Sweep {
        /// A scenario file, a bundled scenario's name, or `-` (standard input).
        scenario: Option<String>,
        /// A field and its values (repeatable): `--vary links.camera->isp.buffers=2,4,6`.
        #[arg(long, value_name = "PATH=V1,V2,...")]
        vary: Vec<String>,
        /// Override a field for every point (as for `run`).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Override the number of frames of every point.
        #[arg(long)]
        frames: Option<u64>,
        /// Override the seed of every point.
        #[arg(long)]
        seed: Option<u64>,
        /// Points run at once (default: the number of CPUs).
        #[arg(long)]
        jobs: Option<usize>,
        /// The sweep's directory: plan.json, runs/NNN/, sweep.csv, sweep.json, sweep.svg.
        #[arg(long, default_value = "sweep")]
        out: PathBuf,
        /// The headline figure sweep.svg plots against the first varied field.
        #[arg(long, default_value = "p99_us")]
        plot: String,
        /// Print one `dmabuf run ...` command line per point instead of running them.
        #[arg(long)]
        emit_jobs: bool,
        /// Gather the reports of a sweep whose points ran elsewhere (after --emit-jobs).
        #[arg(long, value_name = "DIR")]
        collect: Option<PathBuf>,
    },
    /// Why a buffer is where it is: every placement decision (devices, each combined
    /// constraint and the device that set it, the source chosen, its physical ranges, the
    /// alternatives refused), from a report.json or by running a scenario.
    Explain {
        /// A report.json, or a scenario (file, bundled name, or `-`) to run first.
        source: String,
        /// The buffer's name as the report names it (`isp-out[0]`).
        buffer: String,
        /// Print the reason as JSON.
        #[arg(long)]
        json: bool,
        /// Override any scenario field (a scenario source only).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Override the number of frames (a scenario source only).
        #[arg(long)]
        frames: Option<u64>,
        /// Override the seed (a scenario source only).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// List the bundled scenarios.
    Scenarios,
    /// Measure the headline ratios against their baselines, in this run.
    Bench {
        /// A longer measurement instead of the ratios.
        #[command(subcommand)]
        what: Option<BenchWhat>,
    },
    /// Move one camera frame through the default SoC and print what happened.
    Demo,
    /// List the bundled machines, or print one as TOML to paste into a scenario (in place of
    /// `soc = "NAME"`).
    Soc {
        /// The machine to print (`dmabuf soc` lists the names).
        name: Option<String>,
    },
}

/// Loads a scenario and checks it against the host memory budget (exit 2 on either).
fn load_within_budget(
    arg: &str,
    set: &[String],
    frames: Option<u64>,
    max_host_memory: Option<&str>,
) -> Result<scenario::Scenario, ExitCode> {
    let budget = budget::budget(max_host_memory).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    let s = source::load(arg, set, frames).map_err(|e| fail(&e))?;
    s.check_host_memory(budget).map_err(|e| fail(&e))?;
    Ok(s)
}

/// An error for stderr, an I/O error's errno by name (`ENOSPC (No space left on device)`).
fn by_name(e: &(dyn std::error::Error + 'static)) -> String {
    match e.downcast_ref::<std::io::Error>() {
        Some(io) => scenario::io_by_name(io),
        None => e.to_string(),
    }
}

fn fail(e: &ScenarioError) -> ExitCode {
    eprint!("{}", e.render());
    if !e.render().ends_with('\n') {
        eprintln!();
    }
    ExitCode::from(e.exit_code().code() as u8)
}

/// The report's failures, one line each, for stderr (the report itself, on stdout, has them too).
fn problems(report: &Report) -> Vec<String> {
    let mut lines: Vec<String> = report
        .errors
        .iter()
        .map(|e| match e.errno.as_str() {
            "" => format!("error: {}", e.message),
            errno => format!("error: {errno}: {}", e.message),
        })
        .collect();
    if report.frames.corrupted > 0 {
        lines.push(format!(
            "error: {} frame(s) arrived corrupted",
            report.frames.corrupted
        ));
    }
    lines.extend(
        report
            .checker
            .findings
            .iter()
            .filter(|f| !f.expected)
            .map(|f| {
                format!(
                    "error: checker finding the scenario does not expect: [{}] {}",
                    f.kind, f.message
                )
            }),
    );
    lines
}

#[allow(clippy::too_many_arguments)]
fn cmd_run(
    scenario: Option<String>,
    out: PathBuf,
    seed: Option<u64>,
    format: Format,
    opts: RunOptions,
    frames: Option<u64>,
    set: &[String],
    max_host_memory: Option<&str>,
) -> ExitCode {
    let s = match load_within_budget(
        scenario.as_deref().unwrap_or(scenario::DEFAULT),
        set,
        frames,
        max_host_memory,
    ) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let s = match seed {
        Some(seed) => s.with_seed(seed),
        None => s,
    };
    if let Err(e) = outdir::prepare(&out) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let started = std::time::Instant::now();
    // The trace goes to disk as the run goes (bounded host memory).
    let opts = RunOptions {
        trace_dir: Some(out.clone()),
        ..opts
    };
    let output = run(&s, &opts);
    let wall = started.elapsed();
    let files = match output.write(&out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "error: writing {}: {}",
                out.display(),
                scenario::io_by_name(&e)
            );
            return ExitCode::from(1);
        }
    };
    match format {
        Format::Json => out!("{}", output.report.to_json()),
        Format::Text => out!("{}", scenario::report::text_summary(&output.report)),
    }
    for line in problems(&output.report) {
        eprintln!("{line}");
    }
    if opts.engine_threads {
        eprintln!(
            "warning: --engine-threads ran every device engine on its own OS thread; the checks still \
             hold, but host interleaving differs between runs (not the deterministic reference)"
        );
    }
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    eprintln!(
        "wrote {} in {}: {} ({:.1} s wall)",
        names.len(),
        out.display(),
        names.join(", "),
        wall.as_secs_f64()
    );
    ExitCode::from(output.report.exit_code().code() as u8)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let command = cli.command.unwrap_or(Command::Run {
        scenario: None,
        out: PathBuf::from("out"),
        seed: None,
        format: Format::Text,
        threads: None,
        engine_threads: false,
        frames: None,
        set: Vec::new(),
        max_host_memory: None,
    });
    match command {
        Command::Run {
            scenario,
            out,
            seed,
            format,
            threads,
            engine_threads,
            frames,
            set,
            max_host_memory,
        } => cmd_run(
            scenario,
            out,
            seed,
            format,
            RunOptions {
                threads: threads.map_or(0, |n| n as usize),
                engine_threads,
                progress: true,
                trace_dir: None,
                host_clock: None,
            },
            frames,
            &set,
            max_host_memory.as_deref(),
        ),
        Command::Check {
            scenario,
            set,
            max_host_memory,
        } => match load_within_budget(&scenario, &set, None, max_host_memory.as_deref()) {
            Ok(s) => {
                outln!(
                    "{}: valid ({} nodes, {} links, {} events, {} frames)",
                    s.file,
                    s.nodes.len(),
                    s.links.len(),
                    s.events.len(),
                    s.frames
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Diff { a, b, json } => match (diff::read(&a), diff::read(&b)) {
            (Ok(ra), Ok(rb)) => {
                let (na, nb) = (a.display().to_string(), b.display().to_string());
                if json {
                    out!("{}", diff::json(&na, &nb, &ra, &rb));
                } else {
                    out!("{}", diff::text(&na, &nb, &ra, &rb));
                }
                ExitCode::from(u8::from(!diff::diff(&ra, &rb).is_empty()))
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Sweep {
            scenario,
            vary,
            set,
            frames,
            seed,
            jobs,
            out,
            plot,
            emit_jobs,
            collect,
        } => sweep::main(sweep::Args {
            scenario,
            vary,
            set,
            frames,
            seed,
            jobs,
            out,
            plot,
            emit_jobs,
            collect,
        }),
        Command::Explain {
            source,
            buffer,
            json,
            set,
            frames,
            seed,
        } => explain::main(explain::Args {
            source,
            buffer,
            json,
            set,
            frames,
            seed,
        }),
        Command::Scenarios => {
            for (name, line, _) in scenario::bundled() {
                outln!("{name:<22} {line}");
            }
            ExitCode::SUCCESS
        }
        Command::Bench {
            what:
                Some(BenchWhat::Pipeline {
                    scenario,
                    threads,
                    frames,
                    set,
                }),
        } => {
            let s = match source::load(scenario.as_deref().unwrap_or(scenario::DEFAULT), &set, None)
            {
                Ok(s) => s,
                Err(e) => return fail(&e),
            };
            let s = match frames.map(|f| s.clone().with_frames(f)) {
                Some(Err(e)) => return fail(&e),
                Some(Ok(s)) => s,
                None => s,
            };
            let threads = threads.map_or(0, |n| n as usize);
            match bench::pipeline(&mut std::io::stdout().lock(), &s, threads) {
                Ok(f) if f.verified => ExitCode::SUCCESS,
                Ok(_) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("dmabuf bench pipeline: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Bench { what: None } => match bench::run(&mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dmabuf bench: {}", by_name(e.as_ref()));
                ExitCode::from(1)
            }
        },
        Command::Demo => match demo::run(&mut std::io::stdout().lock()) {
            Ok(summary) if summary.verified => ExitCode::SUCCESS,
            Ok(_) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: {}", by_name(e.as_ref()));
                ExitCode::from(1)
            }
        },
        Command::Soc { name: None } => {
            for m in soc::bundled::machines() {
                outln!("{:<10} {}", m.name, m.description);
            }
            ExitCode::SUCCESS
        }
        Command::Soc { name: Some(name) } => match soc::bundled::machine_toml(&name) {
            Some(text) => {
                out!("{text}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "error: no bundled machine is named `{name}`: expected one of {}",
                    soc::bundled::machine_names()
                );
                ExitCode::from(2)
            }
        },
    }
}
