//! `cargo xtask history ENV [--json]`: the recent deploys and rollbacks, newest first, as
//! the environment's engine records them (so every machine that deploys sees the same).

use xshell::Shell;

use super::state;
use crate::{cli::HistoryArgs, docker::Needs, output};

pub fn run(sh: &Shell, args: &HistoryArgs) -> anyhow::Result<()> {
    let (stack, _) = super::open(sh, &args.env, Needs::ENGINE)?;
    let mut records = state::history(sh, &stack)?;
    records.reverse();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(());
    }
    if records.is_empty() {
        println!("{} was never deployed{}", args.env.env, stack.target.on());
        return Ok(());
    }
    let rows: Vec<[String; 5]> = records
        .iter()
        .map(|record| {
            let mut result = match &record.container {
                Some(container) if record.succeeded() => format!("{} ({container})", record.result),
                _ => record.result.clone(),
            };
            if let Some(backup) = &record.backup {
                result.push_str(&format!(", backup {backup}"));
            }
            [
                record.at.clone(),
                record.by.clone(),
                record.command.clone(),
                record.image.clone(),
                result,
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["WHEN", "WHO", "COMMAND", "IMAGE", "RESULT"], &rows)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_align() {
        let rows = [[
            "2026-11-25T10:00:00Z",
            "ann@laptop",
            "deploy",
            "app:1",
            "succeeded (web-1)",
        ]
        .map(String::from)];
        assert_eq!(
            crate::output::table(&["WHEN", "WHO", "COMMAND", "IMAGE", "RESULT"], &rows),
            "WHEN                  WHO         COMMAND  IMAGE  RESULT\n\
             2026-11-25T10:00:00Z  ann@laptop  deploy   app:1  succeeded (web-1)\n"
        );
    }
}
