//! `/etc/os-release`: which distribution and release this is, and whether install-docker
//! supports it for a given source.

use std::collections::BTreeMap;

use super::Source;

/// The key-value pairs of an os-release file (os-release(5)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    fields: BTreeMap<String, String>,
}

impl OsRelease {
    /// Lenient, as systemd is: malformed lines are skipped, quotes and escapes removed.
    pub fn parse(text: &str) -> OsRelease {
        let fields = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.trim().to_owned(), unquote(value.trim())))
            .collect();
        OsRelease { fields }
    }

    /// A field's value; an empty one counts as absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .get(key)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    pub fn id(&self) -> &str {
        self.get("ID").unwrap_or("linux")
    }

    pub fn id_like(&self) -> Vec<&str> {
        self.get("ID_LIKE")
            .map(|like| like.split_whitespace().collect())
            .unwrap_or_default()
    }

    pub fn pretty_name(&self) -> String {
        match (
            self.get("PRETTY_NAME"),
            self.get("NAME"),
            self.get("VERSION_ID"),
        ) {
            (Some(pretty), _, _) => pretty.to_owned(),
            (None, Some(name), Some(version)) => format!("{name} {version}"),
            (None, Some(name), None) => name.to_owned(),
            (None, None, _) => "this Linux".to_owned(),
        }
    }
}

fn unquote(value: &str) -> String {
    let quoted = value.len() >= 2
        && (value.starts_with('"') && value.ends_with('"')
            || value.starts_with('\'') && value.ends_with('\''));
    if !quoted {
        return value.to_owned();
    }
    let mut out = String::new();
    let mut chars = value[1..value.len() - 1].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ubuntu,
    Debian,
}

impl Family {
    /// As in Docker's repository paths: `…/linux/ubuntu`, `…/linux/debian`.
    pub fn slug(self) -> &'static str {
        match self {
            Family::Ubuntu => "ubuntu",
            Family::Debian => "debian",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Family::Ubuntu => "Ubuntu",
            Family::Debian => "Debian",
        }
    }
}

/// What the distribution itself packages for Compose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistroCompose {
    /// This package is Compose v2.
    V2(&'static str),
    /// Only Compose v1 (`docker-compose`, end of life).
    OnlyV1,
    /// A release this table does not know.
    Unknown,
}

struct Known {
    family: Family,
    codename: &'static str,
    version: &'static str,
    /// Docker publishes packages for it (download.docker.com/linux/FAMILY/dists/CODENAME).
    official: bool,
    compose: DistroCompose,
}

const fn known(
    family: Family,
    codename: &'static str,
    version: &'static str,
    official: bool,
    compose: DistroCompose,
) -> Known {
    Known {
        family,
        codename,
        version,
        official,
        compose,
    }
}

/// The releases install-docker knows: Docker's supported list (docs.docker.com/engine/install)
/// and what each distribution packages for Compose.
const RELEASES: &[Known] = {
    use DistroCompose::{OnlyV1, V2};
    use Family::{Debian, Ubuntu};
    &[
        known(Ubuntu, "focal", "20.04", false, OnlyV1),
        known(Ubuntu, "jammy", "22.04", true, V2("docker-compose-v2")),
        known(Ubuntu, "noble", "24.04", true, V2("docker-compose-v2")),
        known(Ubuntu, "plucky", "25.04", false, V2("docker-compose-v2")),
        known(Ubuntu, "questing", "25.10", true, V2("docker-compose-v2")),
        known(Ubuntu, "resolute", "26.04", true, V2("docker-compose-v2")),
        known(Debian, "bullseye", "11", true, OnlyV1),
        known(Debian, "bookworm", "12", true, OnlyV1),
        known(Debian, "trixie", "13", true, V2("docker-compose")),
    ]
};

/// An Ubuntu or Debian release, or one derived from them, by the base release's codename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub family: Family,
    /// The base release's: Linux Mint 22 is `noble`, LMDE 6 is `bookworm`.
    pub codename: String,
    pub pretty_name: String,
}

impl Release {
    /// Ubuntu and Debian by ID, derivatives by ID_LIKE; the codename from UBUNTU_CODENAME or
    /// DEBIAN_CODENAME before VERSION_CODENAME. Anything else is refused, in one line.
    pub fn detect(os: &OsRelease) -> Result<Release, String> {
        let pretty_name = os.pretty_name();
        let ids: Vec<&str> = std::iter::once(os.id()).chain(os.id_like()).collect();
        let family = if ids[0] == "debian" {
            Family::Debian
        } else if ids.contains(&"ubuntu") {
            Family::Ubuntu
        } else if ids.contains(&"debian") {
            Family::Debian
        } else {
            return Err(format!(
                "{pretty_name} is not supported: install-docker knows {} and their derivatives; \
                 elsewhere follow https://docs.docker.com/engine/install/",
                supported_list()
            ));
        };
        let own = match family {
            Family::Ubuntu => "UBUNTU_CODENAME",
            Family::Debian => "DEBIAN_CODENAME",
        };
        let codename = os.get(own).or_else(|| os.get("VERSION_CODENAME")).ok_or_else(|| {
            format!("cannot tell which {} release {pretty_name} is: its /etc/os-release has no VERSION_CODENAME", family.name())
        })?;
        Ok(Release {
            family,
            codename: codename.to_owned(),
            pretty_name,
        })
    }

    fn known(&self) -> Option<&'static Known> {
        RELEASES
            .iter()
            .find(|known| known.family == self.family && known.codename == self.codename)
    }

    /// Docker's repository exists only for the releases Docker publishes for; the
    /// distribution's own packages exist for every release.
    pub fn check(&self, source: Source) -> Result<(), String> {
        match source {
            Source::Distro => Ok(()),
            Source::Official if self.known().is_some_and(|known| known.official) => Ok(()),
            Source::Official => Err(format!(
                "{} ({} {}) is not a release Docker publishes packages for: Docker's repository \
                 covers {}, and their derivatives; `--source distro` installs the distribution's own docker.io instead",
                self.pretty_name,
                self.family.name(),
                self.codename,
                supported_list()
            )),
        }
    }

    pub fn distro_compose(&self) -> DistroCompose {
        self.known()
            .map_or(DistroCompose::Unknown, |known| known.compose)
    }
}

/// `Ubuntu 22.04, 24.04, 25.10, 26.04 and Debian 11, 12, 13`, from the table.
pub fn supported_list() -> String {
    let versions = |family: Family| {
        let versions: Vec<&str> = RELEASES
            .iter()
            .filter(|known| known.family == family && known.official)
            .map(|known| known.version)
            .collect();
        format!("{} {}", family.name(), versions.join(", "))
    };
    format!(
        "{} and {}",
        versions(Family::Ubuntu),
        versions(Family::Debian)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os_release(name: &str) -> OsRelease {
        let path = format!(
            "{}/tests/data/install/os-release/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        OsRelease::parse(
            &std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}")),
        )
    }

    /// A file, the family and codename it resolves to (none: refused), whether Docker's
    /// repository takes it, and the distribution's Compose.
    type Row = (
        &'static str,
        Option<(Family, &'static str)>,
        bool,
        DistroCompose,
    );

    /// Real os-release files: what each resolves to, and whether each source takes it.
    #[test]
    fn real_os_release_files() {
        use Family::{Debian, Ubuntu};
        #[rustfmt::skip]
        let table: &[Row] = &[
            ("ubuntu-20.04", Some((Ubuntu, "focal")), false, DistroCompose::OnlyV1),
            ("ubuntu-22.04", Some((Ubuntu, "jammy")), true, DistroCompose::V2("docker-compose-v2")),
            ("ubuntu-24.04", Some((Ubuntu, "noble")), true, DistroCompose::V2("docker-compose-v2")),
            ("ubuntu-25.10", Some((Ubuntu, "questing")), true, DistroCompose::V2("docker-compose-v2")),
            ("ubuntu-26.04", Some((Ubuntu, "resolute")), true, DistroCompose::V2("docker-compose-v2")),
            ("debian-11", Some((Debian, "bullseye")), true, DistroCompose::OnlyV1),
            ("debian-12", Some((Debian, "bookworm")), true, DistroCompose::OnlyV1),
            ("debian-13", Some((Debian, "trixie")), true, DistroCompose::V2("docker-compose")),
            ("linuxmint-22", Some((Ubuntu, "noble")), true, DistroCompose::V2("docker-compose-v2")),
            ("lmde-6", Some((Debian, "bookworm")), true, DistroCompose::OnlyV1),
            ("pop-22.04", Some((Ubuntu, "jammy")), true, DistroCompose::V2("docker-compose-v2")),
            ("fedora-41", None, false, DistroCompose::Unknown),
            ("alpine-3.20", None, false, DistroCompose::Unknown),
        ];
        for (file, expected, official, compose) in table {
            let detected = Release::detect(&os_release(file));
            match (expected, &detected) {
                (Some((family, codename)), Ok(release)) => {
                    assert_eq!(
                        (release.family, release.codename.as_str()),
                        (*family, *codename),
                        "{file}"
                    );
                    assert!(release.check(Source::Distro).is_ok(), "{file}");
                    assert_eq!(release.check(Source::Official).is_ok(), *official, "{file}");
                    assert_eq!(release.distro_compose(), *compose, "{file}");
                }
                (None, Err(refusal)) => {
                    assert!(refusal.contains("is not supported"), "{file}: {refusal}");
                    assert!(!refusal.contains('\n'), "{file}: more than one line");
                }
                _ => panic!("{file}: expected {expected:?}, got {detected:?}"),
            }
        }
    }

    #[test]
    fn names_come_from_pretty_name() {
        assert_eq!(
            os_release("ubuntu-24.04").pretty_name(),
            "Ubuntu 24.04.3 LTS"
        );
        assert_eq!(os_release("pop-22.04").pretty_name(), "Pop!_OS 22.04 LTS");
        assert_eq!(
            os_release("alpine-3.20").pretty_name(),
            "Alpine Linux v3.20"
        );
        assert_eq!(
            OsRelease::parse("NAME=Foo\nVERSION_ID=1").pretty_name(),
            "Foo 1"
        );
    }

    #[test]
    fn an_unpublished_release_is_refused_in_one_line_that_suggests_the_distro_source() {
        let focal = Release::detect(&os_release("ubuntu-20.04")).unwrap();
        let refusal = focal.check(Source::Official).unwrap_err();
        assert_eq!(
            refusal,
            "Ubuntu 20.04.6 LTS (Ubuntu focal) is not a release Docker publishes packages for: \
             Docker's repository covers Ubuntu 22.04, 24.04, 25.10, 26.04 and Debian 11, 12, 13, \
             and their derivatives; `--source distro` installs the distribution's own docker.io instead"
        );
        let unknown =
            Release::detect(&OsRelease::parse("ID=ubuntu\nVERSION_CODENAME=zesty")).unwrap();
        assert!(unknown.check(Source::Official).is_err());
        assert_eq!(unknown.distro_compose(), DistroCompose::Unknown);
    }

    #[test]
    fn quoting_and_escapes() {
        let os = OsRelease::parse(
            "# comment\nA=\"x \\\"y\\\" \\$z\"\nB='single'\nC=plain\nD=\"\"\nbroken line\n",
        );
        assert_eq!(os.get("A"), Some("x \"y\" $z"));
        assert_eq!(os.get("B"), Some("single"));
        assert_eq!(os.get("C"), Some("plain"));
        assert_eq!(os.get("D"), None);
        assert_eq!(os.id(), "linux");
    }

    #[test]
    fn a_release_without_codename_is_refused() {
        let refusal = Release::detect(&OsRelease::parse("ID=debian\nPRETTY_NAME=\"Debian sid\""))
            .unwrap_err();
        assert!(refusal.contains("no VERSION_CODENAME"), "{refusal}");
    }
}
