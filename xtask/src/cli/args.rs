//! The arguments of each command. Logic that only reads flags is a method here.

use std::time::Duration;

use std::path::PathBuf;

use clap::{Args, Subcommand};

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
    /// Apply the image's new migrations without a backup first
    #[arg(long)]
    pub no_backup: bool,
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
    /// Apply the image's new migrations without a backup first
    #[arg(long)]
    pub no_backup: bool,
    /// Remove a deploy lock left by a command that was stopped without releasing it
    #[arg(long)]
    pub break_lock: bool,
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
    /// Also restore the backup taken before the deploy that applied the migrations the
    /// image does not know: the data as it was then (asks for the environment's name)
    #[arg(long, conflicts_with = "force")]
    pub restore: bool,
    /// Answer the question of --restore: yes (for scripts)
    #[arg(long, short, requires = "restore")]
    pub yes: bool,
    #[command(flatten)]
    pub dir: DirArgs,
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
    /// Also remove the volumes: the database's data is lost (asks for the environment's
    /// name, but for dev)
    #[arg(long)]
    pub volumes: bool,
    /// Answer the question of --volumes: yes (for scripts)
    #[arg(long, short, requires = "volumes")]
    pub yes: bool,
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

#[derive(Args, Debug)]
pub struct DirArgs {
    /// Where the backups are kept here, relative to the project root (default: ENV in the
    /// directory BACKUP_DIR names, else backups/ENV)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub action: Option<BackupCommand>,
    /// The environment: one per compose/compose.ENV.yaml
    #[arg(required = true)]
    pub env: Option<String>,
    /// The Docker engine to act on, over SSH (default: the environment's `x-xtask: host`,
    /// else Docker's own settings: DOCKER_HOST, the docker context)
    #[arg(long, value_name = "ssh://[USER@]HOST[:PORT]")]
    pub host: Option<String>,
    /// The environment is a swarm stack; --host names a manager (default: the environment's
    /// `x-xtask: orchestrator: swarm`)
    #[arg(long)]
    pub swarm: bool,
    #[command(flatten)]
    pub dir: DirArgs,
    /// Then keep only the N newest backups here, the oldest removed
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
}

impl BackupArgs {
    /// The environment as every command names it (clap has required it).
    pub fn env_args(&self) -> EnvArgs {
        EnvArgs {
            env: self.env.clone().unwrap_or_default(),
            host: self.host.clone(),
            swarm: self.swarm,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// List the backups kept here, and those the scheduled service keeps on the host
    List(BackupListArgs),
    /// Restore a backup into a throwaway server (no network) and compare its rows with its
    /// manifest
    Verify(VerifyArgs),
    /// Copy here the backups the scheduled service took on the host, each restored once on
    /// the way in
    Pull(PullArgs),
}

#[derive(Args, Debug)]
pub struct BackupListArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    #[command(flatten)]
    pub dir: DirArgs,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// The backup's ID (default: the newest)
    pub id: Option<String>,
    #[command(flatten)]
    pub dir: DirArgs,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Only this backup (default: every one not here yet)
    pub id: Option<String>,
    #[command(flatten)]
    pub dir: DirArgs,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// The backup: its ID here, or a dump file (ID.dump, its manifest ID.json beside it);
    /// default: the newest, but for those a restore took of the data it replaced
    #[arg(value_name = "ID|FILE")]
    pub backup: Option<String>,
    #[command(flatten)]
    pub secrets: SecretsArgs,
    #[command(flatten)]
    pub dir: DirArgs,
    /// Replace the data without asking for the environment's name (for scripts)
    #[arg(long, short)]
    pub yes: bool,
    /// Restore even a dump whose migrations are ahead of the image that serves
    #[arg(long)]
    pub force: bool,
    /// Remove a deploy lock left by a command that was stopped without releasing it
    #[arg(long)]
    pub break_lock: bool,
}

#[derive(Args, Debug)]
pub struct MaintenanceArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// on: every request but the health checks gets the 503 maintenance page; off: served
    #[arg(value_enum)]
    pub mode: crate::database::maintenance::Mode,
    /// Print the commands without running them
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct PsqlArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// More arguments for psql, after `--` (e.g. `-- -c 'SELECT 1'`)
    #[arg(last = true, value_name = "PSQL_ARGS")]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// The service whose container runs the command
    pub service: String,
    /// The command, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}
