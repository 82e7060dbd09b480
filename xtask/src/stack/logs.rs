//! `cargo xtask logs ENV [SERVICE] [--follow]`.

use xshell::Shell;

use crate::{
    cli::LogsArgs,
    docker::{self, Needs, run},
};

pub fn run(sh: &Shell, args: &LogsArgs) -> anyhow::Result<()> {
    let (stack, _) = args.env.stack(sh)?;
    let mut line = vec!["logs"];
    line.extend(args.follow.then_some("--follow"));
    line.extend(args.service.as_deref());
    docker::preflight(sh, &stack.engine, Needs::ENGINE)?;
    run::print(sh, &stack.compose(&line))
}
