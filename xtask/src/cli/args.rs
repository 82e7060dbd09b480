//! The arguments of each command. Logic that only reads flags is a method here.

use std::time::Duration;

use clap::Args;

use super::parse_duration;

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
    /// Prepare this server over SSH instead of this machine (as root, or through sudo when
    /// the login is another user, who then joins the docker group)
    #[arg(long, value_name = "ssh://[USER@]HOST[:PORT]")]
    pub host: Option<String>,
    /// Print every file and command without touching anything
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct EnvArgs {
    /// The environment: one per compose/compose.ENV.yaml
    pub env: String,
    /// The Docker engine to act on, over SSH (default: the environment's `x-xtask: host`,
    /// else Docker's own settings: DOCKER_HOST, the docker context)
    #[arg(long, value_name = "ssh://[USER@]HOST[:PORT]")]
    pub host: Option<String>,
    /// The environment is a swarm stack; --host names a manager (default: the environment's
    /// `x-xtask: orchestrator: swarm`)
    #[arg(long)]
    pub swarm: bool,
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
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// Send the image through this registry (HOST[:PORT]) instead of over SSH (default:
    /// the environment's `x-xtask: registry`)
    #[arg(long, value_name = "HOST")]
    pub registry: Option<String>,
    /// Deploy an image built from uncommitted changes (tagged `-dirty`) to another host
    #[arg(long)]
    pub allow_dirty: bool,
    /// Remove a deploy lock left by a command that was stopped without releasing it
    #[arg(long)]
    pub break_lock: bool,
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
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// How long the database may take to become ready (e.g. 60s, 2m)
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the commands without running them
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// The tag to go back to (default: the image deployed before the current one)
    #[arg(long, value_name = "TAG")]
    pub to: Option<String>,
    /// Go back even to an image that knows fewer migrations than the database has applied
    /// (they are never reverted)
    #[arg(long)]
    pub force: bool,
    /// Remove a deploy lock left by a command that was stopped without releasing it
    #[arg(long)]
    pub break_lock: bool,
    /// How long the image may take to become ready (e.g. 60s, 2m)
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the commands without running them
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Print a JSON array of {at, by, command, image, result, container}
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SwarmInitArgs {
    /// The manager: ssh://[USER@]HOST[:PORT]
    #[arg(value_name = "MANAGER")]
    pub manager: String,
    /// The workers, each ssh://[USER@]HOST[:PORT]
    #[arg(value_name = "WORKER")]
    pub workers: Vec<String>,
    /// Print the commands without running them
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct SecretsArgs {
    /// The environment's secrets, as NAME=value lines (default: .secrets/ENV.env, if it
    /// exists); the environment's own variables win
    #[arg(long = "secrets", value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct DownArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Also remove the volumes: the database's data is lost
    #[arg(long)]
    pub volumes: bool,
    /// Remove a deploy lock left by a command that was stopped without releasing it
    #[arg(long)]
    pub break_lock: bool,
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
