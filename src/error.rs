//! Errors seen by the web layer, and the one place that turns them into responses.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::access::LinkEnd;
use crate::accounts::AccountError;
use crate::campaign::CampaignError;
use crate::cli::CliError;
use crate::db::{DbError, QueryError};
use crate::mail::MailError;
use crate::respond::RespondError;
use crate::results::export::ExportError;

/// Any error, boxed, as an internal failure's cause.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// An error with its causes on one line ("a: b: c"), for logs and the command line. A cause
/// whose text the line already holds (a message that quotes its source) is not repeated.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        let text = text.trim();
        if !text.is_empty() && !line.contains(text) {
            line.push_str(": ");
            line.push_str(text);
        }
        cause = c.source();
    }
    line
}

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
    /// A failure the user can do nothing about, with its cause for the log.
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl AppError {
    pub fn internal(e: impl Into<Cause>) -> AppError {
        AppError::Internal(e.into())
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::internal(e)
    }
}

impl From<crate::access::LinkError> for AppError {
    fn from(e: crate::access::LinkError) -> Self {
        use crate::access::LinkError;
        match e {
            LinkError::Unknown => AppError::NotFound,
            LinkError::Limited => AppError::RateLimited,
            LinkError::Ended(end) => AppError::LinkEnded(end),
            LinkError::Db(e) => AppError::Db(DbError::Query(e)),
        }
    }
}

impl From<QueryError> for AppError {
    fn from(e: QueryError) -> Self {
        AppError::Db(DbError::Query(e))
    }
}

impl From<CampaignError> for AppError {
    fn from(e: CampaignError) -> Self {
        match e {
            CampaignError::Db(e) => AppError::Db(e),
            CampaignError::Render(e) => AppError::Render(e),
            CampaignError::NoResponse(_) | CampaignError::NotSubmitted(_) => AppError::Conflict,
        }
    }
}

impl From<AccountError> for AppError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Db(e) => AppError::Db(e),
            AccountError::PasswordTooShort
            | AccountError::PasswordTooLong
            | AccountError::BadEmail(_) => AppError::BadRequest,
            AccountError::Exists(_) => AppError::Conflict,
            e @ AccountError::Hash(_) => AppError::internal(e),
        }
    }
}

impl From<MailError> for AppError {
    fn from(e: MailError) -> Self {
        match e {
            MailError::Db(e) => AppError::Db(e),
            e => AppError::internal(e),
        }
    }
}

impl From<ExportError> for AppError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Db(e) => AppError::Db(DbError::Query(e)),
            e => AppError::internal(e),
        }
    }
}

impl From<csv::Error> for AppError {
    fn from(e: csv::Error) -> Self {
        AppError::internal(e)
    }
}

impl From<serde_json::Error> for AppError {
    fn from(e: serde_json::Error) -> Self {
        AppError::internal(e)
    }
}

// The command line's errors: a database failure stays one (main prints its chain); anything
// else keeps its cause.

impl From<CampaignError> for CliError {
    fn from(e: CampaignError) -> Self {
        match e {
            CampaignError::Db(e) => CliError::Db(e),
            e => CliError::Failed(Box::new(e)),
        }
    }
}

impl From<AccountError> for CliError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Db(e) => CliError::Db(e),
            e => CliError::Failed(Box::new(e)),
        }
    }
}

impl From<MailError> for CliError {
    fn from(e: MailError) -> Self {
        match e {
            MailError::Db(e) => CliError::Db(e),
            e => CliError::Failed(Box::new(e)),
        }
    }
}

impl From<ExportError> for CliError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Db(e) => CliError::Db(DbError::Query(e)),
            e => CliError::Failed(Box::new(e)),
        }
    }
}

impl From<csv::Error> for CliError {
    fn from(e: csv::Error) -> Self {
        CliError::Failed(Box::new(e))
    }
}

impl From<handlebars::TemplateError> for CliError {
    fn from(e: handlebars::TemplateError) -> Self {
        CliError::Failed(Box::new(e))
    }
}

impl From<crate::results::demo::DemoError> for CliError {
    fn from(e: crate::results::demo::DemoError) -> Self {
        use crate::results::demo::DemoError;
        match e {
            DemoError::Db(e) => CliError::Db(DbError::Query(e)),
            e => CliError::Failed(Box::new(e)),
        }
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
        // 405: a method a page does not serve (a GET of a form's action, say): no such page.
        404 | 405 => ("page-not-found-title", "page-not-found-body"),
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

/// Seconds a client is asked to wait when too many requests of its kind are already waiting on
/// this node (sign-ins, uploads, zip exports): a turn comes sooner than a database comes back.
pub const OVERLOADED_RETRY_AFTER_SECONDS: u32 = 5;

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
            AppError::NotFound
            | AppError::Respond(RespondError::NoSuchSection)
            | AppError::Respond(RespondError::NotSubmitter)
            | AppError::Respond(RespondError::NotApprover) => StatusCode::NOT_FOUND,
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
            | AppError::Respond(RespondError::AlreadySubmitted)
            | AppError::Respond(RespondError::State(_))
            | AppError::Respond(RespondError::SignOffRequired) => StatusCode::CONFLICT,
            AppError::Respond(RespondError::Invalid { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Respond(RespondError::Db(_))
            | AppError::Respond(RespondError::Email(_))
            | AppError::Db(_)
            | AppError::Render(_)
            | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        // The cause goes to the log; the user sees a page that reveals nothing. Only an
        // unavailable database takes this way: an overloaded node is a 503 too, but has its
        // own page and a shorter wait (below).
        if self.is_unavailable() {
            tracing::error!(error = %chain(self), "request failed: database unavailable");
            return HttpResponse::build(status)
                .insert_header((
                    actix_web::http::header::RETRY_AFTER,
                    RETRY_AFTER_SECONDS.to_string(),
                ))
                .finish();
        }
        if let AppError::Overloaded = self {
            tracing::warn!("request refused: {self}");
        } else if status.is_server_error() {
            tracing::error!(error = %chain(self), "request failed");
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
                actix_web::http::header::HeaderValue::from(OVERLOADED_RETRY_AFTER_SECONDS),
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
        let down = AppError::Respond(RespondError::Db(DbError::Connect {
            file: None,
            source: "refused".into(),
        }));
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

        let failed = AppError::Db(DbError::Query(QueryError::NotFound));
        assert_eq!(failed.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(failed
            .error_response()
            .headers()
            .get(actix_web::http::header::RETRY_AFTER)
            .is_none());
    }

    #[test]
    fn an_overloaded_node_is_a_503_with_its_own_page_and_a_shorter_wait() {
        let busy = AppError::Overloaded;
        assert!(!busy.is_unavailable());
        let res = busy.error_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            res.headers()
                .get(actix_web::http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("5")
        );
        let page = res.extensions().get::<ErrorPage>().copied();
        assert_eq!(page.map(|p| p.title), Some("overloaded-title"));
        assert_eq!(page.map(|p| p.body), Some("overloaded-body"));

        // An unavailable database keeps the generic page (no extension) and its 10 s.
        let down = AppError::Db(DbError::Connect {
            file: None,
            source: "refused".into(),
        });
        let res = down.error_response();
        assert!(res.extensions().get::<ErrorPage>().is_none());
    }

    #[test]
    fn the_cause_chain_is_kept_and_printed_once() {
        // A CSV failure inside a campaign's export reaches the response with its cause.
        let io = std::io::Error::other("disk gone");
        let failed = AppError::from(csv::Error::from(io));
        assert_eq!(failed.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        let source = std::error::Error::source(&failed).map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("disk gone"));
        assert_eq!(chain(&failed), "internal error: disk gone");
        // A message that already quotes its source does not repeat it.
        let db = AppError::Db(DbError::Connect {
            file: Some("x.db".into()),
            source: "unable to open database file\n".into(),
        });
        assert_eq!(
            chain(&db),
            "cannot connect to the database: x.db: unable to open database file"
        );
        // Campaign errors map to the status they always had.
        let conflict = AppError::from(CampaignError::NotSubmitted("SWE".into()));
        assert_eq!(conflict.status_code(), StatusCode::CONFLICT);
    }

    #[test]
    fn domain_errors_become_command_line_errors_with_their_cause() {
        let db = CliError::from(CampaignError::Db(DbError::Query(QueryError::NotFound)));
        assert!(matches!(db, CliError::Db(_)));
        let csv_failure = csv::Error::from(std::io::Error::other("disk gone"));
        let failed = CliError::from(ExportError::Csv(csv_failure));
        assert!(matches!(failed, CliError::Failed(_)));
        assert_eq!(chain(&failed), "writing CSV: disk gone");
        let refused = CliError::from(CampaignError::NotSubmitted("SWE".into()));
        assert_eq!(refused.to_string(), "the response of SWE is not submitted");
        let mail = CliError::from(MailError::Db(DbError::Query(QueryError::NotFound)));
        assert!(matches!(mail, CliError::Db(_)));
        let account = AppError::from(AccountError::Exists("a@b.org".into()));
        assert_eq!(account.status_code(), StatusCode::CONFLICT);
    }
}
