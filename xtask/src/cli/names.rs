//! Names known only at run time (environments, services) as clap value parsers, the
//! `Examples:` sections of `--help`, and durations.

use std::{ffi::OsStr, time::Duration};

use clap::{
    Arg,
    builder::{PossibleValue, TypedValueParser},
    error::ErrorKind,
};

/// Names known at run time, offered by `--help` and the completion scripts; environments
/// are also checked (exit 2, a usage error), while a
/// service an override adds is left for Compose to judge.
#[derive(Clone, Debug)]
pub struct Names {
    names: Vec<String>,
    check: bool,
}

impl Names {
    pub fn environments(names: &[String]) -> Names {
        Names {
            names: names.to_vec(),
            check: true,
        }
    }

    pub fn services(names: &[String]) -> Names {
        Names {
            names: names.to_vec(),
            check: false,
        }
    }
}

impl TypedValueParser for Names {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _: Option<&Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        let Some(text) = value.to_str() else {
            return Err(clap::Error::new(ErrorKind::InvalidUtf8).with_cmd(cmd));
        };
        if self.check && !self.names.iter().any(|name| name == text) {
            let message = format!(
                "unknown environment `{text}`\n{}\n",
                super::environments_hint(&self.names)
            );
            return Err(clap::Error::raw(ErrorKind::InvalidValue, message));
        }
        Ok(text.to_owned())
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.names.iter().map(PossibleValue::new)))
    }
}

/// The `Examples:` section of a `--help`: pasteable lines, each with its comment aligned.
pub fn examples(lines: &[(&str, &str)]) -> String {
    let header = clap::builder::styling::Style::new().bold().underline();
    let width = lines
        .iter()
        .map(|(command, _)| command.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = format!("{}Examples:{}\n", header.render(), header.render_reset());
    for (command, comment) in lines {
        text.push_str(&format!("  {command:width$}  # {comment}\n"));
    }
    text
}

/// `500ms`, `60s`, `2m`: a whole number and a unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit: write e.g. 500ms, 60s or 2m"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a whole number of at most 20 digits"))?;
    let seconds = |factor: u64| {
        number
            .checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{text}` is longer than any clock can count"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => seconds(1),
        "m" => seconds(60),
        _ => Err(format!("`{unit}` is not a unit: use ms, s or m")),
    }
}
