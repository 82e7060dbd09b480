//! The command line, as clap definitions (`args`), completed at run time with what only
//! the checkout knows (`names`): the environments under compose/ and the services of
//! compose/compose.yaml, so that `--help`, the errors and the completion scripts name them.

mod args;
mod names;

use std::path::Path;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, error::ErrorKind};

pub use args::*;
pub use names::parse_duration;
use names::{Names, examples};

use crate::{output, stack};

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, publish and deploy Travial",
    version,
    arg_required_else_help = true,
    after_help = examples(&[
        ("cargo xtask deploy dev", "build, start and check the dev stack"),
        ("cargo xtask status dev --json", "its containers' state, for scripts"),
        ("cargo xtask logs dev web --follow", "follow web's logs"),
        ("cargo xtask down dev", "stop dev, keeping its data"),
        ("cargo xtask push --dry-run", "show what a push would run"),
        ("cargo xtask completions bash", "print the bash completion script"),
    ]) + "\nExit codes: 0 success, 1 failure, 2 usage error, 3 not ready before the deadline, 130 interrupted",
)]
pub struct Cli {
    /// Print only errors and the result
    #[arg(
        long,
        short,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Global Options"
    )]
    pub quiet: bool,
    /// Echo every docker command as it runs, the checks too
    #[arg(long, short, global = true, help_heading = "Global Options")]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    pub fn verbosity(&self) -> output::Verbosity {
        match (self.quiet, self.verbose) {
            (true, _) => output::Verbosity::Quiet,
            (false, true) => output::Verbosity::Verbose,
            (false, false) => output::Verbosity::Normal,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every check CI runs: formatting, clippy and all tests
    #[command(after_help = examples(&[
        ("cargo xtask test", "cargo fmt --check, clippy -D warnings, cargo test --workspace"),
        ("cargo xtask test --dry-run", "print those commands"),
    ]))]
    Test(TestArgs),
    /// Install Docker Engine and Compose v2 or later on Ubuntu or Debian, and join the docker group
    #[command(after_help = examples(&[
        ("cargo xtask install-docker --dry-run", "print every file and command first"),
        ("cargo xtask install-docker", "install from Docker's repository"),
        ("cargo xtask install-docker --source distro", "install the distribution's docker.io"),
    ]))]
    InstallDocker(InstallDockerArgs),
    /// Build the app image, tagged with its version and git revision
    #[command(after_help = examples(&[
        ("cargo xtask build", "build and tag the app image"),
        ("cargo xtask build --tag rc1", "with an extra tag"),
        ("cargo xtask build --dry-run", "print the commands"),
    ]))]
    Build(BuildArgs),
    /// Push every tag of the current revision to Docker Hub or another registry
    #[command(after_help = examples(&[
        ("cargo xtask push", "to Docker Hub, as `docker login` allows"),
        ("cargo xtask push --registry 127.0.0.1:5000", "to another registry"),
        ("DOCKER_USERNAME=me DOCKER_TOKEN=… cargo xtask push", "with credentials, as in CI"),
    ]))]
    Push(PushArgs),
    /// Deploy an environment: build, db up and ready, migrate, web up and healthy
    #[command(after_help = examples(&[
        ("cargo xtask deploy dev", "build, start and check dev"),
        ("cargo xtask deploy prod --no-build", "with the images as they are"),
        ("cargo xtask deploy staging --dry-run", "print the commands"),
        ("WEB_PORT=8001 cargo xtask deploy dev", "when port 8000 is taken (DB_PORT for 5432)"),
    ]))]
    Deploy(DeployArgs),
    /// Apply the migrations to an environment's database
    #[command(after_help = examples(&[
        ("cargo xtask migrate dev", "start db if need be, then migrate"),
        ("cargo xtask migrate prod --dry-run", "print the commands"),
    ]))]
    Migrate(MigrateArgs),
    /// Go back to the image deployed before (or another kept one), with the same switch
    #[command(after_help = examples(&[
        ("cargo xtask rollback prod", "back to the image deployed before the current one"),
        ("cargo xtask rollback prod --to 0a1b2c3", "to that revision's image"),
        ("cargo xtask history prod", "which images were deployed, when, by whom"),
    ]))]
    Rollback(RollbackArgs),
    /// Show an environment's recent deploys and rollbacks: when, who, which image, result
    #[command(after_help = examples(&[
        ("cargo xtask history prod", "as a table"),
        ("cargo xtask history prod --json", "for scripts"),
    ]))]
    History(HistoryArgs),
    /// Back up an environment's database here; `backup list|verify|pull` for the rest
    #[command(after_help = examples(&[
        ("cargo xtask backup prod", "a consistent dump into backups/prod/, with its manifest"),
        ("cargo xtask backup prod --keep 10", "and keep the 10 newest"),
        ("cargo xtask backup list prod", "the backups here and on the host"),
        ("cargo xtask backup verify prod", "restore the newest into a throwaway server, compare"),
        ("cargo xtask backup pull prod", "copy the host's scheduled backups here"),
    ]))]
    Backup(BackupArgs),
    /// Replace an environment's data with a backup (asks for the environment's name)
    #[command(after_help = examples(&[
        ("cargo xtask restore prod", "the newest backup, after a backup of the data it replaces"),
        ("cargo xtask restore prod 20261205T101112Z --yes", "that one, without asking (scripts)"),
        ("cargo xtask restore prod ~/prod.dump", "a dump file, its manifest beside it"),
    ]))]
    Restore(RestoreArgs),
    /// Put the maintenance page up (503 for all but the health checks), or take it down
    #[command(after_help = examples(&[
        ("cargo xtask maintenance prod on", "before work on the data"),
        ("cargo xtask maintenance prod off", "serve again"),
    ]))]
    Maintenance(MaintenanceArgs),
    /// A psql console on an environment's database, as its owner; SQL on stdin for scripts
    #[command(after_help = examples(&[
        ("cargo xtask psql prod", "interactive"),
        ("echo 'SELECT count(*) FROM players' | cargo xtask psql prod", "for scripts"),
    ]))]
    Psql(PsqlArgs),
    /// Run a command in a running container of one of an environment's services
    #[command(after_help = examples(&[
        ("cargo xtask exec prod web -- app migrations", "the migrations web's image knows"),
        ("cargo xtask exec dev db -- pg_isready", "ask the database"),
    ]))]
    Exec(ExecArgs),
    /// Stop an environment; its data is kept unless --volumes
    #[command(after_help = examples(&[
        ("cargo xtask down dev", "stop dev, keeping its data"),
        ("cargo xtask down dev --volumes", "stop dev and delete its database"),
    ]))]
    Down(DownArgs),
    /// Show an environment's containers
    #[command(after_help = examples(&[
        ("cargo xtask status dev", "as `docker compose ps` shows them"),
        ("cargo xtask status prod --json", "[{service, state, health, ports}], for scripts"),
    ]))]
    Status(StatusArgs),
    /// Show an environment's logs
    #[command(after_help = examples(&[
        ("cargo xtask logs dev", "every service's logs"),
        ("cargo xtask logs dev web --follow", "follow web's"),
    ]))]
    Logs(LogsArgs),
    /// Print an environment's merged Compose configuration
    #[command(after_help = examples(&[
        ("cargo xtask config prod", "the configuration prod deploys"),
    ]))]
    Config(EnvArgs),
    /// Make a swarm of SSH hosts for the environments deployed with --swarm
    #[command(subcommand)]
    Swarm(SwarmCommand),
    /// Wait until PostgreSQL, HTTP or TCP targets are ready (exit 3 at the deadline)
    #[command(after_help = examples(&[
        ("cargo xtask wait postgres://127.0.0.1:5432", "until PostgreSQL accepts connections"),
        ("cargo xtask wait http://127.0.0.1:8000/healthz --timeout 2m", "until it answers 200"),
    ]))]
    Wait(WaitArgs),
    /// Print the completion script of a shell: see the README for where to put it
    #[command(after_help = examples(&[
        ("cargo xtask completions bash > ~/.xtask.bash", "then `source ~/.xtask.bash` in ~/.bashrc"),
        ("cargo xtask completions zsh > ~/.zfunc/_xtask", "with ~/.zfunc in fpath"),
        ("cargo xtask completions fish > ~/.config/fish/completions/xtask.fish", "loaded when needed"),
    ]))]
    Completions(CompletionsArgs),
}

#[derive(Subcommand, Debug)]
pub enum SwarmCommand {
    /// Init a swarm on the manager and join the workers to it; labels each node with its SSH
    /// address (and the manager as the database's node). Run again, it changes nothing
    #[command(after_help = examples(&[
        ("cargo xtask swarm init ssh://root@203.0.113.7 ssh://root@203.0.113.8", "a manager and a worker"),
        ("cargo xtask deploy prod --swarm --host ssh://root@203.0.113.7", "then deploy to it"),
    ]))]
    Init(SwarmInitArgs),
}

/// The command line with the environments and services of the checkout at `root`.
pub fn command(root: &Path) -> clap::Command {
    let environments = environments(root);
    let services = stack::services(root);
    // In place (`mut_args`, not `mut_arg`, which would move the argument last and so
    // change the positions of the positional ones).
    let named = |sub: clap::Command| {
        sub.mut_args(|arg| match arg.get_id().as_str() {
            // Without compose/ to read, loading the stack says what is wrong.
            "env" if !environments.is_empty() => {
                arg.value_parser(Names::environments(&environments))
            }
            "service" => arg
                .value_parser(Names::services(&services))
                .hide_possible_values(true),
            _ => arg,
        })
    };
    // Two levels: `backup ENV`, and `backup list ENV`.
    Cli::command().mut_subcommands(|sub| named(sub).mut_subcommands(named))
}

/// Parses the process's arguments; on a usage error, prints it and exits 2. A missing
/// environment also gets the list of those that exist.
pub fn parse(root: &Path) -> Cli {
    let error = match command(root).try_get_matches() {
        Ok(matches) => return Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit()),
        Err(error) => error,
    };
    let missing_env =
        error.kind() == ErrorKind::MissingRequiredArgument && error.to_string().contains("<ENV>");
    if !missing_env {
        error.exit();
    }
    let _ = error.print();
    eprintln!("{}", environments_hint(&environments(root)));
    std::process::exit(error.exit_code());
}

fn environments(root: &Path) -> Vec<String> {
    stack::environments(&root.join(stack::COMPOSE_DIR)).unwrap_or_default()
}

/// `hint: the environments are dev, prod, staging (one per compose/compose.ENV.yaml)`.
pub fn environments_hint(environments: &[String]) -> String {
    output::hint_line(&format!(
        "the environments are {} (one per {}/compose.ENV.yaml)",
        environments.join(", "),
        stack::COMPOSE_DIR
    ))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        super::Cli::command().debug_assert();
    }

    fn root() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    #[test]
    fn verify_cli_with_the_checkouts_names() {
        let command = super::command(&root());
        command.clone().debug_assert();
        let deploy = command.find_subcommand("deploy").unwrap();
        let env = deploy
            .get_arguments()
            .find(|arg| arg.get_id() == "env")
            .unwrap();
        let names: Vec<String> = env
            .get_possible_values()
            .iter()
            .map(|value| value.get_name().to_owned())
            .collect();
        assert_eq!(names, ["dev", "prod", "staging"]);
        assert_eq!(crate::stack::services(&root()), ["db", "proxy", "web"]);
    }

    #[test]
    fn environments_are_checked_and_services_left_to_compose() {
        let parse = |args: &[&str]| super::command(&root()).try_get_matches_from(args);
        assert!(parse(&["xtask", "deploy", "dev"]).is_ok());
        let err = parse(&["xtask", "deploy", "qa"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string().contains("unknown environment `qa`"),
            "{err}"
        );
        assert!(parse(&["xtask", "logs", "dev", "adminer"]).is_ok());
    }

    #[test]
    fn global_flags_reach_every_command_and_exclude_each_other() {
        use clap::Parser;
        let cli = super::Cli::parse_from(["xtask", "deploy", "dev", "--quiet"]);
        assert_eq!(cli.verbosity(), crate::output::Verbosity::Quiet);
        let cli = super::Cli::parse_from(["xtask", "-v", "status", "dev"]);
        assert_eq!(cli.verbosity(), crate::output::Verbosity::Verbose);
        assert!(super::Cli::try_parse_from(["xtask", "-q", "-v", "status", "dev"]).is_err());
        let super::Command::Wait(args) =
            super::Cli::parse_from(["xtask", "--quiet", "wait", "tcp://h:1"]).command
        else {
            panic!("not wait")
        };
        assert!(args.quiet, "wait's own --quiet follows the global one");
    }

    #[test]
    fn durations_take_a_unit() {
        use std::time::Duration;
        assert_eq!(
            super::parse_duration("500ms"),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(super::parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(super::parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(super::parse_duration("60").is_err());
        assert!(super::parse_duration("s").is_err());
        assert!(super::parse_duration("1h").is_err());
        assert_eq!(
            super::parse_duration("18446744073709551615s"),
            Ok(Duration::from_secs(u64::MAX))
        );
        assert!(super::parse_duration("18446744073709551615m").is_err());
        assert!(super::parse_duration("99999999999999999999999s").is_err());
    }
}
