//! Which Docker engine a command talks to, decided in one place: every docker command line
//! is built here, so a plan never needs to know where it will run.

use std::fmt;

use super::Command;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// The engine this machine's docker client talks to, as Docker defines it: DOCKER_HOST,
    /// DOCKER_CONTEXT, the current context, else the local socket.
    Local,
}

impl Engine {
    /// `docker ARGS…` on this engine.
    pub fn docker<S: Into<String>>(&self, args: impl IntoIterator<Item = S>) -> Command {
        match self {
            Engine::Local => Command::docker(args),
        }
    }
}

/// How step lines and errors name it.
impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Engine::Local => f.write_str("this machine"),
        }
    }
}
