//! The command line, as clap definitions, completed at run time with what only the checkout
//! knows: the environments under compose/ and the services of compose/compose.yaml, so
//! that `--help`, the errors and the completion scripts name them.

use std::{ffi::OsStr, path::Path, time::Duration};

use clap::{
    Arg, Args, CommandFactory, FromArgMatches, Parser, Subcommand,
    builder::{PossibleValue, TypedValueParser},
    error::ErrorKind,
};

use crate::{compose, output};

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
    /// Install Docker Engine and Compose v2 on Ubuntu or Debian, and join the docker group
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

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Print the commands without running them
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct InstallDockerArgs {
    /// Where the packages come from
    #[arg(long, value_enum, default_value_t = crate::install::Source::Official)]
    pub source: crate::install::Source,
    /// A mirror of download.docker.com (the URL above linux/ubuntu and linux/debian), or
    /// Aliyun or AzureChinaCloud, as get.docker.com offers
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Trust the key with this fingerprint instead of Docker's: for a mirror that re-signs
    /// Docker's packages with its own key
    #[arg(long, value_name = "FPR")]
    pub key_fingerprint: Option<crate::install::Fingerprint>,
    /// Remove conflicting packages without asking
    #[arg(long, short)]
    pub yes: bool,
    /// Go through the installation even if Docker already works
    #[arg(long)]
    pub force: bool,
    /// Add this user to the docker group (default: the user who ran sudo)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Add no user to the docker group
    #[arg(long, conflicts_with = "user")]
    pub no_group: bool,
    /// Print every file and command without touching anything
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct EnvArgs {
    /// The environment: one per compose/compose.ENV.yaml
    pub env: String,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Print a JSON array of {service, state, health, ports} instead of the table
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete in
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// An extra tag, besides the version's, the commit's and `latest` (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Build every layer again instead of using the cache
    #[arg(long)]
    pub no_cache: bool,
    /// Print the commands without running them
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push to this registry (HOST[:PORT]) instead of Docker Hub
    #[arg(long, value_name = "HOST")]
    pub registry: Option<String>,
    /// The repository to push to (default: APP_IMAGE, else compose.yaml's image name)
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub repo: Option<String>,
    /// Push an image built from uncommitted changes (tagged `-dirty`)
    #[arg(long)]
    pub allow_dirty: bool,
    /// Print the commands without running them
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Use the images as they are instead of building
    #[arg(long)]
    pub no_build: bool,
    /// How long the database and web may take to become ready (e.g. 60s, 2m)
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the commands without running them
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// How long the database may take to become ready (e.g. 60s, 2m)
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the commands without running them
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct DownArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Also remove the volumes: the database's data is lost
    #[arg(long)]
    pub volumes: bool,
    /// Print the commands without running them
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Only this service's logs (a service of compose/compose.yaml)
    pub service: Option<String>,
    /// Keep printing new lines
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    /// postgres://[user@]host[:port][/db], http://host[:port]/path, tcp://host:port
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// How long all targets together may take (e.g. 60s, 2m)
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// The first pause between attempts; it grows by a tenth up to 1s
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// The most one attempt may take
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub attempt_timeout: Duration,
    /// Print nothing unless the deadline passes
    // The global `--quiet` under its id: clap gives `wait` this one instead, set by either.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The command line with the environments and services of the checkout at `root`.
pub fn command(root: &Path) -> clap::Command {
    let environments = compose::environments(&root.join(compose::COMPOSE_DIR)).unwrap_or_default();
    let services = services(root);
    Cli::command().mut_subcommands(|sub| {
        let has = |id: &str| sub.get_arguments().any(|arg| arg.get_id() == id);
        let (takes_env, takes_service) = (has("env"), has("service"));
        let mut sub = sub;
        // Without compose/ to read, `Stack::load` says what is wrong.
        if takes_env && !environments.is_empty() {
            sub = sub.mut_arg("env", |arg| {
                arg.value_parser(Names::environments(&environments))
            });
        }
        if takes_service {
            sub = sub.mut_arg("service", |arg| {
                arg.value_parser(Names::services(&services))
                    .hide_possible_values(true)
            });
        }
        sub
    })
}

/// Parses the process's arguments; on a usage error, prints it and exits 2.
pub fn parse(root: &Path) -> Cli {
    let matches = command(root).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}

/// The top-level `services` of compose/compose.yaml: those every environment has.
fn services(root: &Path) -> Vec<String> {
    let path = root.join(compose::COMPOSE_DIR).join("compose.yaml");
    let yaml = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_yaml::from_str::<serde_yaml::Value>(&text).ok());
    let services = yaml
        .as_ref()
        .and_then(|yaml| yaml.get("services")?.as_mapping());
    services
        .map(|services| {
            services
                .keys()
                .filter_map(|key| key.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Names known at run time, offered by `--help` and the completion scripts; environments
/// are also checked, with the words of `Stack::load` (exit 2, a usage error), while a
/// service an override adds is left for Compose to judge.
#[derive(Clone, Debug)]
struct Names {
    names: Vec<String>,
    check: bool,
}

impl Names {
    fn environments(names: &[String]) -> Names {
        Names {
            names: names.to_vec(),
            check: true,
        }
    }

    fn services(names: &[String]) -> Names {
        Names {
            names: names.to_vec(),
            check: false,
        }
    }
}

impl TypedValueParser for Names {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _: Option<&Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        let Some(text) = value.to_str() else {
            return Err(clap::Error::new(ErrorKind::InvalidUtf8).with_cmd(cmd));
        };
        if self.check && !self.names.iter().any(|name| name == text) {
            let message = format!(
                "unknown environment `{text}`\n{}\n",
                output::hint_line(&format!(
                    "the environments are {} (one per {}/compose.ENV.yaml)",
                    self.names.join(", "),
                    compose::COMPOSE_DIR
                ))
            );
            return Err(clap::Error::raw(ErrorKind::InvalidValue, message));
        }
        Ok(text.to_owned())
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.names.iter().map(PossibleValue::new)))
    }
}

/// The `Examples:` section of a `--help`: pasteable lines, each with its comment aligned.
fn examples(lines: &[(&str, &str)]) -> String {
    let header = clap::builder::styling::Style::new().bold().underline();
    let width = lines
        .iter()
        .map(|(command, _)| command.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = format!("{}Examples:{}\n", header.render(), header.render_reset());
    for (command, comment) in lines {
        text.push_str(&format!("  {command:width$}  # {comment}\n"));
    }
    text
}

/// `500ms`, `60s`, `2m`: a whole number and a unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit: write e.g. 500ms, 60s or 2m"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a whole number"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number * 60)),
        _ => Err(format!("`{unit}` is not a unit: use ms, s or m")),
    }
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
        assert_eq!(super::services(&root()), ["db", "web"]);
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
    }
}
