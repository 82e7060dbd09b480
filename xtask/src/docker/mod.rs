//! Everything that runs docker, and only this: the command lines as data (`Command`), the
//! engine they go to (`Engine`), running them (`run`), the checks before any work
//! (`preflight`), and what docker's complaints mean (`diagnosis`).

mod command;
pub mod diagnosis;
mod engine;
pub mod images;
pub mod preflight;
pub mod quote;
pub mod run;
pub mod ship;
pub mod tar;
pub mod tunnel;

pub use command::{Command, Secret};
pub use engine::{Engine, SshHost};
pub use preflight::{Needs, preflight};
