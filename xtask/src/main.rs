//! `cargo xtask`: the project's automation, in Rust instead of shell scripts.
//!
//! This file only parses the command line, dispatches and maps errors to exit codes. Each
//! command has its module (`stack/` for the commands that act on an environment, `image/`,
//! `install/`, `wait/`); `plan` is how they describe and carry out their steps, `docker`
//! how anything runs docker, `output` and `interrupt` how every command shows progress and
//! stops on Ctrl-C.

mod address;
mod cli;
mod completions;
mod database;
mod docker;
mod hint;
mod image;
mod install;
mod interrupt;
mod output;
mod plan;
mod poll;
mod stack;
mod swarm;
mod test;
mod wait;

use std::process::ExitCode;

use xshell::Shell;

use crate::cli::{Cli, Command, SwarmCommand};

fn main() -> ExitCode {
    let root = project_root();
    let cli = cli::parse(&root);
    output::set_verbosity(cli.verbosity());
    interrupt::install();
    let outcome = run(cli, &root);
    docker::tunnel::close_all();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            output::error(&err);
            exit_code(&err)
        }
    }
}

/// 0 success, 1 failure, 2 usage error (clap's, and a target refused before any waiting),
/// 3 not ready before the deadline; 130 after Ctrl-C comes from `interrupt`.
fn exit_code(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<wait::BadTarget>().is_some() {
        ExitCode::from(2)
    } else if err.downcast_ref::<wait::NotReady>().is_some() {
        ExitCode::from(3)
    } else {
        ExitCode::FAILURE
    }
}

fn run(cli: Cli, root: &std::path::Path) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(root);
    match cli.command {
        Command::Test(args) => test::run(&sh, &args),
        Command::InstallDocker(args) => install::run(&sh, &args),
        Command::Build(args) => image::build::run(&sh, &args),
        Command::Push(args) => image::push::run(&sh, &args),
        Command::Deploy(args) => stack::deploy::run(&sh, &args),
        Command::Migrate(args) => stack::migrate::run(&sh, &args),
        Command::Rollback(args) => stack::rollback::run(&sh, &args),
        Command::History(args) => stack::history::run(&sh, &args),
        Command::Backup(args) => database::backup::run(&sh, &args),
        Command::Restore(args) => database::restore::run(&sh, &args),
        Command::Maintenance(args) => database::maintenance::run(&sh, &args),
        Command::Psql(args) => database::console::psql(&sh, &args),
        Command::Exec(args) => database::console::exec(&sh, &args),
        Command::Down(args) => stack::down::run(&sh, &args),
        Command::Status(args) => stack::status::run(&sh, &args),
        Command::Logs(args) => stack::logs::run(&sh, &args),
        Command::Config(args) => stack::config::run(&sh, &args),
        Command::Swarm(SwarmCommand::Init(args)) => swarm::init::run(&sh, &args),
        Command::Wait(args) => wait::run(&args),
        Command::Completions(args) => completions::run(&sh, &args),
    }
}

/// The workspace root: the xtask crate lives one level below it.
fn project_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}
