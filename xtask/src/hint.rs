//! Errors that know their fix. `Hint::new("docker is not installed", "run `cargo xtask
//! install-docker`")` reads as the error's message in the `error:` line, wherever it sits in
//! the chain of causes, and `main` prints its fix on a `hint:` line of its own.

use std::{error::Error, fmt};

#[derive(Debug)]
pub struct Hint {
    message: String,
    fix: String,
}

impl Hint {
    pub fn new(message: impl Into<String>, fix: impl Into<String>) -> Hint {
        Hint {
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// The error with a hint when there is one, a plain error otherwise.
    pub fn maybe(message: impl Into<String>, fix: Option<String>) -> anyhow::Error {
        match fix {
            Some(fix) => Hint::new(message, fix).into(),
            None => anyhow::Error::msg(message.into()),
        }
    }

    pub fn fix(&self) -> &str {
        &self.fix
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for Hint {}

/// The fix of the outermost `Hint` among the error and its causes.
pub fn of(err: &anyhow::Error) -> Option<&str> {
    let hint = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<Hint>())
        .or_else(|| err.downcast_ref::<Hint>())?;
    Some(hint.fix())
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn a_hint_is_found_below_any_context() {
        let err: anyhow::Error = Hint::new(
            "docker is not installed",
            "run `cargo xtask install-docker`",
        )
        .into();
        let err = err.context("cannot deploy dev");
        assert_eq!(of(&err), Some("run `cargo xtask install-docker`"));
        assert_eq!(
            format!("{err:#}"),
            "cannot deploy dev: docker is not installed"
        );
        assert_eq!(of(&anyhow::anyhow!("no fix known")), None);
        assert!(of(&Hint::maybe("plain", None)).is_none());
    }
}
