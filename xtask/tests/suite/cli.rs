//! The command line as users meet it: `--help`, the error lines of the common mistakes
//! (compared with the committed files in tests/snapshots/, so a change of wording is a
//! reviewed change: `UPDATE_SNAPSHOTS=1 cargo test -p xtask --test suite cli::` rewrites them), the
//! completion scripts, driven in a real bash, and `--quiet`/`--verbose`.
//!
//! No Docker daemon is needed here; the docker client is, for the daemon-down case.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicUsize, Ordering},
};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The xtask in the project root, without colour and without a docker of the caller's.
fn xtask(args: &[&str]) -> Command {
    let mut command = Command::new(XTASK);
    command
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a user sees, as one text: the command, its exit code, stdout and stderr.
fn transcript(args: &[&str], output: &Output) -> String {
    format!(
        "$ {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        ["cargo xtask"]
            .iter()
            .chain(args)
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
        output
            .status
            .code()
            .map_or("none".to_owned(), |code| code.to_string()),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// Compares with tests/snapshots/NAME.txt, or writes it with `UPDATE_SNAPSHOTS=1`.
fn assert_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read {} ({err}): run with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} changed: if on purpose, run with UPDATE_SNAPSHOTS=1 and review the diff\n--- expected\n{expected}--- actual\n{actual}"
    );
}

fn snapshot(name: &str, args: &[&str], configure: impl FnOnce(&mut Command)) {
    let mut command = xtask(args);
    configure(&mut command);
    let output = command.output().unwrap();
    assert_snapshot(name, &transcript(args, &output));
}

#[test]
fn help_of_the_root_lists_each_command_on_a_line_then_examples() {
    snapshot("help", &["--help"], |_| {});
}

#[test]
fn help_of_deploy_names_the_environments_and_shows_examples() {
    snapshot("help-deploy", &["deploy", "--help"], |_| {});
}

#[test]
fn no_command_prints_the_help_and_exits_2() {
    snapshot("no-command", &[], |_| {});
}

#[test]
fn an_unknown_environment_is_a_usage_error_with_the_valid_ones() {
    snapshot("unknown-environment", &["deploy", "qa"], |_| {});
}

#[test]
fn a_missing_docker_says_how_to_install_it() {
    snapshot("missing-docker", &["deploy", "dev"], |command| {
        command.env("PATH", "/nonexistent");
    });
}

#[test]
fn a_daemon_that_does_not_answer_says_how_to_start_it() {
    snapshot("daemon-down", &["deploy", "dev"], |command| {
        command.env("DOCKER_HOST", "unix:///nonexistent.sock");
    });
}

#[test]
fn a_daemon_that_takes_the_connection_and_never_answers_is_given_up_on() {
    let dir = std::env::temp_dir().join(format!("xtask-silent-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("docker.sock");
    let _ = std::fs::remove_file(&socket);
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // Accepts every connection and keeps it open, answering nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in listener.incoming().flatten() {
            held.push(connection);
        }
    });
    let started = std::time::Instant::now();
    let output = xtask(&["status", "dev"])
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: the Docker daemon of this machine did not answer within 10 s"),
        "{stderr}"
    );
    assert!(stderr.contains("\nhint: restart it"), "{stderr}");
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_environment_lists_those_that_exist() {
    snapshot("missing-environment", &["deploy"], |_| {});
}

#[test]
fn a_huge_deploy_timeout_is_bounded_never_a_panic() {
    let output = xtask(&[
        "deploy",
        "prod",
        "--dry-run",
        "--no-build",
        "--timeout",
        "18446744073709551615s",
    ])
    .env("POSTGRES_PASSWORD", "dry-run-owner")
    .env("APP_DB_PASSWORD", "dry-run-app")
    .env("APP_TAG", "0a1b2c3")
    .output()
    .unwrap();
    let plan = text(&output.stdout);
    assert!(output.status.success(), "{}{plan}", text(&output.stderr));
    // What Compose takes (nanoseconds in an int64): a century.
    assert!(plan.contains("--wait-timeout 3153600000 db"), "{plan}");
}

#[test]
fn quiet_prints_only_the_result_and_verbose_every_docker_command() {
    let quiet = xtask(&["config", "dev", "--quiet"]).output().unwrap();
    assert!(quiet.status.success(), "{}", text(&quiet.stderr));
    assert_eq!(text(&quiet.stderr), "");
    let merged = text(&quiet.stdout);
    assert!(merged.contains("services:"));
    // dev's default passwords are in the merged file (x-xtask), and hidden.
    assert!(
        merged.contains("    POSTGRES_PASSWORD: ********\n"),
        "{merged}"
    );
    for secret in ["travial-dev-only", "travial-app-dev-only"] {
        assert!(!merged.contains(secret), "{merged}");
    }

    let normal = xtask(&["config", "dev"]).output().unwrap();
    let echoed: Vec<String> = text(&normal.stderr).lines().map(str::to_owned).collect();
    assert_eq!(
        echoed,
        [
            "$ docker compose -p travial-dev -f compose/compose.yaml -f compose/compose.dev.yaml config"
        ]
    );

    let verbose = xtask(&["--verbose", "config", "dev"]).output().unwrap();
    let log = text(&verbose.stderr);
    assert!(
        log.starts_with("$ docker compose version --short\n"),
        "{log}"
    );
    assert!(log.contains("$ docker compose -p travial-dev"), "{log}");
}

#[test]
fn completion_scripts_exist_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = xtask(&["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}: {}", text(&output.stderr));
        let script = text(&output.stdout);
        for word in ["deploy", "status", "logs", "completions", "quiet"] {
            assert!(
                script.contains(word),
                "the {shell} script does not mention {word}"
            );
        }
        // elvish's and PowerShell's generators complete commands and options only.
        if ["bash", "zsh", "fish"].contains(&shell) {
            assert!(
                script.contains("dev prod staging"),
                "the {shell} script does not offer the environments"
            );
        }
    }
}

/// Completes each list of words in one bash that sourced the script after `setup`, as bash
/// does on TAB: calls the function `complete -p` names for the first word, with COMP_WORDS,
/// COMP_CWORD, COMP_LINE and COMP_POINT set, and returns each COMPREPLY.
fn bash_complete_each(setup: &str, lines: &[&[&str]]) -> Vec<Vec<String>> {
    let script = xtask(&["completions", "bash"]).output().unwrap();
    assert!(script.status.success());
    // One file per call: the tests run in parallel.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let file = std::env::temp_dir().join(format!(
        "xtask-completion-{}-{call}.bash",
        std::process::id()
    ));
    std::fs::write(&file, &script.stdout).unwrap();
    let driver = r#"
        complete_words() {
            COMP_WORDS=("$@")
            COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
            COMP_LINE="$*"
            COMP_POINT=${#COMP_LINE}
            local spec function
            spec=$(complete -p "$1") || return 1
            function=${spec##* -F }
            function=${function%% *}
            COMPREPLY=()
            "$function" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\n' "${COMPREPLY[@]}" ---
        }
        eval "$SETUP"
        source "$SCRIPT"
        words=()
        for word in "$@"; do
            if [[ $word == --next-- ]]; then
                complete_words "${words[@]}" || exit 1
                words=()
            else
                words+=("$word")
            fi
        done
    "#;
    let mut args: Vec<&str> = Vec::new();
    for words in lines {
        args.extend(*words);
        args.push("--next--");
    }
    let output = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", driver, "bash"])
        .args(&args)
        .env("SCRIPT", &file)
        .env("SETUP", setup)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "bash failed: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
        .split("---\n")
        .take(lines.len())
        .map(|reply| {
            reply
                .lines()
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

fn bash_complete(setup: &str, words: &[&str]) -> Vec<String> {
    bash_complete_each(setup, &[words]).remove(0)
}

#[test]
fn bash_completes_cargo_xtask_deploy_d_to_dev() {
    assert_eq!(
        bash_complete("", &["cargo", "xtask", "deploy", "d"]),
        ["dev"]
    );
    assert_eq!(bash_complete("", &["xtask", "deploy", "d"]), ["dev"]);
    assert_eq!(
        bash_complete("", &["cargo", "xtask", "-q", "down", "s"]),
        ["staging"]
    );
    assert_eq!(bash_complete("", &["cargo", "xtask", "de"]), ["deploy"]);
}

#[test]
fn bash_completes_the_environment_then_the_service_of_logs() {
    assert_eq!(
        bash_complete("", &["cargo", "xtask", "logs", ""]),
        ["dev", "prod", "staging"]
    );
    assert_eq!(
        bash_complete("", &["cargo", "xtask", "logs", "dev", ""]),
        ["db", "proxy", "web"]
    );
    assert_eq!(
        bash_complete("", &["xtask", "logs", "--follow", "prod", "w"]),
        ["web"]
    );
    assert_eq!(
        bash_complete("", &["xtask", "deploy", "--timeout", "5s", "p"]),
        ["prod"]
    );
    let after_the_last = bash_complete("", &["xtask", "logs", "dev", "web", ""]);
    assert!(
        after_the_last.iter().all(|word| word.starts_with('-')),
        "{after_the_last:?}"
    );
}

#[test]
fn bash_leaves_other_cargo_commands_to_cargos_own_completion() {
    let cargos =
        "_cargo() { COMPREPLY=(\"cargo's-own-$2\"); }; complete -o default -F _cargo cargo";
    assert_eq!(bash_complete(cargos, &["cargo", "bu"]), ["cargo's-own-bu"]);
    assert_eq!(
        bash_complete(cargos, &["cargo", "xtask", "deploy", "d"]),
        ["dev"]
    );
    // bash-completion loads cargo's completion on first use, over this one: it comes back.
    let lazy =
        "_lazy() { COMPREPLY=(\"lazy-$2\"); }; _completion_loader() { complete -F _lazy \"$1\"; }";
    let replies = bash_complete_each(
        lazy,
        &[
            &["cargo", "bu"],
            &["cargo", "xtask", "deploy", "d"],
            &["cargo", "ru"],
        ],
    );
    assert_eq!(replies, [vec!["lazy-bu"], vec!["dev"], vec!["lazy-ru"]]);
}
