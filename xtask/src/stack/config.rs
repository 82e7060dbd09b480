//! `cargo xtask config ENV`: the merged configuration as Compose computes it, with every
//! secret value the xtask knows of hidden (dev's defaults among them). Compose needs no
//! daemon for it, so no engine is asked: `--host` and `--swarm` are taken (and `--host`
//! checked) so that one set of flags works on every command.

use xshell::Shell;

use super::{Model, Stack, secrets};
use crate::{
    cli::EnvArgs,
    docker::{self, Engine, Needs, SshHost, run},
};

pub fn run(sh: &Shell, args: &EnvArgs) -> anyhow::Result<()> {
    if let Some(host) = &args.host {
        SshHost::parse(host)?;
    }
    let stack = Stack::load(&sh.current_dir(), &args.env)?;
    docker::preflight(sh, &Engine::Local, Needs::CLIENT)?;
    run::print_filtered(sh, &stack.compose(&["config"]), |merged| {
        let model = Model::parse(merged)?;
        let known = secrets::known(sh, &args.env, &model, None);
        Ok(secrets::redact(merged, &known))
    })
}
