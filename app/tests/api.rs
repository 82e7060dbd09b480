//! The JSON API and the page, driven through the router without a socket, against a real
//! PostgreSQL server (one database per test).

mod support;

use app::http::{AppState, Limits, app, app_with_limits};
use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Request, StatusCode, header},
};
use serde_json::{Value, json};
use support::TestDb;
use tower::ServiceExt;

struct Api {
    router: Router,
    _db: TestDb,
}

impl Api {
    async fn new() -> Api {
        let db = TestDb::migrated().await;
        // Every request comes from one client here: writes unbounded but in their own test.
        let limits = Limits {
            writes_per_minute: 1_000_000,
            ..Limits::default()
        };
        Api {
            router: app_with_limits(db.state(), limits),
            _db: db,
        }
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.post_raw(uri, &body.to_string()).await
    }

    async fn post_raw(&self, uri: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        self.send(request).await
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let (status, body) = send(&self.router, request).await;
        let json =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON ({status}): {body}"));
        (status, json)
    }

    async fn player(&self, name: &str, city: &str) {
        let body = json!({ "name": name, "city": city, "birthdate": "1990-05-17" });
        let (status, body) = self.post("/api/players", body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    async fn score(&self, name: &str, place: &str, points: i32) {
        let uri = format!("/api/players/{name}/scores");
        let (status, body) = self
            .post(&uri, json!({ "place": place, "points": points }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn error_of(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"))
}

#[tokio::test]
async fn health_endpoints_answer() {
    let api = Api::new().await;
    assert_eq!(
        api.get("/healthz").await,
        (StatusCode::OK, json!({ "status": "ok" }))
    );
    assert_eq!(
        api.get("/readyz").await,
        (StatusCode::OK, json!({ "status": "ready" }))
    );
}

#[tokio::test]
async fn a_player_is_created_scores_and_is_shown() {
    let api = Api::new().await;
    let (status, body) = api
        .post(
            "/api/players",
            json!({ "name": "  Ann ", "city": "Rome", "birthdate": "1990-05-17" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        body,
        json!({ "name": "Ann", "city": "Rome", "birthdate": "1990-05-17", "total_points": 0, "score_count": 0, "scores": [] })
    );

    let (status, score) = api
        .post(
            "/api/players/Ann/scores",
            json!({ "place": "Colosseum", "points": 30 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(score["place"], "Colosseum");
    assert_eq!(score["points"], 30);
    assert!(
        score["scored_at"].as_str().unwrap().contains('T'),
        "{score}"
    );
    api.score("Ann", "Pantheon", 12).await;

    let (status, player) = api.get("/api/players/Ann").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(player["total_points"], 42);
    let places: Vec<&str> = player["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|score| score["place"].as_str().unwrap())
        .collect();
    assert_eq!(places, ["Pantheon", "Colosseum"], "newest first");
    assert_eq!(player["score_count"], 2);
}

#[tokio::test]
async fn a_player_with_100_000_scores_answers_a_bounded_page_with_the_total() {
    let api = Api::new().await;
    api.player("busy", "Rome").await;
    api._db
        .client()
        .await
        .batch_execute(
            "INSERT INTO scores (player_id, place, points)
             SELECT p.id, 'place ' || n, 1 + n % 10
             FROM players p, generate_series(1, 100000) AS n WHERE p.name = 'busy'",
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (status, player) = api.get("/api/players/busy").await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{player}");
    assert_eq!(player["score_count"], 100_000);
    // 1 + n % 10 over 1..=100000: ten thousand of each of 1..=10, so 550 000.
    assert_eq!(player["total_points"], 550_000);
    let scores = player["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 20);
    assert_eq!(scores[0]["place"], "place 100000", "newest first");
    assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    let (_, five) = api.get("/api/players/busy?scores=5").await;
    assert_eq!(five["scores"].as_array().unwrap().len(), 5);
    for query in ["scores=101", "scores=-1", "scores=x"] {
        let (status, answer) = api.get(&format!("/api/players/busy?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
    }
}

#[tokio::test]
async fn the_ranking_orders_by_points_and_ties_share_a_rank() {
    let api = Api::new().await;
    for (name, city) in [
        ("dora", "Oslo"),
        ("carl", "Rome"),
        ("bea", "Rome"),
        ("al", "Oslo"),
    ] {
        api.player(name, city).await;
    }
    api.score("dora", "Opera", 50).await;
    api.score("carl", "Forum", 20).await;
    api.score("carl", "Forum", 10).await;
    api.score("bea", "Pantheon", 30).await;

    let (status, ranking) = api.get("/api/ranking").await;
    assert_eq!(status, StatusCode::OK);
    let rows: Vec<(i64, &str, i64)> = ranking
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["rank"].as_i64().unwrap(),
                row["name"].as_str().unwrap(),
                row["total_points"].as_i64().unwrap(),
            )
        })
        .collect();
    // bea and carl tie on 30: same rank, ordered by name; the next rank skips one.
    assert_eq!(
        rows,
        [
            (1, "dora", 50),
            (2, "bea", 30),
            (2, "carl", 30),
            (4, "al", 0)
        ]
    );

    let (_, rome) = api.get("/api/ranking?city=Rome&limit=1").await;
    assert_eq!(
        rome,
        json!([{ "rank": 1, "name": "bea", "city": "Rome", "total_points": 30 }])
    );
}

#[tokio::test]
async fn the_page_shows_the_ranking_with_user_input_escaped() {
    let api = Api::new().await;
    api.player("<script>", "Rome").await;
    // The path segment arrives percent-encoded and is decoded before the lookup.
    api.score("%3Cscript%3E", "Forum", 7).await;
    let request = Request::get("/").body(Body::empty()).unwrap();
    let (status, html) = send(&api.router, request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"<a href="/players/%3Cscript%3E">&lt;script&gt;</a>"#),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
}

#[tokio::test]
async fn user_mistakes_get_4xx_with_a_json_error() {
    let api = Api::new().await;
    api.player("ann", "Rome").await;
    let long_name = "x".repeat(app::http::MAX_NAME_CHARS + 1);
    let cases = [
        (
            "/api/players",
            r#"{"name": "bob""#.to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/players",
            r#"{"name": "bob"}"#.to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/players",
            json!({ "name": long_name, "city": "Rome", "birthdate": "1990-01-01" }).to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/players",
            json!({ "name": "bob", "city": "Rome", "birthdate": "1990-13-01" }).to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/players",
            json!({ "name": "bob", "city": "", "birthdate": "1990-01-01" }).to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/players",
            json!({ "name": "bob", "city": "Rome", "birthdate": "2999-01-01" }).to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/players",
            json!({ "name": "ann", "city": "Oslo", "birthdate": "1990-01-01" }).to_string(),
            StatusCode::CONFLICT,
        ),
        (
            "/api/players/ann/scores",
            json!({ "place": "Forum", "points": 0 }).to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/players/nobody/scores",
            json!({ "place": "Forum", "points": 3 }).to_string(),
            StatusCode::NOT_FOUND,
        ),
        // Values PostgreSQL cannot store: a NUL in text, dates out of its range.
        (
            "/api/players",
            json!({ "name": "b\u{0}b", "city": "Rome", "birthdate": "1990-01-01" }).to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/players",
            json!({ "name": "bob", "city": "Ro\u{0}me", "birthdate": "1990-01-01" }).to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/players/ann/scores",
            json!({ "place": "For\u{0}um", "points": 3 }).to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/players/a%00b/scores",
            json!({ "place": "Forum", "points": 3 }).to_string(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/players",
            json!({ "name": "bob", "city": "Rome", "birthdate": "-5000-01-01" }).to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/players",
            json!({ "name": "bob", "city": "Rome", "birthdate": "99999-01-01" }).to_string(),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (uri, body, expected) in cases {
        let (status, answer) = api.post_raw(uri, &body).await;
        assert_eq!(status, expected, "POST {uri} {body}: {answer}");
        assert!(!error_of(&answer).is_empty());
    }

    let (status, answer) = api.get("/api/players/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&answer), "no player named `nobody`");
    for query in ["limit=0", "limit=1000", "limit=abc"] {
        let (status, answer) = api.get(&format!("/api/ranking?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
    }
    let (status, answer) = api.get("/api/players/a%00b").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    // No handler checks the city of the ranking: PostgreSQL's own refusal (SQLSTATE class
    // 22) is still the user's mistake, a 400.
    let (status, answer) = api.get("/api/ranking?city=Ro%00me").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(error_of(&answer).starts_with("invalid value: "), "{answer}");
}

/// A request stuck behind a lock: the table held by another session.
async fn lock_players(db: &TestDb) -> tokio_postgres::Client {
    let locker = db.client().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE players IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    locker
}

#[tokio::test]
async fn a_stuck_statement_is_cancelled_by_the_statement_timeout() {
    let api = Api::new().await;
    let _locker = lock_players(&api._db).await;
    let started = std::time::Instant::now();
    let (status, body) = api.get("/api/players/ann").await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let timeout = app::db::STATEMENT_TIMEOUT;
    assert!(
        took >= timeout && took < timeout + std::time::Duration::from_secs(3),
        "took {took:?}"
    );
}

#[tokio::test]
async fn requests_wait_their_turn_and_none_outlives_the_request_timeout() {
    use std::time::{Duration, Instant};
    let db = TestDb::migrated().await;
    let timeout = Duration::from_millis(500);
    let limits = app::http::Limits {
        request_timeout: timeout,
        concurrent_requests: 1,
        ..app::http::Limits::default()
    };
    let router = app::http::app_with_limits(db.state(), limits);
    let _locker = lock_players(&db).await;
    let started = Instant::now();
    let stuck = tokio::spawn({
        let router = router.clone();
        async move {
            let request = Request::get("/api/players/ann")
                .body(Body::empty())
                .unwrap();
            let answer = send(&router, request).await;
            (answer, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The one turn is taken: the health checks answer all the same, at once.
    let mut health_done = Vec::new();
    for path in ["/healthz", "/readyz", "/startedz"] {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let (status, _) = send(&router, request).await;
        health_done.push(started.elapsed());
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let ((status, _), stuck_done) = stuck.await.unwrap();
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the stuck request timed out"
    );
    assert!(
        stuck_done >= timeout && stuck_done < timeout * 3,
        "the stuck request ended after {stuck_done:?}"
    );
    assert!(
        health_done.iter().all(|done| *done < timeout),
        "the health checks waited for a turn: {health_done:?}"
    );
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_gives_503_not_500() {
    let mut config = TestDb::empty().await.config.clone();
    config.port(support::cluster::free_port());
    let router = app(AppState::new(app::db::pool(&config)));
    let api = Api {
        router,
        _db: TestDb::empty().await,
    };
    let (status, body) = api.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unavailable");
    // Never the driver's words: they name users and hosts.
    assert_eq!(body["reason"], "database unavailable");

    let (status, body) = api.get("/api/ranking").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, _) = api.get("/healthz").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "liveness must not depend on the database"
    );
}

/// What a swarm's healthcheck asks: 503 until the database has answered once since the
/// start (a new task that cannot reach it never gets traffic), then 200 whatever happens to
/// the database (an outage restarts no task), while readiness follows the database.
#[tokio::test]
async fn started_waits_for_the_database_once_then_stays_up_through_an_outage() {
    let mut unreachable = TestDb::empty().await.config.clone();
    unreachable.port(support::cluster::free_port());
    let down = app(AppState::new(app::db::pool(&unreachable)));
    let request = Request::get("/startedz").body(Body::empty()).unwrap();
    assert_eq!(
        send(&down, request).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let api = Api::new().await;
    assert_eq!(api.get("/startedz").await.0, StatusCode::OK);
    support::admin_execute(&format!(
        "ALTER DATABASE {0} ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{0}'",
        api._db.name
    ))
    .await;
    assert_eq!(api.get("/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(api.get("/startedz").await.0, StatusCode::OK);
    assert_eq!(api.get("/healthz").await.0, StatusCode::OK);
    support::admin_execute(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS true",
        api._db.name
    ))
    .await;
}

/// A POST from `peer` (as the server's connection info says), with `forwarded` as its
/// `X-Forwarded-For` if given.
async fn post_from(
    router: &Router,
    peer: &str,
    forwarded: Option<&str>,
    uri: &str,
    body: &str,
) -> axum::response::Response {
    use axum::extract::ConnectInfo;
    let mut request = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    let mut request = request.body(Body::from(body.to_owned())).unwrap();
    let peer: std::net::SocketAddr = format!("{peer}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    router.clone().oneshot(request).await.unwrap()
}

#[tokio::test]
async fn writes_past_a_clients_rate_get_429_and_others_and_reads_go_through() {
    let db = TestDb::migrated().await;
    let limits = Limits {
        writes_per_minute: 60,
        trusted_proxies: vec!["10.9.0.2".to_owned()],
        ..Limits::default()
    };
    let router = app_with_limits(db.state(), limits);
    let player = |n: u32| {
        json!({ "name": format!("p{n}"), "city": "Rome", "birthdate": "1990-05-17" }).to_string()
    };
    // 60 a minute: a burst of 6, then one a second.
    for n in 0..6 {
        let response = post_from(&router, "203.0.113.1", None, "/api/players", &player(n)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let refused = post_from(&router, "203.0.113.1", None, "/api/players", &player(6)).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry = refused.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        retry
            .parse::<u64>()
            .is_ok_and(|seconds| (1..=2).contains(&seconds)),
        "{retry}"
    );
    let scored = post_from(
        &router,
        "203.0.113.1",
        None,
        "/api/players/p0/scores",
        r#"{"place":"Forum","points":1}"#,
    )
    .await;
    assert_eq!(
        scored.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "scores count as writes"
    );
    // Another client is not held back; reads and health checks never are.
    let other = post_from(&router, "203.0.113.2", None, "/api/players", &player(7)).await;
    assert_eq!(other.status(), StatusCode::CREATED);
    for uri in [
        "/api/ranking",
        "/api/players/p0",
        "/healthz",
        "/readyz",
        "/",
    ] {
        for _ in 0..20 {
            let (status, _) = send(&router, Request::get(uri).body(Body::empty()).unwrap()).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
        }
    }

    // Behind the trusted proxy, each client its own limit, by the address the proxy saw.
    for n in 0..6 {
        let response = post_from(
            &router,
            "10.9.0.2",
            Some("198.51.100.7"),
            "/api/players",
            &player(100 + n),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let proxied = post_from(
        &router,
        "10.9.0.2",
        Some("198.51.100.7"),
        "/api/players",
        &player(106),
    )
    .await;
    assert_eq!(proxied.status(), StatusCode::TOO_MANY_REQUESTS);
    let second = post_from(
        &router,
        "10.9.0.2",
        Some("198.51.100.8"),
        "/api/players",
        &player(107),
    )
    .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    // From anywhere else the header is the client's own words: not believed.
    for n in 0..6 {
        let forged = format!("192.0.2.{n}");
        let response = post_from(
            &router,
            "10.9.0.3",
            Some(&forged),
            "/api/players",
            &player(200 + n),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let forged = post_from(
        &router,
        "10.9.0.3",
        Some("192.0.2.99"),
        "/api/players",
        &player(299),
    )
    .await;
    assert_eq!(forged.status(), StatusCode::TOO_MANY_REQUESTS);
}
