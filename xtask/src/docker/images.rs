//! What an engine has of an image: whether it has it at all, its ID, and what makes two
//! copies of it on two engines the same.

use xshell::Shell;

use super::{Engine, diagnosis, run};
use crate::hint::Hint;

/// What makes two images the same on any two engines: their layers (by content) and what
/// runs them. Not the image ID: the classic image store's is the config's digest, the
/// containerd store's (Docker 29's default) the manifest's, so the same image has two.
const FINGERPRINT: &str = "{{json .RootFS.Layers}} {{json .Config.Entrypoint}} {{json .Config.Cmd}} \
    {{json .Config.Env}} {{json .Config.User}} {{json .Config.WorkingDir}} {{json .Config.Labels}}";

/// The image's fingerprint on `engine`, `None` when it has no such image.
pub fn fingerprint(sh: &Shell, engine: &Engine, image: &str) -> anyhow::Result<Option<String>> {
    inspect(sh, engine, image, FINGERPRINT)
}

/// The image's ID on `engine`, `None` when it has no such image.
pub fn id(sh: &Shell, engine: &Engine, image: &str) -> anyhow::Result<Option<String>> {
    inspect(sh, engine, image, "{{.Id}}")
}

/// What `format` (a label's `index`) says of the image on `engine`, `None` when it has no
/// such image.
pub fn label(
    sh: &Shell,
    engine: &Engine,
    image: &str,
    format: &str,
) -> anyhow::Result<Option<String>> {
    inspect(sh, engine, image, format)
}

/// Whether `engine` has the image.
pub fn has(sh: &Shell, engine: &Engine, image: &str) -> anyhow::Result<bool> {
    Ok(id(sh, engine, image)?.is_some())
}

fn inspect(
    sh: &Shell,
    engine: &Engine,
    image: &str,
    format: &str,
) -> anyhow::Result<Option<String>> {
    let inspect = engine.docker(["image", "inspect", "--format", format, image]);
    let output = run::probe(sh, &inspect)?;
    if output.status.success() {
        return Ok(Some(
            String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        ));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No such image") || stderr.contains("no such image") {
        return Ok(None);
    }
    let (reason, fix) =
        diagnosis::explain(&stderr, &inspect).unwrap_or_else(|| (output.status.to_string(), None));
    Err(Hint::maybe(
        format!("cannot inspect {image} on {engine}: {reason}"),
        fix,
    ))
}
