//! The xtask's integration tests, in one binary as cargo's own suite is: a module per area,
//! the support code (`e2e`: the engine's settings, sandboxes, remote hosts, a load client)
//! compiled once. The end-to-end modules take `e2e::exclusive()`: one deploy at a time on
//! two cores; the others run beside them.

mod e2e;

mod backup;
mod cli;
mod compose_v5;
mod deploy;
mod hardening;
mod install_docker;
mod push;
mod remote;
mod safety;
mod secrets;
mod ssh;
mod swarm;
mod wait;
mod zero_downtime;
