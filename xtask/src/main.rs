//! `cargo xtask`: the project's automation, in Rust instead of shell scripts.
//!
//! This file only parses the command line, dispatches and maps errors to exit codes; each
//! capability has its module, and `output`, `process` and `interrupt` are how every
//! command shows progress, runs docker and stops on Ctrl-C.

mod cli;
mod completions;
mod compose;
mod deploy;
mod docker;
mod hint;
mod image;
mod install;
mod interrupt;
mod output;
mod plan;
mod process;
mod status;
mod test;
mod wait;

use std::process::ExitCode;

use xshell::Shell;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let root = project_root();
    let cli = cli::parse(&root);
    output::set_verbosity(cli.verbosity());
    interrupt::install();
    match run(cli, &root) {
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
        Command::Build(args) => {
            let options = image::BuildOptions {
                extra_tags: args.tags,
                no_cache: args.no_cache,
            };
            image::build(&sh, root, &options, args.dry_run)
        }
        Command::Push(args) => {
            let options = image::PushOptions {
                registry: args.registry,
                repo: args.repo,
                allow_dirty: args.allow_dirty,
            };
            image::push(&sh, root, &options, args.dry_run)
        }
        Command::Deploy(args) => {
            let options = deploy::DeployOptions {
                build: !args.no_build,
                timeout: args.timeout,
            };
            deploy::deploy(&sh, root, &args.env.env, &options, args.dry_run)
        }
        Command::Migrate(args) => {
            deploy::migrate(&sh, root, &args.env.env, args.timeout, args.dry_run)
        }
        Command::Down(args) => deploy::down(&sh, root, &args.env.env, args.volumes, args.dry_run),
        Command::Status(args) => status::run(&sh, root, &args.env.env, args.json),
        Command::Logs(args) => deploy::logs(
            &sh,
            root,
            &args.env.env,
            args.service.as_deref(),
            args.follow,
        ),
        Command::Config(args) => deploy::config(&sh, root, &args.env),
        Command::Wait(args) => wait::run(&args),
        Command::Completions(args) => completions::print(cli::command(root), args.shell),
    }
}

/// The workspace root: the xtask crate lives one level below it.
fn project_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}
