use std::{io, time::Duration};

use clap::Parser;

use super::{Failure, WaitOptions, backoff, describe, human};
use crate::cli::{Cli, Command};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

#[test]
fn pauses_grow_by_a_tenth_up_to_a_second() {
    let pauses: Vec<Duration> = backoff(ms(50)).take(3).collect();
    assert_eq!(pauses, [ms(50), ms(55), Duration::from_micros(60_500)]);
    let grown: Duration = backoff(ms(50)).take_while(|pause| *pause < ms(1000)).sum();
    assert!(
        (ms(9000)..ms(11000)).contains(&grown),
        "the cap came after {grown:?}"
    );
    assert_eq!(backoff(ms(50)).nth(100), Some(ms(1000)));
    let slow: Vec<Duration> = backoff(ms(3000)).take(2).collect();
    assert_eq!(slow, [ms(3000), ms(3000)]);
    // Never a busy loop, whatever the caller asks; never an overflow either.
    assert_eq!(backoff(Duration::ZERO).next(), Some(ms(1)));
    let huge: Vec<Duration> = backoff(Duration::MAX).take(3).collect();
    assert_eq!(huge, [Duration::MAX; 3]);
}

#[test]
fn the_command_line_defaults_are_the_library_defaults() {
    let cli = Cli::parse_from(["cargo xtask", "wait", "tcp://h:1"]);
    let Command::Wait(args) = cli.command else {
        panic!("not the wait command")
    };
    assert_eq!(args.options(), WaitOptions::default());
    let cli = Cli::parse_from(["cargo xtask", "wait", "tcp://h:1", "--quiet"]);
    let Command::Wait(args) = cli.command else {
        panic!("not the wait command")
    };
    assert!(!args.options().progress && !args.options().announce_ready);
}

#[test]
fn io_errors_read_like_our_messages() {
    let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    let os_style = io::Error::other("Connection refused (os error 111)");
    assert_eq!(describe(&os_style), "connection refused");
    assert_eq!(
        Failure::from(refused),
        Failure::Other("connection refused".into())
    );
    assert_eq!(
        Failure::from(io::Error::from(io::ErrorKind::WouldBlock)),
        Failure::Timeout
    );
    assert_eq!(human(ms(150)), "150 ms");
    assert_eq!(human(ms(2000)), "2.0 s");
}
