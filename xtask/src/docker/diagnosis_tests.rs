use super::*;
use crate::hint;

#[test]
fn daemon_failures_say_what_fixes_them() {
    let denied = "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock";
    let err = daemon_problem(denied);
    assert!(
        hint::of(&err).unwrap().contains("join the docker group"),
        "{err:#}"
    );
    let down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?";
    let err = daemon_problem(down);
    assert!(
        err.to_string()
            .starts_with("the Docker daemon is not running (Cannot connect"),
        "{err}"
    );
    assert!(hint::of(&err).is_some());
    let err = daemon_problem("");
    assert_eq!(
        err.to_string(),
        "the Docker daemon does not answer: no answer"
    );
    assert_eq!(hint::of(&err), None);
}

#[test]
fn taken_ports_are_found_in_both_wordings() {
    let other_container = "Error response from daemon: driver failed programming external connectivity on \
        endpoint travial-dev-db-1 (0f2c): Bind for 127.0.0.1:5432 failed: port is already allocated";
    assert_eq!(taken_port(other_container), Some(5432));
    let other_program = "Error response from daemon: driver failed programming external connectivity on \
        endpoint travial-dev-web-1 (9a1b): Error starting userland proxy: listen tcp4 127.0.0.1:8000: bind: \
        address already in use";
    assert_eq!(taken_port(other_program), Some(8000));
    assert!(
        known_fix(other_program)
            .unwrap()
            .contains("port 8000: set DB_PORT")
    );
}

#[test]
fn a_missing_variable_is_named() {
    let compose = "error while interpolating services.db.environment.POSTGRES_PASSWORD: required variable \
        POSTGRES_PASSWORD is missing a value: POSTGRES_PASSWORD must be set for prod";
    assert_eq!(missing_variable(compose), Some("POSTGRES_PASSWORD"));
    assert!(
        known_fix(compose)
            .unwrap()
            .starts_with("set POSTGRES_PASSWORD in the environment")
    );
    assert_eq!(known_fix("no such service: cache"), None);
    let denied = "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock";
    assert!(known_fix(denied).unwrap().contains("docker group"));
}

/// What ssh and docker print, as they printed it here.
#[test]
fn ssh_problems_are_named_with_their_fix() {
    let problem =
        |stderr: &str| ssh_problem(stderr, "root@10.201.1.2", "ssh://root@10.201.1.2").unwrap();
    let changed = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
        @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
        Host key for 10.201.1.2 has changed and you have requested strict checking.\n\
        Host key verification failed.\n";
    let (what, fix) = problem(changed);
    assert!(
        what.starts_with("the SSH host key of root@10.201.1.2 has changed"),
        "{what}"
    );
    assert!(fix.contains("ssh-keygen -R"), "{fix}");
    let (what, _) = problem("Host key verification failed.\n");
    assert_eq!(
        what,
        "the SSH host key of root@10.201.1.2 is not known here"
    );
    let (what, fix) = problem("root@10.201.1.2: Permission denied (publickey).\n");
    assert_eq!(what, "root@10.201.1.2 refused the SSH login of root");
    assert!(fix.contains("ssh-copy-id root@10.201.1.2"), "{fix}");
    let (what, _) = problem("ssh: connect to host 10.201.1.2 port 22: Connection refused\n");
    assert_eq!(
        what,
        "cannot reach root@10.201.1.2 over SSH (connect to host 10.201.1.2 port 22: Connection refused)"
    );
    let (what, fix) = problem("bash: line 1: docker: command not found\n");
    assert_eq!(what, "docker is not installed on root@10.201.1.2");
    assert_eq!(
        fix,
        "`cargo xtask install-docker --host ssh://root@10.201.1.2`"
    );
    for denied in [
        "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock",
        // Docker 29.
        "permission denied while trying to connect to the docker API at unix:///var/run/docker.sock",
    ] {
        let (what, _) = problem(denied);
        assert_eq!(
            what,
            "root may not use the Docker daemon on root@10.201.1.2"
        );
    }
    let (what, _) =
        problem("Error processing tar file(exit status 1): write /x: no space left on device\n");
    assert_eq!(what, "the disk of root@10.201.1.2 is full");
    assert_eq!(ssh_problem("something else", "h", "ssh://h"), None);
    // Inside docker's own words, through `explain`.
    let docker = "error during connect: Get \"http://docker.example.com/v1.41/info\": command [ssh -o ConnectTimeout=30 -T -l root -- 10.201.1.2 docker system dial-stdio] has exited with exit status 255, make sure the URL is valid, and Docker 18.09 or later is installed on the remote host: stderr=Host key verification failed.\r\n";
    let unnamed = Command::docker(["info"]);
    let (reason, fix) = explain(docker, &unnamed).unwrap();
    assert_eq!(reason, "the SSH host key of the host is not known here");
    assert!(fix.is_some());
    // The host the command went to is named, in the problem and in its fix.
    let load = Command::docker(["--host", "ssh://deploy@203.0.113.7:2222", "load"]);
    let full = "Error processing tar file(exit status 1): write /x: no space left on device\n";
    let (reason, fix) = explain(full, &load).unwrap();
    assert_eq!(reason, "the disk of deploy@203.0.113.7:2222 is full");
    assert!(
        fix.unwrap()
            .contains("docker --host ssh://deploy@203.0.113.7:2222 system prune")
    );
}

#[test]
fn registry_refusals_say_what_to_do() {
    let push = Command::docker(["push", "r/a"]);
    let explained = |stderr: &str| explain(stderr, &push).unwrap();
    let (reason, fix) =
        explained("The push refers to repository [r/a]\nno basic auth credentials\n");
    assert_eq!(reason, "unauthorized (no basic auth credentials)");
    assert!(fix.unwrap().starts_with("set DOCKER_USERNAME"));
    let (reason, _) = explained("name unknown: repository name not known to registry");
    assert!(reason.contains("no such repository"), "{reason}");
    let (reason, fix) = explained(
        "Get \"http://127.0.0.1:5999/v2/\": dial tcp 127.0.0.1:5999: connect: connection refused",
    );
    assert!(
        reason.contains("cannot be reached") && fix.is_some(),
        "{reason}"
    );
    assert_eq!(
        explained("something else\n"),
        ("something else".to_owned(), None)
    );
    assert_eq!(explain("\n", &push), None);
}
