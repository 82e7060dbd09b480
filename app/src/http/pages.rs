//! The pages people see: the overall ranking (`/`), a city's (`/cities/{city}`) and a
//! player's (`/players/{name}`), linked to each other. Rendered by maud, which escapes
//! every value it interpolates; links carry names as percent-encoded path segments. No
//! script, one small inline stylesheet, readable on a phone (viewport) and a desktop.

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::{
    AppState,
    error::ApiError,
    players::{self, Player},
    ranking::{self, RankedPlayer},
};

/// How many players a ranking page shows, and scores a player's page.
const TOP: i64 = 20;
const RECENT_SCORES: i64 = 10;

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:40rem;padding:1rem;line-height:1.4;color:#222}
h1{font-size:1.5rem;margin:.5rem 0}
nav{font-size:.9rem;margin-bottom:1rem}
a{color:#0a58ca}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem .3rem;border-bottom:1px solid #ddd}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.total{font-size:2rem;font-weight:600}
@media (max-width:30rem){.city{display:none}}
";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/cities/{city}", get(city))
        .route("/players/{name}", get(player))
}

async fn home(State(state): State<AppState>) -> Result<Markup, Page> {
    let players = ranking::top_players(&state, None, TOP).await?;
    Ok(page(
        "Travial: the ranking",
        html! {
            h1 { "Travial: top " (TOP) }
            (ranking_table(&players, true))
        },
    ))
}

async fn city(State(state): State<AppState>, Path(city): Path<String>) -> Result<Markup, Page> {
    let players = ranking::top_players(&state, Some(&city), TOP).await?;
    Ok(page(
        &format!("Travial: the ranking in {city}"),
        html! {
            nav { a href="/" { "← the overall ranking" } }
            h1 { "Top " (TOP) " in " (city) }
            (ranking_table(&players, false))
        },
    ))
}

async fn player(State(state): State<AppState>, Path(name): Path<String>) -> Result<Markup, Page> {
    let player = players::find(&state, &name, RECENT_SCORES).await?;
    Ok(page(
        &format!("Travial: {}", player.name),
        player_body(&player),
    ))
}

fn ranking_table(players: &[RankedPlayer], with_cities: bool) -> Markup {
    html! {
        @if players.is_empty() {
            p { "No players yet." }
        } @else {
            table {
                thead { tr {
                    th.n { "#" } th { "Player" }
                    @if with_cities { th.city { "City" } }
                    th.n { "Points" }
                } }
                tbody {
                    @for player in players {
                        tr {
                            td.n { (player.rank) }
                            td { a href=(player_link(&player.name)) { (player.name) } }
                            @if with_cities {
                                td.city { a href=(city_link(&player.city)) { (player.city) } }
                            }
                            td.n { (player.total_points) }
                        }
                    }
                }
            }
        }
    }
}

fn player_body(player: &Player) -> Markup {
    html! {
        nav {
            a href="/" { "← the overall ranking" } " · "
            a href=(city_link(&player.city)) { "the ranking in " (player.city) }
        }
        h1 { (player.name) }
        p { "From " a href=(city_link(&player.city)) { (player.city) } }
        p { span.total { (player.total_points) } " points, from " (player.score_count) " scores" }
        @if player.scores.is_empty() {
            p { "No scores yet." }
        } @else {
            h2 { "Recent scores" }
            table {
                thead { tr { th { "Place" } th.n { "Points" } th { "When" } } }
                tbody {
                    @for score in &player.scores {
                        tr {
                            td { (score.place) }
                            td.n { (score.points) }
                            td { (score.scored_at.date()) }
                        }
                    }
                }
            }
        }
    }
}

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

fn player_link(name: &str) -> String {
    format!("/players/{}", utf8_percent_encode(name, NON_ALPHANUMERIC))
}

fn city_link(city: &str) -> String {
    format!("/cities/{}", utf8_percent_encode(city, NON_ALPHANUMERIC))
}

/// An error as a page: its status, and a line a person can read.
struct Page(ApiError);

impl From<ApiError> for Page {
    fn from(err: ApiError) -> Page {
        Page(err)
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let (status, said) = match &self.0 {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "No such player."),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The ranking is unavailable for a moment: please try again shortly.",
            ),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong."),
        };
        // The API's error logs what it must (an internal error's details).
        let _ = self.0.into_response();
        let body = page(
            "Travial",
            html! { nav { a href="/" { "← the overall ranking" } } p { (said) } },
        );
        (status, body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_links_are_path_segments_and_in_text_are_text() {
        assert_eq!(player_link("a/b?c d"), "/players/a%2Fb%3Fc%20d");
        assert_eq!(city_link("São Paulo"), "/cities/S%C3%A3o%20Paulo");
        let row = ranking_table(
            &[RankedPlayer {
                rank: 1,
                name: "<b>ann</b>".into(),
                city: "Rome".into(),
                total_points: 5,
            }],
            true,
        )
        .into_string();
        assert!(row.contains("&lt;b&gt;ann&lt;/b&gt;"), "{row}");
        assert!(!row.contains("<b>"), "{row}");
    }
}
