use super::*;

#[test]
fn the_reason_is_the_last_line_as_a_terminal_shows_it() {
    let stderr = " Container x  Starting\n\x1b[31mError\x1b[0m response from daemon: port is already allocated\n\n";
    assert_eq!(
        last_line(stderr).as_deref(),
        Some("Error response from daemon: port is already allocated")
    );
    assert_eq!(
        last_line("waiting 1\rwaiting 2\r done\n").as_deref(),
        Some("done")
    );
    assert_eq!(last_line("\n  \n"), None);
}

#[test]
fn quiet_failures_show_the_last_lines() {
    assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc\n");
    assert_eq!(last_lines("", 2), "");
}

#[test]
fn a_command_past_its_deadline_is_stopped() {
    let sleep = Command::new("sleep", ["5"]);
    let started = Instant::now();
    let output = probe_within(&Shell::new().unwrap(), &sleep, Duration::from_millis(200)).unwrap();
    assert!(output.is_none());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let quick = Command::new("true", Vec::<String>::new());
    let output = probe_within(&Shell::new().unwrap(), &quick, Duration::from_secs(5)).unwrap();
    assert!(output.unwrap().status.success());
}

#[test]
fn the_secret_goes_to_stdin() {
    let cat =
        Command::new("cat", Vec::<String>::new()).stdin(super::super::Secret::new("X", "s3cret"));
    let output = probe(&Shell::new().unwrap(), &cat).unwrap();
    assert_eq!(output.stdout, b"s3cret");
}
