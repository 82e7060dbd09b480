//! `cargo xtask config ENV`: the merged configuration exactly as Compose computes it.
//! Compose needs no daemon for it.

use xshell::Shell;

use crate::{
    cli::EnvArgs,
    docker::{self, Needs, run},
};

pub fn run(sh: &Shell, args: &EnvArgs) -> anyhow::Result<()> {
    let stack = args.stack(sh)?;
    docker::preflight(sh, &stack.engine, Needs::CLIENT)?;
    run::print(sh, &stack.compose(&["config"]))
}
