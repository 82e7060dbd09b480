//! The docker group: who joins it, and the steps that make them a member.

use super::steps::Plan;
use crate::docker::Command;

pub const GROUP: &str = "docker";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupTarget {
    User(String),
    /// Nobody joins; the reason is printed.
    Nobody(String),
}

/// `--user NAME`, else the user who ran sudo, else the user running this; plain root
/// without sudo adds nobody.
pub fn target(
    flag: Option<&str>,
    no_group: bool,
    sudo_user: Option<&str>,
    root: bool,
    me: &str,
) -> GroupTarget {
    if no_group {
        return GroupTarget::Nobody("--no-group: no user is added to the docker group".to_owned());
    }
    match (flag, sudo_user.filter(|user| !user.is_empty() && *user != "root")) {
        (Some(user), _) => GroupTarget::User(user.to_owned()),
        (None, Some(user)) => GroupTarget::User(user.to_owned()),
        (None, None) if root => GroupTarget::Nobody(
            "running as root without sudo: no user is added to the docker group (pass --user NAME to add one)".to_owned(),
        ),
        (None, None) => GroupTarget::User(me.to_owned()),
    }
}

/// The members listed by `getent group docker` (`docker:x:998:ann,bob`).
pub fn members(getent: &str) -> Vec<String> {
    getent
        .trim()
        .split(':')
        .nth(3)
        .unwrap_or("")
        .split(',')
        .filter(|member| !member.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Creates the group if needed (Docker's packages do it too: `-f` makes that no error) and
/// adds the user, unless they are in it already.
pub fn plan(plan: &mut Plan, target: &GroupTarget, members: Option<&[String]>) {
    let user = match target {
        GroupTarget::Nobody(reason) => return plan.info(reason.clone()),
        GroupTarget::User(user) => user,
    };
    if members.is_some_and(|members| members.contains(user)) {
        return plan.info(format!("{user} is already in the docker group"));
    }
    if members.is_none() {
        plan.run(Command::new("groupadd", ["-f", "--system", GROUP]));
    }
    plan.run(Command::new("usermod", ["-aG", GROUP, user]));
    plan.afterwards.push(format!(
        "{user} is now in the docker group: its members control the Docker daemon, which makes them \
         as powerful as root; the membership applies from {user}'s next login (or `newgrp docker` in a shell)"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_joins_the_group() {
        let user = |name: &str| GroupTarget::User(name.to_owned());
        assert_eq!(
            target(Some("ann"), false, Some("bob"), true, "root"),
            user("ann")
        );
        assert_eq!(target(None, false, Some("bob"), true, "root"), user("bob"));
        assert_eq!(target(None, false, None, false, "carl"), user("carl"));
        assert_eq!(
            target(None, false, Some("root"), false, "carl"),
            user("carl")
        );
        assert!(
            matches!(target(None, false, None, true, "root"), GroupTarget::Nobody(why) if why.contains("--user NAME"))
        );
        assert!(matches!(
            target(Some("ann"), true, Some("bob"), true, "root"),
            GroupTarget::Nobody(_)
        ));
    }

    #[test]
    fn getent_lines() {
        assert_eq!(members("docker:x:998:ann,bob\n"), ["ann", "bob"]);
        assert!(members("docker:x:998:\n").is_empty());
        assert!(members("").is_empty());
    }

    #[test]
    fn steps_only_for_what_is_missing() {
        let ann = GroupTarget::User("ann".into());
        let printed = |members: Option<&[String]>| {
            let mut plan = Plan::default();
            super::plan(&mut plan, &ann, members);
            plan.steps
                .iter()
                .map(|step| format!("{step}\n"))
                .collect::<String>()
        };
        assert_eq!(
            printed(None),
            "groupadd -f --system docker\nusermod -aG docker ann\n"
        );
        assert_eq!(printed(Some(&["bob".into()])), "usermod -aG docker ann\n");
        assert_eq!(printed(Some(&["bob".into(), "ann".into()])), "");
    }
}
