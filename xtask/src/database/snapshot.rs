//! One moment of the database, held open: a psql session in a repeatable-read transaction
//! whose snapshot it exports, so that what the manifest counts (each table's rows, the
//! migrations applied) and what `pg_dump --snapshot` writes are the same data, however
//! much a client writes meanwhile.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    process::{ChildStdin, ChildStdout},
};

use anyhow::{Context, bail};
use xshell::Shell;

use super::Database;
use crate::docker::run::Piped;

/// What psql echoes after each answer: where it ends.
const END: &str = "travial-xtask-end-of-answer";

/// Each table's rows, by `schema.table`, in one statement (so in one snapshot).
const COUNT_ROWS: &str = "SELECT n.nspname || '.' || c.relname, \
    (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text \
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
    AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1;";

const MIGRATIONS: &str = "SELECT version FROM refinery_schema_history ORDER BY version;";

pub struct Snapshot {
    session: Piped,
    stdin: ChildStdin,
    answers: BufReader<ChildStdout>,
    /// What `pg_dump --snapshot` takes.
    pub id: String,
}

/// What the snapshot holds, for the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    pub tables: BTreeMap<String, u64>,
    pub migrations: Vec<i64>,
    pub server_version: String,
}

impl Snapshot {
    pub fn open(sh: &Shell, db: &Database) -> anyhow::Result<Snapshot> {
        let mut session = Piped::read(sh, &db.psql(None, &[]))?;
        let stdin = session.stdin.take().context("psql takes no input")?;
        let answers = BufReader::new(session.stdout.take().context("psql has no output")?);
        let mut snapshot = Snapshot {
            session,
            stdin,
            answers,
            id: String::new(),
        };
        let id = snapshot.ask(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\nSELECT pg_export_snapshot();",
        )?;
        snapshot.id = id.into_iter().next().context("psql exported no snapshot")?;
        Ok(snapshot)
    }

    /// Each table's rows, the migrations applied, the server's version.
    pub fn contents(&mut self) -> anyhow::Result<Contents> {
        let tables = parse_counts(&self.ask(COUNT_ROWS)?)?;
        let migrations = match tables.contains_key("public.refinery_schema_history") {
            true => self
                .ask(MIGRATIONS)?
                .iter()
                .map(|line| line.trim().parse::<i64>())
                .collect::<Result<_, _>>()
                .context("unexpected migration versions")?,
            false => Vec::new(),
        };
        let server_version = self
            .ask("SHOW server_version;")?
            .into_iter()
            .next()
            .unwrap_or_default();
        Ok(Contents {
            tables,
            migrations,
            server_version,
        })
    }

    /// The snapshot released: the transaction ends, the session with it.
    pub fn close(mut self) -> anyhow::Result<()> {
        let _ = self.stdin.write_all(b"COMMIT;\n\\q\n");
        drop(self.stdin);
        drop(self.answers);
        self.session.wait()
    }

    /// The lines psql answers `sql` with.
    fn ask(&mut self, sql: &str) -> anyhow::Result<Vec<String>> {
        let sent = writeln!(self.stdin, "{sql}\n\\echo {END}").and_then(|()| self.stdin.flush());
        if sent.is_err() {
            bail!("psql stopped answering");
        }
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = self
                .answers
                .read_line(&mut line)
                .context("psql stopped answering")?;
            if read == 0 {
                bail!("psql ended before answering `{sql}`");
            }
            let line = line.trim_end_matches('\n');
            if line == END {
                return Ok(lines);
            }
            lines.push(line.to_owned());
        }
    }
}

/// `schema.table|count` lines.
fn parse_counts(lines: &[String]) -> anyhow::Result<BTreeMap<String, u64>> {
    lines
        .iter()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (table, count) = line
                .rsplit_once('|')
                .with_context(|| format!("unexpected row count `{line}`"))?;
            let count = count
                .parse::<u64>()
                .with_context(|| format!("unexpected row count `{line}`"))?;
            Ok((table.to_owned(), count))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_by_table() {
        let lines = ["public.players|3", "public.scores|10", ""].map(String::from);
        let counts = super::parse_counts(&lines).unwrap();
        assert_eq!(counts["public.players"], 3);
        assert_eq!(counts.len(), 2);
        assert!(super::parse_counts(&["x".to_owned()]).is_err());
    }
}
