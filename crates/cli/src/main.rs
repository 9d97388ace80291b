//! `dmabuf`: the command-line front of the dmabuf simulator.
//!
//! With no argument it runs the main job on the bundled default machine. Until the scenario
//! runner lands (issue 7), the main job is the built-in demo of [`demo`]: a camera frame moved
//! through a direct-mapped device and an IOMMU, with the DMA-API checker watching, printed step
//! by step.
#![deny(unsafe_code)]

mod demo;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Linux's dma-buf framework on a simulated SoC whose devices really move bytes.
#[derive(Parser)]
#[command(name = "dmabuf", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Move a camera frame through the default SoC and print what happened (the default).
    Demo,
    /// Print the bundled default machine description as TOML.
    Soc,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Demo) {
        Command::Demo => demo::run(&mut std::io::stdout().lock()).map(|summary| {
            if summary.verified {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }),
        Command::Soc => toml::to_string_pretty(&soc::SocDesc::default_soc())
            .map(|text| {
                print!("{text}");
                ExitCode::SUCCESS
            })
            .map_err(|e| e.into()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dmabuf: {e}");
            ExitCode::from(2)
        }
    }
}
