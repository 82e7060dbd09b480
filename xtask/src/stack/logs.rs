//! `cargo xtask logs ENV [SERVICE] [--follow]`.

use xshell::Shell;

use crate::{
    cli::LogsArgs,
    docker::{Needs, run},
};

pub fn run(sh: &Shell, args: &LogsArgs) -> anyhow::Result<()> {
    let (stack, model) = args.env.stack(sh, Needs::ENGINE)?;
    if stack.swarm {
        return crate::swarm::commands::logs(
            sh,
            &stack,
            &model,
            args.service.as_deref(),
            args.follow,
        );
    }
    let mut line = vec!["logs"];
    line.extend(args.follow.then_some("--follow"));
    line.extend(args.service.as_deref());
    run::print(sh, &stack.compose(&line))
}
