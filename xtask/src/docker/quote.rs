//! Command lines printed so that a user can paste them into a POSIX shell.

/// Quotes each argument only where a shell would otherwise split or expand it. Braces and
/// commas are quoted too: bash, the remote shell of many SSH hosts, expands `{a,b}` to two
/// words.
pub fn shell_words(args: &[String]) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@+%".contains(c);
    args.iter()
        .map(|arg| {
            if !arg.is_empty() && arg.chars().all(plain) {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_commands_survive_a_shell() {
        let args = ["run", "--label", "a b", "it's", "", "{{.ID}}", "x{a,b}"].map(String::from);
        assert_eq!(
            shell_words(&args),
            r#"run --label 'a b' 'it'\''s' '' '{{.ID}}' 'x{a,b}'"#
        );
    }
}
