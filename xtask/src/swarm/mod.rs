//! Swarm: `cargo xtask swarm init` makes a cluster of SSH hosts; an environment whose
//! target is a swarm (`--swarm`, or `x-xtask: orchestrator: swarm`) is deployed, migrated,
//! rolled back, looked at and stopped through its manager, with Swarm's own stack deploy,
//! services, secrets, configs and rolling updates. What the swarm has is read first
//! (`facts`), then the plans are pure (`plan`).

pub mod commands;
mod converge;
mod facts;
pub mod init;
mod join;
pub mod nodes;
mod objects;
mod plan;
pub mod stackfile;
mod tasks;

pub use facts::{DryRun, Facts};
pub use plan::{Plan, Volumes, down};

use crate::stack::Stack;

/// A service of the stack as Swarm names it: `travial-prod_web`.
pub fn service_name(stack: &Stack, service: &str) -> String {
    format!("{}_{service}", stack.project)
}
