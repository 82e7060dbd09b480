//! Docker's image reference grammar (distribution/reference) and the tags a build gets.
//! Checked before any docker command runs, so a typo fails in a clear line, not mid-push.

use anyhow::{bail, ensure};

use crate::address::HostPort;

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// `REPOSITORY:TAG`: an image as the xtask names it, always with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `travial/app`, `127.0.0.1:5000/travial/app`.
    pub repository: String,
    pub tag: String,
}

impl Reference {
    pub fn new(repository: impl Into<String>, tag: impl Into<String>) -> Reference {
        Reference {
            repository: repository.into(),
            tag: tag.into(),
        }
    }

    /// `host:5000/ns/app:tag`: the tag is after the last `/`'s last `:`.
    pub fn parse(text: &str) -> anyhow::Result<Reference> {
        let name_start = text.rfind('/').map_or(0, |slash| slash + 1);
        match text[name_start..].rfind(':') {
            Some(colon) => Ok(Reference::new(
                &text[..name_start + colon],
                &text[name_start + colon + 1..],
            )),
            None => bail!("the image `{text}` has no tag"),
        }
    }

    /// The registry its repository names, `None` for Docker Hub.
    pub fn registry(&self) -> Option<&str> {
        registry_of(&self.repository)
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

/// The registry host a repository names, `None` for Docker Hub.
pub fn registry_of(repository: &str) -> Option<&str> {
    let (first, _) = repository.split_once('/')?;
    (first.contains(['.', ':']) || first == "localhost").then_some(first)
}

/// `[domain[:port]/]path-component[/path-component]…`, lower case, as Docker accepts it.
pub fn validate_repository(name: &str) -> anyhow::Result<()> {
    ensure!(!name.is_empty(), "the image repository is empty");
    ensure!(
        name.len() <= MAX_NAME_LEN,
        "the image repository `{name}` is longer than {MAX_NAME_LEN} characters"
    );
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 && looks_like_domain(components[0]) {
        let domain = components.remove(0);
        validate_domain(domain)
            .map_err(|why| anyhow::anyhow!("`{name}` is not a valid image repository: {why}"))?;
    }
    for component in components {
        if !is_path_component(component) {
            bail!(
                "`{name}` is not a valid image repository: `{component}` must be lower-case letters \
                 and digits, separated by `.`, `_`, `__` or dashes (e.g. travial/app)"
            );
        }
    }
    Ok(())
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> anyhow::Result<()> {
    let mut chars = tag.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && tag.len() <= MAX_TAG_LEN;
    ensure!(
        valid,
        "`{tag}` is not a valid image tag: use up to {MAX_TAG_LEN} letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
    );
    Ok(())
}

/// As Docker decides: the first component names a registry when it has a dot or a port, or
/// is `localhost`.
fn looks_like_domain(component: &str) -> bool {
    component.contains(['.', ':'])
        || component == "localhost"
        || component.chars().any(|c| c.is_ascii_uppercase())
}

fn validate_domain(domain: &str) -> Result<(), String> {
    let address = HostPort::parse(domain).map_err(|why| format!("the registry {why}"))?;
    // Docker's domain components have no `_`.
    if address.host.contains('_') {
        return Err(format!("`{}` is not a registry host name", address.host));
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let separator = &component[i..];
        let skip = if separator.starts_with("__") {
            2
        } else if separator.starts_with(['.', '_']) {
            1
        } else {
            separator.bytes().take_while(|&b| b == b'-').count()
        };
        if skip == 0 {
            return false;
        }
        i += skip;
    }
}

/// Where the image comes from in git: the short commit, whether the tree has changes, and
/// the commit's time (the `created` label: the same for the same commit, so rebuilds hit
/// the cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub short_sha: String,
    pub dirty: bool,
    pub commit_time: String,
}

impl Revision {
    pub fn tag(&self) -> String {
        if self.dirty {
            format!("{}-dirty", self.short_sha)
        } else {
            self.short_sha.clone()
        }
    }
}

/// The version's tags (1.4.2, 1.4, 1; a pre-release only as itself), the commit's, `latest`
/// for a clean tree, then the extra ones; each once, in that order. The commit's tag comes
/// first: it is the one tag that always exists.
pub fn tag_set(version: &str, revision: &Revision, extra: &[String]) -> Vec<String> {
    let mut tags = vec![revision.tag()];
    if version.contains(['-', '+']) {
        tags.push(version.replace('+', "_"));
    } else {
        let parts: Vec<&str> = version.split('.').collect();
        for len in (1..=parts.len()).rev() {
            tags.push(parts[..len].join("."));
        }
    }
    if !revision.dirty {
        tags.push("latest".to_owned());
    }
    tags.extend(extra.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    tags.retain(|tag| seen.insert(tag.clone()));
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(dirty: bool) -> Revision {
        Revision {
            short_sha: "0a1b2c3".into(),
            dirty,
            commit_time: "2026-11-24T16:00:00+00:00".into(),
        }
    }

    #[test]
    fn a_clean_release_gets_every_version_prefix_and_latest() {
        assert_eq!(
            tag_set("1.4.2", &revision(false), &["edge".into(), "1.4".into()]),
            ["0a1b2c3", "1.4.2", "1.4", "1", "latest", "edge"]
        );
    }

    #[test]
    fn a_dirty_tree_never_gets_latest() {
        assert_eq!(
            tag_set("0.1.0", &revision(true), &[]),
            ["0a1b2c3-dirty", "0.1.0", "0.1", "0"]
        );
    }

    #[test]
    fn a_pre_release_does_not_move_the_short_tags() {
        assert_eq!(
            tag_set("2.0.0-rc.1+build.5", &revision(false), &[]),
            ["0a1b2c3", "2.0.0-rc.1_build.5", "latest"]
        );
    }

    #[test]
    fn repositories_follow_dockers_grammar() {
        for good in [
            "travial/app",
            "app",
            "docker.io/library/postgres",
            "127.0.0.1:5000/ns/name",
            "localhost/app",
            "registry.example.com:443/a.b/c__d/e-f---g",
        ] {
            assert!(validate_repository(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "travial/App",
            "travial//app",
            "travial/app/",
            "-app",
            "app_",
            "a/b:c",
            "host:port/app",
            "travial/a..b",
        ] {
            assert!(validate_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reference_is_its_repository_and_its_tag() {
        let reference = Reference::parse("127.0.0.1:5000/ns/app:1.0").unwrap();
        assert_eq!(
            (reference.repository.as_str(), reference.tag.as_str()),
            ("127.0.0.1:5000/ns/app", "1.0")
        );
        assert_eq!(reference.registry(), Some("127.0.0.1:5000"));
        assert_eq!(reference.to_string(), "127.0.0.1:5000/ns/app:1.0");
        assert_eq!(
            Reference::parse("travial/app:latest").unwrap().registry(),
            None
        );
        assert!(Reference::parse("127.0.0.1:5000/ns/app").is_err());
        assert!(Reference::parse("app").is_err());
    }

    #[test]
    fn tags_follow_dockers_grammar() {
        for good in ["latest", "1.4.2", "0a1b2c3-dirty", "_x", "A.b-C"] {
            assert!(validate_tag(good).is_ok(), "{good}");
        }
        let long = "x".repeat(129);
        for bad in ["", ".x", "-x", "a/b", "a:b", "ü", long.as_str()] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
    }
}
