//! `cargo xtask logs ENV [SERVICE] [--follow]`.

use xshell::Shell;

use super::{Target, open};
use crate::{
    cli::LogsArgs,
    docker::{Needs, run},
    swarm::commands::{self, Follow},
};

pub fn run(sh: &Shell, args: &LogsArgs) -> anyhow::Result<()> {
    let (stack, model) = open(sh, &args.env, Needs::ENGINE)?;
    let follow = match args.follow {
        true => Follow::Yes,
        false => Follow::No,
    };
    match &stack.target {
        Target::Compose { .. } => {
            let mut line = vec!["logs"];
            line.extend((follow == Follow::Yes).then_some("--follow"));
            line.extend(args.service.as_deref());
            run::print(sh, &stack.compose(&line))
        }
        Target::Swarm { manager } => {
            commands::logs(sh, &stack, manager, &model, args.service.as_deref(), follow)
        }
    }
}
