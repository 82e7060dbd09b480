//! `cargo xtask test`: the one test command, the same on a laptop and in CI.

use xshell::{Shell, cmd};

use crate::{cli::TestArgs, output};

pub fn run(sh: &Shell, args: &TestArgs) -> anyhow::Result<()> {
    let steps = [
        cmd!(sh, "cargo fmt --all --check"),
        cmd!(
            sh,
            "cargo clippy --workspace --all-targets --locked -- -D warnings"
        ),
        cmd!(sh, "cargo test --workspace --locked --no-fail-fast"),
    ];
    for step in steps {
        if args.dry_run {
            println!("{step}");
        } else if output::quiet() {
            // Cargo's own output is the result; only the echo goes.
            step.quiet().run()?;
        } else {
            step.run()?;
        }
    }
    Ok(())
}
