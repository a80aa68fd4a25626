//! Administrators' and survey owners' pages: sign-in ([`session`]), the round's status table,
//! contacts, invitations and reminders ([`survey`]), and one country's file ([`country`]).

mod country;
mod session;

pub(crate) use session::NoFields;
mod survey;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::extract::session_token;
use super::render::{translate, Layout};
use super::{csrf, AppState};
use crate::campaign::Campaign;
use crate::error::AppError;

pub(super) use super::extract::with_conn;
pub use country::{country, extend_deadline, issue_link, reopen, revoke_link};
pub use session::{dashboard, login, login_form, logout, setup, setup_form};
pub use survey::{contacts_csv, import_contacts, invite, remind, status_csv, survey};

fn t(id: &str, args: &[(&str, String)]) -> String {
    translate(super::page_language(), id, args)
}

fn secure(state: &AppState) -> bool {
    state.settings.is_https()
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

/// The layout of a wide page (a table of countries) at `page`: its language links lead to
/// that address, also when the page answers a form posted elsewhere.
fn wide_layout(req: &HttpRequest, title: String, page: &str) -> Layout {
    let lang = super::page_language();
    Layout {
        languages: super::language::link_list_at(req, page, |_| true, lang),
        ..Layout::wide(title)
    }
}

/// An admin page's view with the token its forms carry.
#[derive(Serialize)]
struct WithCsrf<'a, T> {
    csrf: String,
    #[serde(flatten)]
    page: &'a T,
}

/// An admin page from its typed view, its forms bound to the current session.
pub(super) fn admin_view<T: Serialize>(
    state: &AppState,
    req: &HttpRequest,
    name: &str,
    layout: Layout,
    view: &T,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let session = session_token(req, secure(state));
    bound_view(
        state,
        req,
        name,
        layout,
        view,
        status,
        session_binding(&session),
    )
}

/// An admin page whose forms act for `binding` (the sign-in and setup pages).
fn bound_view<T: Serialize>(
    state: &AppState,
    req: &HttpRequest,
    name: &str,
    mut layout: Layout,
    view: &T,
    status: StatusCode,
    binding: csrf::Binding,
) -> Result<HttpResponse, AppError> {
    let secure = secure(state);
    let token = csrf::form_token(req, binding, secure);
    let lang = super::page_language();
    if layout.languages.is_empty() {
        layout.languages = super::language::link_list(req, |_| true, lang);
    }
    if layout.page_title.is_none() {
        layout.page_title = Some(t("admin-title", &[]));
    }
    let page = WithCsrf {
        csrf: token.token.clone(),
        page: view,
    };
    let mut res = state.view(name, lang, &layout, &page)?;
    *res.status_mut() = status;
    token.set_cookie(&mut res, secure);
    super::language::remember(req, &mut res, secure);
    Ok(no_store(res))
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

/// The address respondents are told to write to for help ('' when email is off).
pub(crate) fn help_address(state: &AppState) -> String {
    state
        .mailer
        .as_ref()
        .map(|m| m.from_address())
        .unwrap_or_default()
}

/// A status notice or an error shown at the top of a page after a form.
#[derive(Serialize, Default)]
struct Notices {
    messages: Vec<String>,
    error: Option<String>,
}

impl Notices {
    fn message(text: String) -> Notices {
        Notices {
            messages: vec![text],
            error: None,
        }
    }

    fn error(text: String) -> Notices {
        Notices {
            messages: Vec::new(),
            error: Some(text),
        }
    }
}
