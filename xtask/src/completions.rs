//! `cargo xtask completions SHELL`: the completion script of a shell, from the clap
//! definitions with the environments and services of this checkout (so after adding
//! compose/compose.qa.yaml, generate it again).
//!
//! The scripts complete the command `xtask`: define it as a shorthand of `cargo xtask`
//! (`alias xtask='cargo xtask'`). In bash, the script also completes `cargo xtask …` itself,
//! handing every other `cargo …` to the completion cargo had before.

use std::io::Write;

use clap_complete::Shell;

/// The name the scripts complete.
const BIN: &str = "xtask";

pub fn run(sh: &xshell::Shell, args: &crate::cli::CompletionsArgs) -> anyhow::Result<()> {
    let mut command = crate::cli::command(&sh.current_dir());
    let script = script(&mut command, args.shell);
    std::io::stdout().write_all(script.as_bytes())?;
    Ok(())
}

pub fn script(command: &mut clap::Command, shell: Shell) -> String {
    let mut script = Vec::new();
    clap_complete::generate(shell, command, BIN, &mut script);
    let mut script = String::from_utf8(script).expect("clap_complete writes UTF-8");
    match shell {
        Shell::Bash => script.push_str(&bash_extras(command)),
        Shell::Fish => script.push_str(&fish_extras(command)),
        // zsh's script completes each positional from its values already; elvish's and
        // PowerShell's complete commands and options only.
        _ => {}
    }
    script
}

/// Each subcommand's positional arguments with their values (hidden ones left out).
fn positional_values(
    sub: &clap::Command,
) -> impl Iterator<Item = (usize, &clap::Arg, Vec<String>)> {
    sub.get_positionals()
        .enumerate()
        .filter_map(|(index, arg)| {
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|value| !value.is_hide_set())
                .map(|value| value.get_name().to_owned())
                .collect();
            (!values.is_empty()).then_some((index, arg, values))
        })
}

/// clap's fish lines offer no positional values: these offer them for each subcommand.
fn fish_extras(command: &clap::Command) -> String {
    let mut lines = String::from(
        "\n# Added by `cargo xtask completions fish`: the values of positional arguments.\n",
    );
    for sub in command.get_subcommands() {
        for (_, arg, values) in positional_values(sub) {
            lines.push_str(&format!(
                "complete -c {BIN} -n \"__fish_{BIN}_using_subcommand {}\" -f -a \"{}\" -d '{}'\n",
                sub.get_name(),
                values.join(" "),
                arg.get_id()
            ));
        }
    }
    lines
}

/// clap's bash function offers every positional value at every position and knows only
/// `xtask`: this narrows each position to its own values (an environment, then a
/// service), and makes `cargo xtask …` complete as `xtask …`.
fn bash_extras(command: &clap::Command) -> String {
    let mut positionals = String::new();
    let mut value_options = String::new();
    let mut narrowed = Vec::new();
    for sub in command.get_subcommands() {
        let name = sub.get_name();
        for (index, _, values) in positional_values(sub) {
            positionals.push_str(&format!(
                "        \"{name} {index}\") echo \"{}\" ;;\n",
                values.join(" ")
            ));
            if !narrowed.contains(&name) {
                narrowed.push(name);
            }
        }
        let options: Vec<String> = sub
            .get_opts()
            .flat_map(|arg| {
                let longs = arg.get_long_and_visible_aliases().unwrap_or_default();
                let shorts = arg.get_short_and_visible_aliases().unwrap_or_default();
                longs
                    .into_iter()
                    .map(|long| format!("--{long}"))
                    .chain(shorts.into_iter().map(|short| format!("-{short}")))
            })
            .collect();
        if !options.is_empty() {
            value_options.push_str(&format!(
                "        {name}) echo \"{}\" ;;\n",
                options.join(" ")
            ));
        }
    }
    BASH_EXTRAS
        .replace("{narrowed}", &narrowed.join(" "))
        .replace("{positionals}", &positionals)
        .replace("{value_options}", &value_options)
}

const BASH_EXTRAS: &str = r#"
# Added by `cargo xtask completions bash`. clap's `_xtask` offers every positional value at
# every position: `_xtask_complete` offers those of the argument being completed (the
# environment, then the service), and `_xtask_cargo` completes `cargo xtask …` as
# `xtask …`, any other `cargo …` as before.
_xtask_positional_values() {
    case "$1 $2" in
{positionals}        *) return 1 ;;
    esac
}

_xtask_value_options() {
    case "$1" in
{value_options}    esac
}

_xtask_complete() {
    _xtask "$@"
    local cur=$2 word sub= index=0 i
    [[ $cur == -* ]] && return 0
    for (( i = 1; i < COMP_CWORD; i++ )); do
        word=${COMP_WORDS[i]}
        if [[ -z $sub ]]; then
            [[ $word != -* ]] && sub=$word
        elif [[ $word == -* ]]; then
            [[ " $(_xtask_value_options "$sub") " == *" $word "* ]] && (( i++ ))
        else
            (( index++ ))
        fi
    done
    # The subcommand itself, an option's value, or a command without such arguments: as
    # clap completes them.
    [[ -n $sub && " {narrowed} " == *" $sub "* ]] || return 0
    (( i > COMP_CWORD )) && return 0
    local values
    if values=$(_xtask_positional_values "$sub" "$index"); then
        COMPREPLY=( $(compgen -W "$values" -- "$cur") )
    else
        local -a options=()
        for word in "${COMPREPLY[@]}"; do
            [[ $word == -* ]] && options+=("$word")
        done
        COMPREPLY=( "${options[@]}" )
    fi
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _xtask_complete -o nosort -o bashdefault -o default xtask
else
    complete -F _xtask_complete -o bashdefault -o default xtask
fi

_xtask_cargo() {
    if (( COMP_CWORD >= 2 )) && [[ ${COMP_WORDS[1]} == xtask ]]; then
        local -a COMP_WORDS=( "${COMP_WORDS[@]:1}" )
        local COMP_CWORD=$(( COMP_CWORD - 1 ))
        local line=${COMP_LINE#*cargo}
        line=${line#"${line%%[! ]*}"}
        local COMP_POINT=$(( COMP_POINT - ${#COMP_LINE} + ${#line} )) COMP_LINE=$line
        _xtask_complete xtask "$2" "$3"
        return
    fi
    if [[ -z $_xtask_cargo_previous ]] && declare -F _completion_loader >/dev/null; then
        # bash-completion loads cargo's own completion on its first use: let it, then
        # put this function back in front of it.
        _completion_loader cargo
        _xtask_cargo_remember
        complete -F _xtask_cargo -o bashdefault -o default cargo
    fi
    [[ -n $_xtask_cargo_previous ]] && "$_xtask_cargo_previous" "$@"
}

# The function that completed `cargo` before this script, if any.
_xtask_cargo_remember() {
    local spec
    spec=$(complete -p cargo 2>/dev/null) || return 0
    [[ $spec == *" -F "* ]] || return 0
    spec=${spec##* -F }
    spec=${spec%% *}
    [[ $spec != _xtask_cargo ]] && _xtask_cargo_previous=$spec
    return 0
}

_xtask_cargo_previous=
_xtask_cargo_remember
complete -F _xtask_cargo -o bashdefault -o default cargo
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bash_extras_know_each_position_and_the_options_with_values() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let mut command = crate::cli::command(root);
        let script = script(&mut command, Shell::Bash);
        assert!(
            script.contains(r#""deploy 0") echo "dev prod staging" ;;"#),
            "{script}"
        );
        assert!(script.contains(r#""logs 1") echo "db proxy web" ;;"#));
        assert!(script.contains(r#"deploy) echo "--host --secrets --registry --timeout" ;;"#));
        assert!(script.contains(r#"[[ -n $sub && " deploy migrate rollback history backup restore maintenance psql exec down status logs config completions " == *" $sub "* ]]"#));
    }

    #[test]
    fn the_fish_extras_offer_environments_and_services() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let script = script(&mut crate::cli::command(root), Shell::Fish);
        assert!(script.contains(r#"complete -c xtask -n "__fish_xtask_using_subcommand deploy" -f -a "dev prod staging" -d 'env'"#));
        assert!(script.contains(r#"complete -c xtask -n "__fish_xtask_using_subcommand logs" -f -a "db proxy web" -d 'service'"#));
        assert!(
            script.contains("function __fish_xtask_using_subcommand"),
            "clap renamed its helper"
        );
    }
}
