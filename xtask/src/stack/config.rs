//! `cargo xtask config ENV`: the merged configuration as Compose computes it, with every
//! secret value the xtask knows of hidden (dev's defaults among them). Compose needs no
//! daemon for it.

use xshell::Shell;

use super::{Model, secrets};
use crate::{
    cli::EnvArgs,
    docker::{self, Needs, run},
};

pub fn run(sh: &Shell, args: &EnvArgs) -> anyhow::Result<()> {
    let (stack, _) = args.stack(sh)?;
    docker::preflight(sh, &stack.engine, Needs::CLIENT)?;
    run::print_filtered(sh, &stack.compose(&["config"]), |merged| {
        let model = Model::parse(merged)?;
        let known = secrets::known(sh, &args.env, &model, None);
        Ok(secrets::redact(merged, &known))
    })
}
