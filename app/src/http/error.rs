//! One error type for every handler: a user's mistake gets a 4xx that says what to fix,
//! a lost database a 503, anything else a 500 whose details stay in the log.

use axum::{
    Json,
    extract::rejection::{JsonRejection, QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;
use tokio_postgres::error::SqlState;

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    Unavailable(String),
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match self {
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal error".to_owned()
            }
            Self::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                "the database is unavailable, try again shortly".to_owned()
            }
            Self::BadRequest(message) | Self::NotFound(message) | Self::Conflict(message) => {
                message
            }
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        match err {
            deadpool_postgres::PoolError::Backend(err) => err.into(),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(err: tokio_postgres::Error) -> Self {
        if is_connection_failure(&err) {
            Self::Unavailable(err.to_string())
        } else if let Some(reason) = data_exception(&err) {
            Self::BadRequest(reason)
        } else {
            Self::Internal(err.to_string())
        }
    }
}

/// SQLSTATE class 22, a value the server cannot store (a NUL in text, a date out of its
/// range): the request's mistake, in the server's words, which name the value, not the
/// database. The handlers check what they know first; this is the safety net.
fn data_exception(err: &tokio_postgres::Error) -> Option<String> {
    let db_error = err.as_db_error()?;
    db_error
        .code()
        .code()
        .starts_with("22")
        .then(|| format!("invalid value: {}", db_error.message()))
}

/// An error with no SQLSTATE happened on the wire (closed socket, refused connection);
/// the SQLSTATEs below are the server saying it cannot serve now.
fn is_connection_failure(err: &tokio_postgres::Error) -> bool {
    match err.code() {
        None => true,
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::TOO_MANY_CONNECTIONS,
                    // statement_timeout: the database is too slow to answer now.
                    SqlState::QUERY_CANCELED,
                ]
                .contains(code)
        }
    }
}
