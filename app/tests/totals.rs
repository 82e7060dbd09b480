//! Each player's total, kept by the database (V3): right under concurrent scores for one
//! player, filled by the migration as a recount would make it, and kept right while the
//! previous web (V2's statements, V2's privileges) writes during and after the migration.

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use app::http::{Limits, app_with_limits};
use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use support::TestDb;
use tokio_postgres::NoTls;
use tower::ServiceExt;

/// Players whose `player_totals` row differs from a recount of their scores, or is
/// missing; and the number of rows too many.
const MISMATCHES: &str = "
    SELECT (SELECT count(*) FROM players p
            LEFT JOIN (SELECT player_id, SUM(points) AS total, COUNT(*) AS count
                       FROM scores GROUP BY player_id) r ON r.player_id = p.id
            LEFT JOIN player_totals t ON t.player_id = p.id
            WHERE t.player_id IS NULL
               OR t.total_points <> COALESCE(r.total, 0)
               OR t.score_count <> COALESCE(r.count, 0)
               OR t.name <> p.name OR t.city <> p.city)
         + (SELECT count(*) FROM player_totals) - (SELECT count(*) FROM players)";

#[tokio::test]
async fn concurrent_scores_for_one_player_all_count() {
    let db = TestDb::migrated().await;
    let limits = Limits {
        writes_per_minute: 1_000_000,
        ..Limits::default()
    };
    let router = app_with_limits(db.state(), limits);
    let post = |uri: String, body: String| {
        let router = router.clone();
        async move {
            let request = Request::post(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap();
            router.oneshot(request).await.unwrap().status()
        }
    };
    let ann = r#"{"name":"ann","city":"Rome","birthdate":"1990-05-17"}"#;
    assert_eq!(
        post("/api/players".into(), ann.into()).await,
        StatusCode::CREATED
    );
    let scores: Vec<_> = (1..=200)
        .map(|points| {
            tokio::spawn(post(
                "/api/players/ann/scores".into(),
                format!(r#"{{"place":"Forum","points":{points}}}"#),
            ))
        })
        .collect();
    for score in scores {
        assert_eq!(score.await.unwrap(), StatusCode::CREATED);
    }
    let client = db.client().await;
    let row = client
        .query_one("SELECT total_points, score_count FROM player_totals", &[])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (200 * 201 / 2, 200)
    );
    let mismatches: i64 = client.query_one(MISMATCHES, &[]).await.unwrap().get(0);
    assert_eq!(mismatches, 0);
}

/// V2's web: its role's privileges, and the statements it runs.
struct OldWeb {
    role: String,
    client: tokio_postgres::Client,
}

impl OldWeb {
    async fn connect(db: &TestDb, admin: &tokio_postgres::Client) -> OldWeb {
        let role = format!("{}_old_web", db.name);
        admin
            .batch_execute(&format!(
                "CREATE ROLE {role} LOGIN PASSWORD 'old-web';
                 GRANT SELECT, INSERT ON players, scores TO {role};"
            ))
            .await
            .unwrap();
        let mut config = db.config.clone();
        config.user(&role).password("old-web");
        let (client, connection) = config.connect(NoTls).await.unwrap();
        tokio::spawn(connection);
        OldWeb { role, client }
    }

    async fn add_score(&self, name: &str, points: i32) {
        self.client
            .execute(
                "INSERT INTO scores (player_id, place, points)
                 SELECT id, 'Forum', $2 FROM players WHERE name = $1",
                &[&name, &points],
            )
            .await
            .unwrap();
    }

    async fn ranking(&self) -> Vec<(String, i64)> {
        self.client
            .query(
                "SELECT RANK() OVER (ORDER BY total DESC) AS rank, name, city, total
                 FROM (
                     SELECT p.name, p.city, COALESCE(SUM(s.points), 0)::BIGINT AS total
                     FROM players p LEFT JOIN scores s ON s.player_id = p.id
                     WHERE $1::TEXT IS NULL OR p.city = $1
                     GROUP BY p.id
                 ) totals
                 ORDER BY total DESC, name
                 LIMIT $2",
                &[&None::<String>, &10_i64],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get("name"), row.get("total")))
            .collect()
    }
}

#[tokio::test]
async fn the_fill_matches_a_recount_and_the_previous_web_keeps_working_during_and_after() {
    let db = TestDb::empty().await;
    let mut admin = db.client().await;
    app::db::migrate_up_to(&mut admin, 2).await.unwrap();
    admin
        .batch_execute(
            "INSERT INTO players (name, city, birthdate)
             SELECT 'p' || n, 'city ' || n % 7, DATE '1990-01-01' FROM generate_series(1, 2000) n;
             INSERT INTO scores (player_id, place, points)
             SELECT 1 + (n * 7919) % 1900, 'place', 1 + n % 50 FROM generate_series(1, 60000) n;",
        )
        .await
        .unwrap();
    let old = Arc::new(OldWeb::connect(&db, &admin).await);

    // The previous web writes on while the migration applies.
    let migrated = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (old, migrated) = (old.clone(), migrated.clone());
        async move {
            let mut written = 0;
            while !migrated.load(Ordering::SeqCst) || written < 50 {
                old.add_score(&format!("p{}", 1 + written % 2000), 3).await;
                written += 1;
            }
            written
        }
    });
    app::db::migrate_up_to(&mut admin, 3).await.unwrap();
    migrated.store(true, Ordering::SeqCst);
    let written = writer.await.unwrap();
    assert!(written >= 50);

    let mismatches: i64 = admin.query_one(MISMATCHES, &[]).await.unwrap().get(0);
    assert_eq!(mismatches, 0, "the totals differ from a recount");
    // Its reads, and the new ranking, agree.
    let new: Vec<(String, i64)> = admin
        .query(
            "SELECT name, total_points FROM player_totals ORDER BY total_points DESC, name LIMIT 10",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(old.ranking().await, new);
    // A player it makes gets a total too.
    old.client
        .execute(
            "INSERT INTO players (name, city, birthdate) VALUES ('late', 'Rome', '1990-01-01')",
            &[],
        )
        .await
        .unwrap();
    old.add_score("late", 5).await;
    let mismatches: i64 = admin.query_one(MISMATCHES, &[]).await.unwrap().get(0);
    assert_eq!(mismatches, 0);
    // It was given nothing new: the totals are the database's own to write.
    let denied = old
        .client
        .execute("UPDATE player_totals SET total_points = 0", &[])
        .await;
    assert!(denied.is_err());
    let role = old.role.clone();
    drop(old);
    admin
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
        .await
        .unwrap();
}
