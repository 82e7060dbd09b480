//! Swarm: `cargo xtask swarm init` makes a cluster of SSH hosts; `deploy`, `rollback`,
//! `status`, `logs`, `down` and `history` of an environment with `--swarm` (or `x-xtask:
//! orchestrator: swarm`) act on it through its manager, with Swarm's own stack deploy,
//! services, secrets, configs and rolling updates.

pub mod commands;
pub mod deploy;
pub mod init;
mod join;
pub mod nodes;
mod objects;
pub mod stackfile;
mod tasks;
