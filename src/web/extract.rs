//! Request extractors: the plumbing every handler needs, done before it runs.
//!
//! - [`Lang`]: the interface language chosen for this request.
//! - [`CsrfForm`]: a posted form whose CSRF token was checked for what the route acts for (the
//!   personal link, the setup link, the session or nobody), deserialised into `T`.
//! - [`Admin`]: the signed-in administrator or owner.
//! - [`SurveyAdmin`]: the signed-in user together with the survey of the route's `{id}`, which
//!   they may see (administrators: every survey; owners: their own).
//! - [`read_file_form`]: a form of one file and its CSRF token (the contacts CSV, the filled
//!   workbook), within bounds.
//!
//! A handler then reads: extract, call the domain, render or redirect.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::{csrf, AppState};
use crate::accounts::{self, User};
use crate::db::{DbConn, DbError};
use crate::error::AppError;
use crate::survey::Survey;

/// The application state behind a request.
pub fn state_of(req: &HttpRequest) -> Result<web::Data<AppState>, AppError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::internal("application state missing"))
}

/// Run `work` on a pooled connection in a blocking task.
pub async fn with_conn<T, F>(state: &web::Data<AppState>, work: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
{
    let pool = state.pool.clone();
    let asked = std::time::Instant::now();
    web::block(move || {
        let mut conn = pool
            .get_timeout(crate::db::wait_left(asked))
            .map_err(DbError::from)?;
        work(&mut conn)
    })
    .await?
}

/// The interface language of the request, decided once by the `with_language` middleware.
#[derive(Debug, Clone, Copy)]
pub struct Lang(pub &'static str);

impl FromRequest for Lang {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(_: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Lang(super::page_language())))
    }
}

/// The session cookie: `__Host-` prefixed under https, so a sibling subdomain cannot plant
/// one of its own (session fixation); the prefix requires `Path=/`.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-coherence_session"
    } else {
        "coherence_session"
    }
}

/// The session cookie's value ('' when signed out): what admin forms are bound to.
pub fn session_token(req: &HttpRequest, secure: bool) -> String {
    req.cookie(session_cookie_name(secure))
        .map(|c| c.value().to_string())
        .unwrap_or_default()
}

/// What a form posted to this route acts for, and so which token it must carry.
enum FormOwner {
    Anonymous,
    Session(String),
    Link(String),
    Setup(String),
}

impl FormOwner {
    fn of(req: &HttpRequest, secure: bool) -> Result<FormOwner, AppError> {
        let path = req.path();
        let token = req.match_info().get("token").map(str::to_string);
        match token {
            Some(t) if path.starts_with("/r/") => return Ok(FormOwner::Link(t)),
            Some(t) if path.starts_with("/admin/setup/") => return Ok(FormOwner::Setup(t)),
            _ => {}
        }
        if path == "/admin/login" {
            return Ok(FormOwner::Anonymous);
        }
        let session = session_token(req, secure);
        if session.is_empty() {
            // Not signed in: the form cannot act for anyone; say so before judging its token.
            return Err(AppError::LoginRequired);
        }
        Ok(FormOwner::Session(session))
    }

    fn binding(&self) -> csrf::Binding<'_> {
        match self {
            FormOwner::Anonymous => csrf::Binding::Anonymous,
            FormOwner::Session(s) => csrf::Binding::Session(s),
            FormOwner::Link(l) => csrf::Binding::Link(l),
            FormOwner::Setup(s) => csrf::Binding::Setup(s),
        }
    }
}

/// A url-encoded form, its CSRF token checked before the handler runs, parsed into `T`.
/// `T = Vec<(String, String)>` keeps every pair in order (section forms, repeated names).
/// Fields missing from the body take `T`'s serde defaults; a body that does not fit `T` is a
/// bad request.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let body = body.await?;
            let state = state_of(&req)?;
            let owner = FormOwner::of(&req, state.settings.is_https())?;
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&body).map_err(|_| AppError::BadRequest)?;
            csrf::verify(&req, &state.settings, &pairs, owner.binding())?;
            let form = serde_urlencoded::from_bytes(&body).map_err(|_| AppError::BadRequest)?;
            Ok(CsrfForm(form))
        })
    }
}

/// Check the CSRF token of a form read by the handler itself (a multipart section form), for
/// what the route acts for, as [`CsrfForm`] does.
pub fn verify_form(req: &HttpRequest, pairs: &[(String, String)]) -> Result<(), AppError> {
    let state = state_of(req)?;
    let owner = FormOwner::of(req, state.settings.is_https())?;
    csrf::verify(req, &state.settings, pairs, owner.binding())
}

/// The signed-in administrator or survey owner; otherwise the browser is sent to sign in.
pub struct Admin {
    pub user: User,
}

async fn signed_in_user(state: &web::Data<AppState>, req: &HttpRequest) -> Result<User, AppError> {
    let token = session_token(req, state.settings.is_https());
    if token.is_empty() {
        return Err(AppError::LoginRequired);
    }
    with_conn(state, move |conn| {
        Ok(accounts::session_user(
            conn,
            &token,
            crate::campaign::now(),
        )?)
    })
    .await?
    .ok_or(AppError::LoginRequired)
}

impl FromRequest for Admin {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state_of(&req)?;
            Ok(Admin {
                user: signed_in_user(&state, &req).await?,
            })
        })
    }
}

/// The signed-in user and the survey named by the route's `{id}`, which they may see.
/// Unknown surveys are 404; another owner's survey is 403.
pub struct SurveyAdmin {
    pub user: User,
    pub survey: Arc<Survey>,
}

/// The user, if allowed to see the survey (administrators: all; owners: their own).
pub async fn survey_admin(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    survey_id: &str,
) -> Result<SurveyAdmin, AppError> {
    let user = signed_in_user(state, req).await?;
    let survey = state
        .catalog
        .get(survey_id)
        .cloned()
        .ok_or(AppError::NotFound)?;
    let (u, id) = (user.clone(), survey_id.to_string());
    let allowed = with_conn(state, move |conn| {
        Ok(accounts::may_see_survey(conn, &u, &id)?)
    })
    .await?;
    if !allowed {
        return Err(AppError::Forbidden);
    }
    Ok(SurveyAdmin { user, survey })
}

impl FromRequest for SurveyAdmin {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state_of(&req)?;
            let id = req.match_info().get("id").unwrap_or_default().to_string();
            Ok(survey_admin(&state, &req, &id).await?)
        })
    }
}

/// A body whose declared length is over `limit` is refused (413) before any of it is read;
/// the reader still counts what actually arrives.
pub fn refuse_declared_over(req: &HttpRequest, limit: u64) -> Result<(), AppError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(AppError::TooLarge);
    }
    Ok(())
}

/// Largest other field of a one-file form (the CSRF token is 64 characters).
const MAX_FILE_FORM_FIELD: usize = 1024;
/// Room for a one-file form's multipart boundaries and part headers.
const MAX_FILE_FORM_ENVELOPE: usize = 64 * 1024;
/// Parts of a one-file form read at most (it has two).
const MAX_FILE_FORM_PARTS: usize = 8;

/// A form of one file (field `file`) and its CSRF token, as the contacts import and the
/// workbook upload send it: the token comes first (the form's first field) and is checked as
/// soon as it is read, so a forged form is refused before its file is held; the file is at
/// most `limit` bytes, the other fields 1 KB, the whole body a little more, a few parts.
pub async fn read_file_form(
    req: &HttpRequest,
    mut payload: actix_multipart::Multipart,
    limit: usize,
) -> Result<Vec<u8>, AppError> {
    use futures_util::StreamExt;
    // A declared body larger than the file and its envelope is refused before it is read (a
    // part's headers are not counted below).
    refuse_declared_over(req, (limit + MAX_FILE_FORM_ENVELOPE) as u64)?;
    let mut file = Vec::new();
    let (mut parts, mut total, mut verified) = (0, 0usize, false);
    while let Some(item) = payload.next().await {
        parts += 1;
        if parts > MAX_FILE_FORM_PARTS {
            return Err(AppError::BadRequest);
        }
        let mut part = item.map_err(|_| AppError::BadRequest)?;
        let name = part.name().unwrap_or("").to_string();
        if name == "file" && !verified {
            return Err(AppError::Csrf);
        }
        let part_limit = if name == "file" {
            limit
        } else {
            MAX_FILE_FORM_FIELD
        };
        let mut data = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|_| AppError::BadRequest)?;
            total += chunk.len();
            if data.len() + chunk.len() > part_limit || total > limit + MAX_FILE_FORM_FIELD {
                return Err(AppError::TooLarge);
            }
            data.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "file" => file = data,
            csrf::FIELD => {
                let token = String::from_utf8_lossy(&data).into_owned();
                verify_form(req, &[(name, token)])?;
                verified = true;
            }
            _ => {}
        }
    }
    if !verified {
        return Err(AppError::Csrf);
    }
    Ok(file)
}
