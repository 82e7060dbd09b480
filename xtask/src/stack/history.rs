//! `cargo xtask history ENV [--json]`: the recent deploys and rollbacks, newest first, as
//! the environment's engine records them (so every machine that deploys sees the same).

use xshell::Shell;

use super::state;
use crate::{cli::HistoryArgs, docker::Needs};

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
            let result = match &record.container {
                Some(container) if record.succeeded() => format!("{} ({container})", record.result),
                _ => record.result.clone(),
            };
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
        table(&["WHEN", "WHO", "COMMAND", "IMAGE", "RESULT"], &rows)
    );
    Ok(())
}

/// Columns aligned on their widest cell; the last one as it is.
fn table(header: &[&str; 5], rows: &[[String; 5]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut line = String::new();
        for (index, cell) in cells.iter().enumerate() {
            if index == cells.len() - 1 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:width$}  ", width = widths[index]));
            }
        }
        line.trim_end().to_owned() + "\n"
    };
    let mut text = line(*header);
    for row in rows {
        text.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    text
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
            super::table(&["WHEN", "WHO", "COMMAND", "IMAGE", "RESULT"], &rows),
            "WHEN                  WHO         COMMAND  IMAGE  RESULT\n\
             2026-11-25T10:00:00Z  ann@laptop  deploy   app:1  succeeded (web-1)\n"
        );
    }
}
