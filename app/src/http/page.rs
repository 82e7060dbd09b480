//! The one server-rendered page: the top of the ranking.

use axum::{Router, extract::State, response::Html, routing::get};

use super::{AppState, error::ApiError, ranking};

const TOP: i64 = 10;

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

async fn home(State(state): State<AppState>) -> Result<Html<String>, ApiError> {
    let players = ranking::top_players(&state, None, TOP).await?;
    let rows: String = players
        .iter()
        .map(|player| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                player.rank,
                escape(&player.name),
                escape(&player.city),
                player.total_points
            )
        })
        .collect();
    let body = if rows.is_empty() {
        "<p>No players yet.</p>".to_owned()
    } else {
        format!(
            "<table>\n<tr><th>#</th><th>Player</th><th>City</th><th>Points</th></tr>\n{rows}</table>"
        )
    };
    Ok(Html(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>Travial ranking</title></head>\n<body>\n<h1>Travial: top {TOP}</h1>\n{body}\n</body>\n</html>\n"
    )))
}

/// Player names and cities are user input: escape them before they reach HTML.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_in_user_input_is_escaped() {
        assert_eq!(
            super::escape(r#"<b a="1">'&'</b>"#),
            "&lt;b a=&quot;1&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;"
        );
    }
}
