//! `cargo xtask`: the project's automation, in Rust instead of shell scripts.
//!
//! This file only parses the command line and dispatches; each capability has its module.

mod cli;
mod test;

use std::process::ExitCode;

use clap::Parser;
use xshell::Shell;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match cli.command {
        Command::Test(args) => test::run(&sh, &args),
    }
}

/// The workspace root: the xtask crate lives one level below it.
fn project_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}
