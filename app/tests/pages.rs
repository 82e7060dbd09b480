//! The pages as people see them, in a real browser: Debian's chromium, headless, driven by
//! the test (`--dump-dom`: the document as the browser built it; `--screenshot`). They
//! render; the ranking shows the players in order; a name with markup shows as text; the
//! links lead where they say; and the home page is drawn at a phone's and a desktop's size
//! (`SCREENSHOT_DIR=docs` writes the README's pictures).

mod support;

use std::{
    path::PathBuf,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use app::http::{AppState, Limits, app_with_limits};
use support::TestDb;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The app on a port of its own, over a migrated database with a few players.
struct Site {
    base: String,
    _db: TestDb,
}

impl Site {
    async fn start() -> Site {
        let db = TestDb::migrated().await;
        let client = db.client().await;
        client
            .batch_execute(
                "INSERT INTO players (name, city, birthdate) VALUES
                     ('ann', 'Rome', '1990-05-17'), ('bob', 'Rome', '1991-02-03'),
                     ('<b>eve</b>', 'São Paulo', '1992-08-09'), ('dan/x?y', 'Oslo', '1993-01-01');
                 INSERT INTO scores (player_id, place, points)
                 SELECT id, 'Colosseum', 30 FROM players WHERE name = 'ann';
                 INSERT INTO scores (player_id, place, points)
                 SELECT id, 'Forum', 10 FROM players WHERE name = 'bob';
                 INSERT INTO scores (player_id, place, points)
                 SELECT id, 'Paulista <i>Avenue</i>', 20 FROM players WHERE name = '<b>eve</b>';
                 INSERT INTO scores (player_id, place, points)
                 SELECT id, 'Fjord', 10 FROM players WHERE name = 'dan/x?y';",
            )
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = app_with_limits(AppState::new(app::db::pool(&db.config)), Limits::default());
        tokio::spawn(app::http::serve(
            listener,
            router,
            std::future::pending(),
            Duration::ZERO,
        ));
        Site { base, _db: db }
    }

    /// The document chromium builds from `path`.
    async fn dom(&self, path: &str) -> String {
        let url = format!("{}{path}", self.base);
        let output = chromium(&["--dump-dom", &url]).await;
        String::from_utf8_lossy(&output).into_owned()
    }
}

/// Chromium run once, with a profile of its own (two at once may not share one).
async fn chromium(args: &[&str]) -> Vec<u8> {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let profile = std::env::temp_dir().join(format!(
        "travial-chromium-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        &format!("--user-data-dir={}", profile.display()),
    ]
    .iter()
    .chain(args)
    .map(|arg| (*arg).to_owned())
    .collect();
    let output = tokio::task::spawn_blocking(move || {
        let output = Command::new(CHROMIUM)
            .args(&args)
            .output()
            .unwrap_or_else(|err| panic!("{CHROMIUM}: {err} (`.ci/docker` installs it)"));
        assert!(
            output.status.success(),
            "chromium {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    output
}

/// Each `href="…"` of the document, in order.
fn links(dom: &str) -> Vec<String> {
    dom.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|link| link.replace("&amp;", "&"))
        .collect()
}

/// Where each of `names` first appears in the document.
fn positions(dom: &str, names: &[&str]) -> Vec<usize> {
    names
        .iter()
        .map(|name| {
            dom.find(name)
                .unwrap_or_else(|| panic!("no {name} in:\n{dom}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pages_render_in_a_browser_in_order_escaped_and_linked() {
    let site = Site::start().await;
    let home = site.dom("/").await;
    assert!(home.contains("<h1>Travial: top 20</h1>"), "{home}");
    assert!(
        home.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#),
        "{home}"
    );
    assert!(!home.contains("<script"), "{home}");
    // By points, ties by name: ann 30, eve 20, bob and dan 10.
    let order = positions(
        &home,
        &[">ann<", "&lt;b&gt;eve&lt;/b&gt;", ">bob<", ">dan/x?y<"],
    );
    assert!(
        order.windows(2).all(|pair| pair[0] < pair[1]),
        "{order:?}:\n{home}"
    );
    // The markup of a name is text: the browser made no element of it.
    assert!(!home.contains("<b>eve</b>"), "{home}");

    // Every link leads to a page that names what the link said.
    let home_links = links(&home);
    for (link, says) in [
        ("/players/ann", "<h1>ann</h1>"),
        (
            "/players/%3Cb%3Eeve%3C%2Fb%3E",
            "<h1>&lt;b&gt;eve&lt;/b&gt;</h1>",
        ),
        ("/players/dan%2Fx%3Fy", "<h1>dan/x?y</h1>"),
        ("/cities/Rome", "<h1>Top 20 in Rome</h1>"),
        ("/cities/S%C3%A3o%20Paulo", "<h1>Top 20 in São Paulo</h1>"),
    ] {
        assert!(
            home_links.contains(&link.to_owned()),
            "no {link} in {home_links:?}"
        );
        let page = site.dom(link).await;
        assert!(page.contains(says), "{link}:\n{page}");
    }

    // A city's ranking: its players only, in order, each linked, and the way back.
    let rome = site.dom("/cities/Rome").await;
    let order = positions(&rome, &[">ann<", ">bob<"]);
    assert!(order[0] < order[1], "{rome}");
    assert!(!rome.contains("eve"), "{rome}");
    assert!(links(&rome).contains(&"/".to_owned()), "{rome}");

    // A player's page: the total, the recent scores (their markup as text too), the links.
    let eve = site.dom("/players/%3Cb%3Eeve%3C%2Fb%3E").await;
    assert!(
        eve.contains(r#"<span class="total">20</span> points, from 1 scores"#),
        "{eve}"
    );
    assert!(eve.contains("Paulista &lt;i&gt;Avenue&lt;/i&gt;"), "{eve}");
    assert!(
        links(&eve).contains(&"/cities/S%C3%A3o%20Paulo".to_owned()),
        "{eve}"
    );
    let missing = site.dom("/players/nobody").await;
    assert!(missing.contains("No such player."), "{missing}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_home_page_is_drawn_at_a_phones_and_a_desktops_size() {
    let site = Site::start().await;
    let dir = std::env::var_os("SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    for (name, size) in [
        ("home-phone.png", "412,900"),
        ("home-desktop.png", "1280,800"),
    ] {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let url = format!("{}/", site.base);
        chromium(&[
            &format!("--screenshot={}", path.display()),
            &format!("--window-size={size}"),
            "--hide-scrollbars",
            &url,
        ])
        .await;
        let png = std::fs::read(&path).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 2_000,
            "{name}"
        );
    }
}
