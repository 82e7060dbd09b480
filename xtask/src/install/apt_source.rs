//! Docker's apt repository as a deb822 sources entry, as Docker documents it today, and the
//! older entries for the same repository that would duplicate it.

use std::path::{Path, PathBuf};

pub const KEYRING: &str = "/etc/apt/keyrings/docker.asc";
pub const SOURCES: &str = "/etc/apt/sources.list.d/docker.sources";
pub const SOURCES_DIR: &str = "/etc/apt/sources.list.d";
pub const SOURCES_LIST: &str = "/etc/apt/sources.list";

/// /etc/apt/sources.list.d/docker.sources, byte for byte what docs.docker.com has a user
/// write: a machine set up by hand from those docs needs no change.
pub fn entry(repo: &str, codename: &str, arch: &str) -> String {
    format!(
        "Types: deb\nURIs: {repo}\nSuites: {codename}\nComponents: stable\nArchitectures: {arch}\nSigned-By: {KEYRING}\n"
    )
}

/// What to do about another sources file that names `repo` (a `docker.list` from older
/// instructions): apt would see the repository twice, and refuses outright when the two
/// entries name different keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Duplicate {
    /// The file has nothing but entries for `repo`: it goes.
    Remove(PathBuf),
    /// The file has other entries too: the user edits it.
    Edit(PathBuf),
}

/// The files among `files` (path, content) other than ours with an active entry for `repo`.
pub fn duplicates(files: &[(PathBuf, String)], repo: &str) -> Vec<Duplicate> {
    files
        .iter()
        .filter(|(path, _)| path != Path::new(SOURCES))
        .filter_map(|(path, text)| {
            let uris = entry_uris(text);
            let ours = uris.iter().filter(|uri| same_repo(uri, repo)).count();
            if ours == 0 {
                None
            } else if ours == uris.len() && path.starts_with(SOURCES_DIR) {
                Some(Duplicate::Remove(path.clone()))
            } else {
                Some(Duplicate::Edit(path.clone()))
            }
        })
        .collect()
}

/// The URI of every active entry: one-line `deb [options] URI suite…` lines and deb822
/// `URIs:` fields (each of their URIs).
fn entry_uris(text: &str) -> Vec<&str> {
    let mut uris = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
    {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("deb" | "deb-src") => {
                let mut word = words.next();
                if word.is_some_and(|w| w.starts_with('[')) {
                    while word.is_some_and(|w| !w.ends_with(']')) {
                        word = words.next();
                    }
                    word = words.next();
                }
                uris.extend(word);
            }
            Some(field) if field.eq_ignore_ascii_case("URIs:") => uris.extend(words),
            _ => {}
        }
    }
    uris
}

fn same_repo(uri: &str, repo: &str) -> bool {
    uri.trim_end_matches('/') == repo.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_is_the_one_dockers_docs_write() {
        assert_eq!(
            entry("https://download.docker.com/linux/ubuntu", "noble", "amd64"),
            "Types: deb\n\
             URIs: https://download.docker.com/linux/ubuntu\n\
             Suites: noble\n\
             Components: stable\n\
             Architectures: amd64\n\
             Signed-By: /etc/apt/keyrings/docker.asc\n"
        );
    }

    #[test]
    fn older_entries_for_the_same_repository_are_found() {
        let repo = "https://download.docker.com/linux/ubuntu";
        let file = |path: &str, text: &str| (PathBuf::from(path), text.to_owned());
        let files = [
            file(SOURCES, &entry(repo, "noble", "amd64")),
            file(
                "/etc/apt/sources.list.d/docker.list",
                "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/ubuntu/ noble stable\n",
            ),
            file(
                "/etc/apt/sources.list.d/ubuntu.sources",
                "Types: deb\nURIs: http://archive.ubuntu.com/ubuntu/\nSuites: noble noble-updates\nComponents: main universe\n",
            ),
            file(
                SOURCES_LIST,
                "deb http://archive.ubuntu.com/ubuntu noble main\n# deb https://download.docker.com/linux/ubuntu noble stable\n",
            ),
            file(
                "/etc/apt/sources.list.d/mixed.list",
                "deb https://download.docker.com/linux/ubuntu noble stable\ndeb http://ppa.launchpad.net/x/y/ubuntu noble main\n",
            ),
            file(
                "/etc/apt/sources.list.d/old-docker.sources",
                "Types: deb\nURIs: https://download.docker.com/linux/ubuntu\nSuites: noble\nComponents: stable\n",
            ),
        ];
        assert_eq!(
            duplicates(&files, repo),
            [
                Duplicate::Remove("/etc/apt/sources.list.d/docker.list".into()),
                Duplicate::Edit("/etc/apt/sources.list.d/mixed.list".into()),
                Duplicate::Remove("/etc/apt/sources.list.d/old-docker.sources".into()),
            ]
        );
        let in_main_list = [file(
            SOURCES_LIST,
            "deb [arch=amd64] https://download.docker.com/linux/ubuntu noble stable\n",
        )];
        assert_eq!(
            duplicates(&in_main_list, repo),
            [Duplicate::Edit(SOURCES_LIST.into())]
        );
        assert!(duplicates(&files, "https://mirror.example/linux/ubuntu").is_empty());
    }
}
