//! Administrators' and survey owners' pages: sign-in, the round's status table, contacts,
//! invitations and reminders, deadline extensions and reopened responses.

use actix_multipart::Multipart;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::{json, Value as Json};

use super::render::translate;
use super::{csrf, AppState};
use crate::accounts::{self, User, MIN_PASSWORD_CHARS};
use crate::campaign::{self, Campaign, SORT_KEYS};
use crate::contacts;
use crate::db::{DbConn, DbError};
use crate::error::AppError;
use crate::mail;

/// The session cookie: `__Host-` prefixed under https, so a sibling subdomain cannot plant
/// one of its own (session fixation); the prefix requires `Path=/`.
fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-coherence_session"
    } else {
        "coherence_session"
    }
}
/// Largest contact file accepted.
const MAX_CSV_BYTES: usize = 2 * 1024 * 1024;
/// Largest other field of the contacts form (the CSRF token is 64 characters).
const MAX_FIELD_BYTES: usize = 1024;
/// Room for the contacts form's multipart boundaries and part headers.
const MAX_ENVELOPE_BYTES: usize = 64 * 1024;
/// Parts of the contacts form read at most (it has two).
const MAX_IMPORT_PARTS: usize = 8;

fn t(id: &str, args: &[(&str, String)]) -> String {
    translate(super::page_language(), id, args)
}

fn secure(state: &AppState) -> bool {
    state.settings.is_https()
}

/// The session cookie's value ('' when signed out): what admin forms are bound to.
fn session_token(req: &HttpRequest, secure: bool) -> String {
    req.cookie(session_cookie_name(secure))
        .map(|c| c.value().to_string())
        .unwrap_or_default()
}

/// Check an admin form posted within the current session.
fn verify_session_form(
    state: &AppState,
    req: &HttpRequest,
    form: &[(String, String)],
) -> Result<(), AppError> {
    let session = session_token(req, secure(state));
    if session.is_empty() {
        // Not signed in: the form cannot act for anyone; say so before judging its token.
        return Err(AppError::LoginRequired);
    }
    csrf::verify(req, &state.settings, form, session_binding(&session))
}

fn session_binding(session: &str) -> csrf::Binding<'_> {
    if session.is_empty() {
        csrf::Binding::Anonymous
    } else {
        csrf::Binding::Session(session)
    }
}

pub(super) fn no_store(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

/// Run `work` on a pooled connection in a blocking task.
pub(super) async fn with_conn<T, F>(state: &web::Data<AppState>, work: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
{
    let pool = state.pool.clone();
    web::block(move || {
        let mut conn = pool.get().map_err(DbError::from)?;
        work(&mut conn)
    })
    .await?
}

/// The signed-in user, or an error that sends the browser to the sign-in page.
async fn current_user(state: &web::Data<AppState>, req: &HttpRequest) -> Result<User, AppError> {
    let Some(cookie) = req.cookie(session_cookie_name(secure(state))) else {
        return Err(AppError::LoginRequired);
    };
    let token = cookie.value().to_string();
    with_conn(state, move |conn| {
        Ok(accounts::session_user(conn, &token, campaign::now())?)
    })
    .await?
    .ok_or(AppError::LoginRequired)
}

/// The user, if allowed to see the survey (administrators: all; owners: their own).
pub(super) async fn survey_user(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    survey_id: &str,
) -> Result<(User, std::sync::Arc<crate::survey::Survey>), AppError> {
    let user = current_user(state, req).await?;
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
    Ok((user, survey))
}

/// An admin page whose forms act within the current session.
pub(super) fn page(
    state: &AppState,
    req: &HttpRequest,
    name: &str,
    data: Json,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let session = session_token(req, secure(state));
    page_bound(state, req, name, data, status, session_binding(&session))
}

/// An admin page whose forms act for `binding` (the sign-in and setup pages).
fn page_bound(
    state: &AppState,
    req: &HttpRequest,
    name: &str,
    mut data: Json,
    status: StatusCode,
    binding: csrf::Binding,
) -> Result<HttpResponse, AppError> {
    let token = csrf::form_token(req, binding, secure(state));
    let lang = super::page_language();
    if let Json::Object(map) = &mut data {
        map.insert("csrf".into(), Json::String(token.token.clone()));
        map.insert(
            "languages".into(),
            super::language::links(req, |_| true, lang),
        );
        map.entry("page_title")
            .or_insert(Json::String(t("admin-title", &[])));
    }
    let mut res = state.page(name, lang, data)?;
    *res.status_mut() = status;
    token.set_cookie(&mut res, secure(state));
    super::language::remember(req, &mut res, secure(state));
    Ok(no_store(res))
}

fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

pub async fn login_form(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    login_page(&state, &req, json!({}), StatusCode::OK)
}

fn login_page(
    state: &AppState,
    req: &HttpRequest,
    data: Json,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    page_bound(
        state,
        req,
        "admin/login",
        data,
        status,
        csrf::Binding::Anonymous,
    )
}

/// Longest email address (RFC 5321) and password taken from the sign-in form.
const MAX_EMAIL_BYTES: usize = 320;

pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = parse_form(&body);
    csrf::verify(&req, &state.settings, &form, csrf::Binding::Anonymous)?;
    let email = field(&form, "email").to_string();
    let password = field(&form, "password").to_string();
    let address = crate::access::address_subject(super::client_address(&req, &state.settings));
    let device = req
        .cookie(device_cookie_name(secure(&state)))
        .map(|c| c.value().to_string())
        .filter(|d| crate::access::looks_like_session(d));
    let oversized =
        email.len() > MAX_EMAIL_BYTES || password.chars().count() > accounts::MAX_PASSWORD_CHARS;
    // 1. Count the attempt and fetch the hash; the connection goes back to the pool.
    let (e, a, d) = (email.clone(), address.clone(), device.clone());
    let admission = with_conn(&state, move |conn| {
        let attempt = accounts::SignInAttempt {
            email: &e,
            address: &a,
            device: d.as_deref(),
        };
        Ok(accounts::admit_sign_in(conn, &attempt, campaign::now())?)
    })
    .await?;
    let (user, counted) = match admission {
        accounts::Admission::Refused => return Err(AppError::SignInLimited),
        accounts::Admission::Check(user, counted) => (user, counted),
    };
    // 2. Check the password, a bounded number at a time, holding no connection.
    let matched = if oversized {
        None
    } else {
        state
            .passwords
            .run(move || accounts::password_matches(user.as_ref(), &password).then_some(user))
            .await
            .ok_or(AppError::Overloaded)?
            .flatten()
    };
    let Some(user) = matched else {
        return login_page(
            &state,
            &req,
            json!({"failed": true, "email": email}),
            StatusCode::UNAUTHORIZED,
        );
    };
    // 3. Open the session.
    let signed_in = with_conn(&state, move |conn| {
        Ok(accounts::complete_sign_in(
            conn,
            &user,
            device.as_deref(),
            &counted,
            campaign::now(),
        )?)
    })
    .await?;
    let mut res = redirect("/admin");
    // A fresh session id at every sign-in, and a fresh CSRF secret with it.
    let cookie = Cookie::build(session_cookie_name(secure(&state)), signed_in.session)
        .path("/")
        .http_only(true)
        .secure(secure(&state))
        .same_site(SameSite::Strict)
        .finish();
    let _ = res.add_cookie(&cookie);
    let device = Cookie::build(device_cookie_name(secure(&state)), signed_in.device)
        .path("/")
        .http_only(true)
        .secure(secure(&state))
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::days(365))
        .finish();
    let _ = res.add_cookie(&device);
    csrf::rotate(&mut res, secure(&state));
    Ok(res)
}

/// The cookie that marks a browser that signed in before (`__Host-` under https).
fn device_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-coherence_device"
    } else {
        "coherence_device"
    }
}

pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    verify_session_form(&state, &req, &parse_form(&body))?;
    if let Some(cookie) = req.cookie(session_cookie_name(secure(&state))) {
        let token = cookie.value().to_string();
        with_conn(&state, move |conn| {
            Ok(accounts::close_session(conn, &token)?)
        })
        .await?;
    }
    let mut res = redirect("/admin/login");
    let mut gone = Cookie::build(session_cookie_name(secure(&state)), "")
        .path("/")
        .finish();
    gone.make_removal();
    let _ = res.add_cookie(&gone);
    csrf::rotate(&mut res, secure(&state));
    Ok(res)
}

/// A setup link that is unknown, expired or already used.
fn setup_expired(state: &AppState, req: &HttpRequest) -> Result<HttpResponse, AppError> {
    let title = t("admin-setup-title", &[]);
    page(
        state,
        req,
        "message",
        json!({"title": title, "body": t("admin-setup-expired", &[])}),
        StatusCode::NOT_FOUND,
    )
}

pub async fn setup_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let tk = token.clone();
    let user = with_conn(&state, move |conn| {
        Ok(accounts::find_by_setup_token(conn, &tk, campaign::now())?)
    })
    .await?;
    match user {
        Some(u) => page_bound(
            &state,
            &req,
            "admin/setup",
            json!({"email": u.email, "token": token, "min": MIN_PASSWORD_CHARS}),
            StatusCode::OK,
            csrf::Binding::Setup(&token),
        ),
        None => setup_expired(&state, &req),
    }
}

pub async fn setup(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = parse_form(&body);
    let token = path.into_inner();
    csrf::verify(&req, &state.settings, &form, csrf::Binding::Setup(&token))?;
    let password = field(&form, "password").to_string();
    let tk = token.clone();
    let user = with_conn(&state, move |conn| {
        Ok(accounts::find_by_setup_token(conn, &tk, campaign::now())?)
    })
    .await?;
    let Some(user) = user else {
        return setup_expired(&state, &req);
    };
    // Hashing the new password is an argon2 run like a sign-in's: it queues the same way.
    let hashed = state
        .passwords
        .run(move || accounts::hash_password(&password))
        .await
        .ok_or(AppError::Overloaded)?;
    let outcome = match hashed {
        Ok(hash) => {
            let id = user.id.clone();
            with_conn(&state, move |conn| {
                Ok(accounts::set_password_hash(conn, &id, &hash)?)
            })
            .await?;
            Ok(())
        }
        Err(accounts::AccountError::Db(e)) => return Err(AppError::Db(e)),
        Err(e) => Err((user.email, e.to_string())),
    };
    match outcome {
        Ok(()) => login_page(
            &state,
            &req,
            json!({"notice": t("admin-setup-done", &[])}),
            StatusCode::OK,
        ),
        Err((email, error)) => page_bound(
            &state,
            &req,
            "admin/setup",
            json!({"email": email, "token": token, "min": MIN_PASSWORD_CHARS, "error": error}),
            StatusCode::UNPROCESSABLE_ENTITY,
            csrf::Binding::Setup(&token),
        ),
    }
}

pub async fn dashboard(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let user = current_user(&state, &req).await?;
    let mut surveys = Vec::new();
    for s in state.catalog.iter() {
        let (u, id) = (user.clone(), s.id.clone());
        if with_conn(&state, move |conn| {
            Ok(accounts::may_see_survey(conn, &u, &id)?)
        })
        .await?
        {
            surveys.push(json!({"id": s.id, "title": s.title.get(super::page_language())}));
        }
    }
    page(
        &state,
        &req,
        "admin/dashboard",
        json!({"email": user.email, "role": user.role, "surveys": surveys}),
        StatusCode::OK,
    )
}

#[derive(serde::Deserialize)]
pub struct SortQuery {
    sort: Option<String>,
}

fn sort_key(q: &SortQuery) -> String {
    let s = q.sort.clone().unwrap_or_else(|| "country".into());
    if SORT_KEYS.contains(&s.trim_start_matches('-')) {
        s
    } else {
        "country".into()
    }
}

/// The survey's page, with optional messages from an action just taken.
async fn survey_page(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    user: &User,
    survey: &crate::survey::Survey,
    sort: &str,
    extra: Json,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let app = state.clone();
    let (id, sort_owned) = (survey.id.clone(), sort.to_string());
    // Read here: the blocking task runs outside the request's language scope.
    let lang = super::page_language();
    let (rows, failures, counts) = with_conn(state, move |conn| {
        let Some(s) = app.catalog.get(&id) else {
            return Err(AppError::NotFound);
        };
        let rows = campaign::status_table(conn, s, &app.countries, &sort_owned, lang)
            .map_err(campaign_error)?;
        let failures = mail::failures(conn, &id)?;
        let counts = mail::counts(conn, &id)?;
        Ok((rows, failures, counts))
    })
    .await?;
    let count = |status: &str| {
        counts
            .iter()
            .find(|(s, _)| s == status)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let outbox = t(
        "admin-outbox",
        &[
            (
                "pending",
                (count(mail::STATUS_PENDING) + count(mail::STATUS_SENDING)).to_string(),
            ),
            ("sent", count(mail::STATUS_SENT).to_string()),
            ("failed", count(mail::STATUS_FAILED).to_string()),
        ],
    );
    let labels = [
        ("country", "admin-col-country"),
        ("contacts", "admin-col-contacts"),
        ("invited", "admin-col-invited"),
        ("opened", "admin-col-opened"),
        ("progress", "admin-col-progress"),
        ("submitted", "admin-col-submitted"),
        ("reminder", "admin-col-reminder"),
        ("errors", "admin-col-errors"),
    ];
    let columns: Vec<Json> = labels
        .iter()
        .map(|(key, label)| {
            let (sorted, next) = if sort == *key {
                ("ascending", format!("-{key}"))
            } else if sort == format!("-{key}") {
                ("descending", key.to_string())
            } else {
                ("", key.to_string())
            };
            json!({"label": t(label, &[]), "next": next, "sorted": (!sorted.is_empty()).then_some(sorted)})
        })
        .collect();
    let rows: Vec<Json> = rows
        .into_iter()
        .map(|mut r| {
            if r.invited.as_deref() == Some("queued") {
                r.invited = Some(t("admin-queued", &[]));
            }
            serde_json::to_value(r).unwrap_or_default()
        })
        .collect();
    let failures: Vec<String> = failures
        .iter()
        .map(|f| {
            t(
                "admin-failure-row",
                &[
                    ("recipient", f.recipient.clone()),
                    ("kind", f.kind.to_string()),
                    ("error", f.last_error.clone().unwrap_or_default()),
                ],
            )
        })
        .collect();
    let mut data = json!({
        "id": survey.id,
        "title": survey.title.get(super::page_language()),
        "page_title": survey.title.get(super::page_language()),
        "rows": rows,
        "columns": columns,
        "sort": sort,
        "failures": failures,
        "outbox": outbox,
        "is_admin": user.is_admin(),
        "may_manage": true,
        "mail_on": state.mailer.is_some(),
    });
    if let (Json::Object(map), Json::Object(extra)) = (&mut data, extra) {
        map.extend(extra);
    }
    page(state, req, "admin/survey", data, status)
}

fn campaign_error(e: campaign::CampaignError) -> AppError {
    match e {
        campaign::CampaignError::Db(e) => AppError::Db(e),
        campaign::CampaignError::Render(e) => AppError::Render(e),
        campaign::CampaignError::NoResponse(_) | campaign::CampaignError::NotSubmitted(_) => {
            AppError::Conflict
        }
    }
}

pub async fn survey(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<SortQuery>,
) -> Result<HttpResponse, AppError> {
    let (user, survey) = survey_user(&state, &req, &path).await?;
    survey_page(
        &state,
        &req,
        &user,
        &survey,
        &sort_key(&query),
        json!({}),
        StatusCode::OK,
    )
    .await
}

pub async fn status_csv(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<SortQuery>,
) -> Result<HttpResponse, AppError> {
    let (_, survey) = survey_user(&state, &req, &path).await?;
    let app = state.clone();
    let sort = sort_key(&query);
    let csv = with_conn(&state, move |conn| {
        let rows =
            // The CSV is data: English names, whatever the page's language.
            campaign::status_table(conn, &survey, &app.countries, &sort, "en")
                .map_err(campaign_error)?;
        campaign::status_csv(&survey, &rows).map_err(|e| AppError::Blocking(e.to_string()))
    })
    .await?;
    Ok(csv_response(csv, &format!("{}-status.csv", path.as_str())))
}

pub(super) fn csv_response(body: String, filename: &str) -> HttpResponse {
    no_store(
        HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ))
            .body(body),
    )
}

pub async fn contacts_csv(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (user, survey) = survey_user(&state, &req, &path).await?;
    if !user.is_admin() {
        return Err(AppError::Forbidden);
    }
    let id = survey.id.clone();
    let csv = with_conn(&state, move |conn| {
        let list = contacts::list(conn, &id)?;
        contacts::to_csv(&list).map_err(|e| AppError::Blocking(e.to_string()))
    })
    .await?;
    Ok(csv_response(csv, &format!("{}-contacts.csv", survey.id)))
}

pub async fn import_contacts(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    mut payload: Multipart,
) -> Result<HttpResponse, AppError> {
    let (user, survey) = survey_user(&state, &req, &path).await?;
    if !user.is_admin() {
        return Err(AppError::Forbidden);
    }
    // A declared body larger than the file and its envelope is refused before it is read (a
    // part's headers are not counted below).
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_CSV_BYTES + MAX_ENVELOPE_BYTES) {
        return Err(AppError::TooLarge);
    }
    // The form has two parts: the CSRF token and the file. Other parts are ignored, a few
    // at most are read, and the whole body is bounded (the file, plus a little for the rest).
    let mut form = Vec::new();
    let mut file: Vec<u8> = Vec::new();
    let mut parts = 0;
    let mut total = 0usize;
    while let Some(item) = payload.next().await {
        parts += 1;
        if parts > MAX_IMPORT_PARTS {
            return Err(AppError::BadRequest);
        }
        let mut part = item.map_err(|_| AppError::BadRequest)?;
        let name = part.name().unwrap_or("").to_string();
        let limit = if name == "file" {
            MAX_CSV_BYTES
        } else {
            MAX_FIELD_BYTES
        };
        let mut data = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|_| AppError::BadRequest)?;
            total += chunk.len();
            if data.len() + chunk.len() > limit || total > MAX_CSV_BYTES + MAX_FIELD_BYTES {
                return Err(AppError::TooLarge);
            }
            data.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "file" => file = data,
            csrf::FIELD => form.push((name, String::from_utf8_lossy(&data).into_owned())),
            _ => {}
        }
    }
    verify_session_form(&state, &req, &form)?;
    let rows = contacts::parse_csv(&file, state.countries.as_ref(), survey.unit);
    let (extra, status) = match rows {
        Err(errors) => {
            let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            (
                json!({"import_errors": list}),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Ok(rows) => {
            let id = survey.id.clone();
            let s = with_conn(&state, move |conn| {
                Ok(contacts::import(conn, &id, &rows, campaign::now())?)
            })
            .await?;
            let msg = t(
                "admin-import-done",
                &[
                    ("added", s.added.to_string()),
                    ("updated", s.updated.to_string()),
                    ("unchanged", s.unchanged.to_string()),
                ],
            );
            (json!({"messages": [msg]}), StatusCode::OK)
        }
    };
    survey_page(&state, &req, &user, &survey, "country", extra, status).await
}

fn campaign_for<'a>(
    state: &'a AppState,
    survey: &'a crate::survey::Survey,
    help: &'a str,
) -> Campaign<'a> {
    Campaign {
        survey,
        countries: &state.countries,
        emails: &state.emails,
        base_url: &state.settings.base_url,
        help,
    }
}

#[derive(Clone, Copy)]
enum Round {
    Invite,
    Remind,
}

async fn round(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    which: Round,
) -> Result<HttpResponse, AppError> {
    let form = parse_form(&body);
    verify_session_form(&state, &req, &form)?;
    let (user, survey) = survey_user(&state, &req, &path).await?;
    if !user.is_admin() {
        return Err(AppError::Forbidden);
    }
    let only: Vec<String> = field(&form, "countries")
        .split([',', ' ', ';'])
        .map(|c| c.trim().to_uppercase())
        .filter(|c| !c.is_empty())
        .collect();
    let unknown: Vec<&str> = only
        .iter()
        .filter(|c| state.countries.get(c).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let error = t("admin-bad-countries", &[("codes", unknown.join(", "))]);
        return survey_page(
            &state,
            &req,
            &user,
            &survey,
            "country",
            json!({ "error": error }),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let Some(mailer) = state.mailer.clone() else {
        return survey_page(
            &state,
            &req,
            &user,
            &survey,
            "country",
            json!({"error": t("admin-mail-off", &[])}),
            StatusCode::CONFLICT,
        )
        .await;
    };
    let app = state.clone();
    let s = survey.clone();
    let queued = with_conn(&state, move |conn| {
        let help = mailer.from_address();
        let c = campaign_for(&app, &s, &help);
        match which {
            Round::Invite => c.invite(conn, &only, campaign::now()),
            Round::Remind => c.remind(conn, campaign::now()),
        }
        .map_err(campaign_error)
    })
    .await?;
    let msg = t(
        "admin-queued-result",
        &[
            ("queued", queued.queued.to_string()),
            ("skipped", queued.skipped.to_string()),
        ],
    );
    survey_page(
        &state,
        &req,
        &user,
        &survey,
        "country",
        json!({"messages": [msg]}),
        StatusCode::OK,
    )
    .await
}

pub async fn invite(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    round(state, req, path, body, Round::Invite).await
}

pub async fn remind(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    round(state, req, path, body, Round::Remind).await
}

/// One personal link as the country page shows it.
#[derive(serde::Serialize)]
struct LinkView {
    id: String,
    holder: String,
    unit: String,
    issued: String,
    first_used: String,
    last_used: String,
    status: String,
    live: bool,
}

impl LinkView {
    fn new(row: &crate::db::queries::TokenRow, lang: &str, now: chrono::NaiveDateTime) -> Self {
        let when = |t: Option<chrono::NaiveDateTime>| {
            t.map(|t| crate::i18n::format_datetime(lang, t))
                .unwrap_or_default()
        };
        let status = match (row.ended(now), row.expires_at) {
            (None, None) => t("admin-link-live", &[]),
            (None, Some(e)) => t("admin-link-live-until", &[("date", when(Some(e)))]),
            (Some(crate::access::LinkEnd::Revoked), _) => t(
                "admin-link-revoked",
                &[
                    ("date", when(row.revoked_at)),
                    ("by", row.revoked_by.clone().unwrap_or_default()),
                ],
            ),
            (Some(crate::access::LinkEnd::Expired), _) => {
                t("admin-link-expired", &[("date", when(row.expires_at))])
            }
        };
        let holder = match (&row.holder_name, &row.holder_email) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (Some(n), None) => n.clone(),
            (None, Some(e)) => e.clone(),
            (None, None) => t("admin-link-unnamed", &[]),
        };
        LinkView {
            id: row.id.clone(),
            holder,
            unit: row.unit.clone(),
            issued: when(Some(row.created_at)),
            first_used: when(row.first_used_at),
            last_used: when(row.last_used_at),
            status,
            live: row.ended(now).is_none(),
        }
    }
}

/// The country page: for now its personal links, with revocation.
#[derive(serde::Serialize)]
struct CountryPage {
    id: String,
    iso3: String,
    survey_title: String,
    page_title: String,
    country: String,
    with_unit: bool,
    links: Vec<LinkView>,
    messages: Vec<String>,
}

async fn country_page(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    survey: &crate::survey::Survey,
    iso3: &str,
    messages: Vec<String>,
) -> Result<HttpResponse, AppError> {
    let lang = super::page_language();
    let country = state
        .countries
        .get(iso3)
        .ok_or(AppError::NotFound)?
        .name(lang)
        .to_string();
    let (sid, code) = (survey.id.clone(), iso3.to_string());
    let rows = with_conn(state, move |conn| {
        Ok(crate::db::queries::country_tokens(conn, &sid, &code)?)
    })
    .await?;
    let now = campaign::now();
    let view = CountryPage {
        id: survey.id.clone(),
        iso3: iso3.to_string(),
        survey_title: survey.title.get(lang).to_string(),
        page_title: format!("{country}: {}", t("admin-country-links", &[])),
        country,
        with_unit: !survey.unit.is_country(),
        links: rows.iter().map(|r| LinkView::new(r, lang, now)).collect(),
        messages,
    };
    let data = serde_json::to_value(view).map_err(|e| AppError::Blocking(e.to_string()))?;
    page(state, req, "admin/country", data, StatusCode::OK)
}

pub async fn country(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (survey_id, iso3) = path.into_inner();
    let (_, survey) = survey_user(&state, &req, &survey_id).await?;
    country_page(&state, &req, &survey, &iso3, Vec::new()).await
}

pub async fn revoke_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    verify_session_form(&state, &req, &parse_form(&body))?;
    let (survey_id, iso3, link_id) = path.into_inner();
    let (user, survey) = survey_user(&state, &req, &survey_id).await?;
    let (sid, code, id) = (survey.id.clone(), iso3.clone(), link_id.clone());
    let revoked = with_conn(&state, move |conn| {
        let holder = crate::db::queries::find_token_by_id(conn, &id)?
            .filter(|row| row.survey_id == sid && row.country_iso3 == code)
            .map(|row| row.holder_name.or(row.holder_email).unwrap_or_default());
        let done = campaign::revoke_link(conn, &sid, &code, &id, &user, campaign::now())?;
        Ok(holder.filter(|_| done))
    })
    .await?;
    let Some(holder) = revoked else {
        return Err(AppError::NotFound);
    };
    let msg = t("admin-link-revoked-done", &[("holder", holder)]);
    country_page(&state, &req, &survey, &iso3, vec![msg]).await
}

pub async fn extend_deadline(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = parse_form(&body);
    verify_session_form(&state, &req, &form)?;
    let (survey_id, iso3) = path.into_inner();
    let (user, survey) = survey_user(&state, &req, &survey_id).await?;
    let country = state
        .countries
        .get(&iso3)
        .ok_or(AppError::NotFound)?
        .name_en
        .clone();
    let Some(date) = campaign::deadline_in_range(field(&form, "closes"), campaign::now()) else {
        let error = t(
            "admin-bad-date-range",
            &[("years", campaign::MAX_EXTENSION_YEARS.to_string())],
        );
        return survey_page(
            &state,
            &req,
            &user,
            &survey,
            "country",
            json!({ "error": error }),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let closes = date.and_hms_opt(23, 59, 59).ok_or(AppError::BadRequest)?;
    let (app, s, u, c) = (state.clone(), survey.clone(), user.clone(), iso3.clone());
    let help = state
        .mailer
        .as_ref()
        .map(|m| m.from_address())
        .unwrap_or_default();
    with_conn(&state, move |conn| {
        campaign_for(&app, &s, &help)
            .extend_deadline(conn, &c, closes, &u, campaign::now())
            .map_err(campaign_error)
    })
    .await?;
    let msg = t(
        "admin-extended",
        &[("country", country), ("date", format!("{date} 23:59"))],
    );
    survey_page(
        &state,
        &req,
        &user,
        &survey,
        "country",
        json!({"messages": [msg]}),
        StatusCode::OK,
    )
    .await
}

pub async fn reopen(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = parse_form(&body);
    verify_session_form(&state, &req, &form)?;
    // In a survey of organisations, the form names which of the country's responses.
    let unit = field(&form, "unit").trim().to_string();
    let (survey_id, iso3) = path.into_inner();
    let (user, survey) = survey_user(&state, &req, &survey_id).await?;
    let country = crate::survey::respondent_name(
        &unit,
        &state
            .countries
            .get(&iso3)
            .ok_or(AppError::NotFound)?
            .name_en,
    );
    let (app, s, u, c) = (state.clone(), survey.clone(), user.clone(), iso3.clone());
    let help = state
        .mailer
        .as_ref()
        .map(|m| m.from_address())
        .unwrap_or_default();
    with_conn(&state, move |conn| {
        campaign_for(&app, &s, &help)
            .reopen(conn, &c, &unit, &u, campaign::now())
            .map_err(campaign_error)
    })
    .await?;
    let msg = t("admin-reopened", &[("country", country)]);
    survey_page(
        &state,
        &req,
        &user,
        &survey,
        "country",
        json!({"messages": [msg]}),
        StatusCode::OK,
    )
    .await
}
