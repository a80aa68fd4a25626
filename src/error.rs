//! Errors seen by the web layer, and the one place that turns them into responses.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::access::LinkEnd;
use crate::db::DbError;
use crate::respond::RespondError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("too many failed attempts")]
    RateLimited,
    #[error("too many requests of this kind are waiting")]
    Overloaded,
    #[error("too many sign-in attempts")]
    SignInLimited,
    #[error("too many saves through one link")]
    LinkWritesLimited,
    #[error("the personal link was {0}")]
    LinkEnded(LinkEnd),
    #[error("missing or wrong CSRF token")]
    Csrf,
    #[error("sign-in required")]
    LoginRequired,
    #[error("not allowed for this account")]
    Forbidden,
    #[error("the request cannot be applied in the current state")]
    Conflict,
    #[error("malformed request")]
    BadRequest,
    #[error("request too large")]
    TooLarge,
    #[error(transparent)]
    Respond(#[from] RespondError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("rendering a page failed: {0}")]
    Render(#[from] handlebars::RenderError),
    #[error("a background task failed: {0}")]
    Blocking(String),
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::Blocking(e.to_string())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::Db(DbError::Query(e))
    }
}

/// Which page explains an error status: (title message id, body message id).
#[derive(Debug, Clone, Copy)]
pub struct ErrorPage {
    pub title: &'static str,
    pub body: &'static str,
}

pub fn page_for_status(status: StatusCode) -> ErrorPage {
    let (title, body) = match status.as_u16() {
        404 => ("page-not-found-title", "page-not-found-body"),
        429 => ("too-many-title", "too-many-body"),
        403 => ("csrf-title", "csrf-body"),
        413 => ("too-large-title", "too-large-body"),
        503 => ("unavailable-title", "unavailable-body"),
        _ => ("server-error-title", "server-error-body"),
    };
    ErrorPage { title, body }
}

/// Seconds a client is asked to wait before trying again when the database is unavailable.
pub const RETRY_AFTER_SECONDS: u32 = 10;

impl AppError {
    /// The database is down, unreachable, full or locked: nothing is wrong with the request,
    /// which may be sent again in a moment.
    pub fn is_unavailable(&self) -> bool {
        match self {
            AppError::Db(e) | AppError::Respond(RespondError::Db(e)) => e.is_unavailable(),
            _ => false,
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        if self.is_unavailable() {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        match self {
            AppError::NotFound | AppError::Respond(RespondError::NoSuchSection) => {
                StatusCode::NOT_FOUND
            }
            AppError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            AppError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            AppError::SignInLimited | AppError::LinkWritesLimited => StatusCode::TOO_MANY_REQUESTS,
            AppError::LinkEnded(_) => StatusCode::GONE,
            AppError::Csrf | AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::LoginRequired => StatusCode::SEE_OTHER,
            AppError::Conflict => StatusCode::CONFLICT,
            AppError::BadRequest => StatusCode::BAD_REQUEST,
            AppError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Respond(RespondError::Closed(_))
            | AppError::Respond(RespondError::NotOpenYet)
            | AppError::Respond(RespondError::AlreadySubmitted) => StatusCode::CONFLICT,
            AppError::Respond(RespondError::Db(_))
            | AppError::Db(_)
            | AppError::Render(_)
            | AppError::Blocking(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        // The cause goes to the log; the user sees a page that reveals nothing.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %self, "request failed: database unavailable");
            return HttpResponse::build(status)
                .insert_header((
                    actix_web::http::header::RETRY_AFTER,
                    RETRY_AFTER_SECONDS.to_string(),
                ))
                .finish();
        }
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        if let AppError::LoginRequired = self {
            return HttpResponse::SeeOther()
                .insert_header((actix_web::http::header::LOCATION, "/admin/login"))
                .finish();
        }
        // The body is filled in by the error-page middleware (web::error_pages), which has
        // the templates and the request's language; a specific page travels as an extension.
        let mut res = HttpResponse::build(status).finish();
        let page = match self {
            AppError::Forbidden => Some(("not-allowed-title", "not-allowed-body")),
            AppError::SignInLimited => Some(("too-many-title", "too-many-signins-body")),
            AppError::LinkWritesLimited => Some(("too-many-title", "too-many-saves-body")),
            AppError::LinkEnded(LinkEnd::Revoked) => {
                Some(("link-ended-title", "link-revoked-body"))
            }
            AppError::LinkEnded(LinkEnd::Expired) => {
                Some(("link-ended-title", "link-expired-body"))
            }
            AppError::Overloaded => Some(("overloaded-title", "overloaded-body")),
            _ => None,
        };
        if let Some((title, body)) = page {
            res.extensions_mut().insert(ErrorPage { title, body });
        }
        if let AppError::Overloaded = self {
            res.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from_static("5"),
            );
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_a_503_with_retry_after_and_other_failures_stay_500() {
        let down = AppError::Respond(RespondError::Db(DbError::Connect("refused".into())));
        assert_eq!(down.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        let res = down.error_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            res.headers()
                .get(actix_web::http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("10")
        );
        let page = page_for_status(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(page.title, "unavailable-title");

        let failed = AppError::Db(DbError::Query(diesel::result::Error::NotFound));
        assert_eq!(failed.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(failed
            .error_response()
            .headers()
            .get(actix_web::http::header::RETRY_AFTER)
            .is_none());
    }
}
