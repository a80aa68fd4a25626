//! Signing in and out, setting a password from a setup link, and the list of surveys.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{admin_view, bound_view, redirect, secure, t, with_conn};
use crate::accounts::{self, MIN_PASSWORD_CHARS};
use crate::campaign;
use crate::error::AppError;
use crate::web::csrf;
use crate::web::extract::{session_cookie_name, Admin, CsrfForm, Lang};
use crate::web::render::Layout;
use crate::web::{AppState, MessagePage};

/// Longest email address (RFC 5321) taken from the sign-in form.
const MAX_EMAIL_BYTES: usize = 320;

#[derive(Serialize, Default)]
struct LoginPage {
    failed: bool,
    email: String,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
pub struct NoFields {}

fn login_page(
    state: &AppState,
    req: &HttpRequest,
    view: &LoginPage,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let layout = Layout::titled(t("admin-login-title", &[]));
    let binding = csrf::Binding::Anonymous;
    bound_view(state, req, "admin/login", layout, view, status, binding)
}

pub async fn login_form(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    login_page(&state, &req, &LoginPage::default(), StatusCode::OK)
}

/// The cookie that marks a browser that signed in before (`__Host-` under https).
fn device_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-coherence_device"
    } else {
        "coherence_device"
    }
}

fn cookie(name: &str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(name.to_string(), value)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .finish()
}

pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let address =
        crate::access::address_subject(super::super::client_address(&req, &state.settings));
    let device = req
        .cookie(device_cookie_name(secure(&state)))
        .map(|c| c.value().to_string())
        .filter(|d| crate::access::looks_like_session(d));
    let signed_in = sign_in(&state, form.email.clone(), form.password, address, device).await?;
    let Some(signed_in) = signed_in else {
        let view = LoginPage {
            failed: true,
            email: form.email,
            notice: None,
        };
        return login_page(&state, &req, &view, StatusCode::UNAUTHORIZED);
    };
    let secure = secure(&state);
    let mut res = redirect("/admin");
    // A fresh session id at every sign-in, and a fresh CSRF secret with it.
    let _ = res.add_cookie(&cookie(
        session_cookie_name(secure),
        signed_in.session,
        secure,
    ));
    let mut device = cookie(device_cookie_name(secure), signed_in.device, secure);
    device.set_max_age(actix_web::cookie::time::Duration::days(365));
    let _ = res.add_cookie(&device);
    csrf::rotate(&mut res, secure);
    Ok(res)
}

/// Count the attempt, check the password on the bounded password threads, open a session.
/// `None`: the email or the password is wrong.
async fn sign_in(
    state: &web::Data<AppState>,
    email: String,
    password: String,
    address: String,
    device: Option<String>,
) -> Result<Option<accounts::SignedIn>, AppError> {
    let oversized =
        email.len() > MAX_EMAIL_BYTES || password.chars().count() > accounts::MAX_PASSWORD_CHARS;
    // 1. Count the attempt and fetch the hash; the connection goes back to the pool.
    let d = device.clone();
    let admission = with_conn(state, move |conn| {
        let attempt = accounts::SignInAttempt {
            email: &email,
            address: &address,
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
    let tried = user.clone();
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
        with_conn(state, move |conn| {
            Ok(accounts::record_failed_sign_in(
                conn,
                tried.as_ref(),
                campaign::now(),
            )?)
        })
        .await?;
        return Ok(None);
    };
    // 3. Open the session.
    let signed_in = with_conn(state, move |conn| {
        Ok(accounts::complete_sign_in(
            conn,
            &user,
            device.as_deref(),
            &counted,
            campaign::now(),
        )?)
    })
    .await?;
    Ok(Some(signed_in))
}

pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    _: CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    let secure = secure(&state);
    if let Some(cookie) = req.cookie(session_cookie_name(secure)) {
        let token = cookie.value().to_string();
        with_conn(&state, move |conn| {
            Ok(accounts::close_session(conn, &token)?)
        })
        .await?;
    }
    let mut res = redirect("/admin/login");
    let mut gone = Cookie::build(session_cookie_name(secure), "")
        .path("/")
        .finish();
    gone.make_removal();
    let _ = res.add_cookie(&gone);
    csrf::rotate(&mut res, secure);
    Ok(res)
}

#[derive(Serialize)]
struct SetupPage {
    email: String,
    token: String,
    min: usize,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    password: String,
}

fn setup_page(
    state: &AppState,
    req: &HttpRequest,
    view: &SetupPage,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let layout = Layout::titled(t("admin-setup-title", &[]));
    let binding = csrf::Binding::Setup(&view.token);
    bound_view(state, req, "admin/setup", layout, view, status, binding)
}

/// A setup link that is unknown, expired or already used.
fn setup_expired(state: &AppState, req: &HttpRequest) -> Result<HttpResponse, AppError> {
    let view = MessagePage {
        title: t("admin-setup-title", &[]),
        body: t("admin-setup-expired", &[]),
        back: None,
    };
    let layout = Layout::titled(view.title.clone());
    super::admin_view(state, req, "message", layout, &view, StatusCode::NOT_FOUND)
}

async fn setup_user(
    state: &web::Data<AppState>,
    token: &str,
) -> Result<Option<accounts::User>, AppError> {
    let token = token.to_string();
    with_conn(state, move |conn| {
        Ok(accounts::find_by_setup_token(
            conn,
            &token,
            campaign::now(),
        )?)
    })
    .await
}

pub async fn setup_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let Some(user) = setup_user(&state, &token).await? else {
        return setup_expired(&state, &req);
    };
    let view = SetupPage {
        email: user.email,
        token,
        min: MIN_PASSWORD_CHARS,
        error: None,
    };
    setup_page(&state, &req, &view, StatusCode::OK)
}

pub async fn setup(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<SetupForm>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let Some(user) = setup_user(&state, &token).await? else {
        return setup_expired(&state, &req);
    };
    // Hashing the new password is an argon2 run like a sign-in's: it queues the same way.
    let password = form.password;
    let hashed = state
        .passwords
        .run(move || accounts::hash_password(&password))
        .await
        .ok_or(AppError::Overloaded)?;
    let hash = match hashed {
        Ok(hash) => hash,
        Err(accounts::AccountError::Db(e)) => return Err(AppError::Db(e)),
        Err(e) => {
            let view = SetupPage {
                email: user.email,
                token,
                min: MIN_PASSWORD_CHARS,
                error: Some(e.to_string()),
            };
            return setup_page(&state, &req, &view, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    with_conn(&state, move |conn| {
        Ok(accounts::set_password_hash(conn, &user.id, &hash)?)
    })
    .await?;
    let view = LoginPage {
        notice: Some(t("admin-setup-done", &[])),
        ..LoginPage::default()
    };
    login_page(&state, &req, &view, StatusCode::OK)
}

/// The surveys a signed-in user may open.
#[derive(Serialize)]
struct DashboardPage {
    email: String,
    role: String,
    surveys: Vec<SurveyLink>,
}

#[derive(Serialize)]
struct SurveyLink {
    id: String,
    title: String,
}

pub async fn dashboard(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin { user }: Admin,
    Lang(lang): Lang,
) -> Result<HttpResponse, AppError> {
    let ids: Vec<String> = state.catalog.iter().map(|s| s.id.clone()).collect();
    let u = user.clone();
    let visible = with_conn(&state, move |conn| {
        let mut visible = Vec::new();
        for id in ids {
            if accounts::may_see_survey(conn, &u, &id)? {
                visible.push(id);
            }
        }
        Ok(visible)
    })
    .await?;
    let surveys = state
        .catalog
        .iter()
        .filter(|s| visible.contains(&s.id))
        .map(|s| SurveyLink {
            id: s.id.clone(),
            title: s.title.get(lang).to_string(),
        })
        .collect();
    let view = DashboardPage {
        email: user.email,
        role: user.role.to_string(),
        surveys,
    };
    let layout = Layout::titled(t("admin-title", &[]));
    admin_view(
        &state,
        &req,
        "admin/dashboard",
        layout,
        &view,
        StatusCode::OK,
    )
}
