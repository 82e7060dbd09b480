//! `cargo xtask test`: the one test command, the same on a laptop and in CI.

use xshell::Shell;

use crate::{
    cli::TestArgs,
    docker::{Command, run},
};

pub fn run(sh: &Shell, args: &TestArgs) -> anyhow::Result<()> {
    let cargo = |args: &[&str]| Command::new("cargo", args.iter().copied());
    let steps = [
        cargo(&["fmt", "--all", "--check"]),
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
        cargo(&["test", "--workspace", "--locked", "--no-fail-fast"]),
    ];
    for step in steps {
        match args.dry_run {
            true => println!("{step}"),
            // Cargo's own output is the result.
            false => run::print(sh, &step)?,
        }
    }
    Ok(())
}
