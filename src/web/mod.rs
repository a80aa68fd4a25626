//! HTTP: routes, security headers, CSRF, error pages. Handlers stay thin.

mod admin;
mod changes;
mod csrf;
pub mod extract;
mod language;
pub mod render;
mod respond;
mod results;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{DefaultHeaders, ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::access::RequestBudget;
use crate::config::Settings;
use crate::db::Pool;
use crate::error::{page_for_status, AppError, ErrorPage};
use crate::mail::templates::EmailTemplates;
use crate::mail::Mailer;
use crate::reference::Countries;
use crate::survey::Catalog;
use render::Templates;

/// Largest form body accepted: a section of long answers fits many times over.
pub const MAX_FORM_BYTES: usize = 256 * 1024;

/// Two verifications at once keep both cores of a small server from being taken by sign-ins.
const CONCURRENT_PASSWORD_CHECKS: usize = 2;
/// Checks waiting their turn (about a second's worth); past that a sign-in is told to retry.
const PASSWORD_QUEUE: usize = 32;

pub struct AppState {
    pub pool: Pool,
    pub catalog: Catalog,
    pub countries: Arc<Countries>,
    pub country_options: CountryOptions,
    pub templates: Templates,
    pub settings: Settings,
    /// Saves and submissions per personal link and minute (kept per node).
    pub link_writes: RequestBudget,
    /// Where argon2 runs: each check takes 19 MiB and a core for a fraction of a second, so
    /// a flood of sign-ins must queue on a few threads, not multiply.
    pub passwords: crate::accounts::PasswordPool,
    /// None when email is not configured.
    pub mailer: Option<Mailer>,
    pub emails: EmailTemplates,
    /// Multipart section posts carrying files are held in memory while read (up to their
    /// survey's file budget): only a few at once, the others wait their turn.
    pub uploads: Arc<tokio::sync::Semaphore>,
    /// Zip exports being written: each has a thread of its own for as long as its client takes
    /// to download, so only a few at once (see [`results::export_zip`]).
    pub zip_exports: Arc<tokio::sync::Semaphore>,
    /// HTTP requests received since start (counted by [`with_language`]), for `/metrics`.
    pub http_requests: AtomicU64,
    /// Results aggregates for repeat views (see [`crate::results::cache`]).
    pub results_cache: crate::results::cache::ResultsCache,
    /// `/healthz`'s check, on a thread of its own (see [`crate::db::health`]).
    pub health: crate::db::health::HealthCheck,
}

/// How many multipart section posts may be read at the same time.
const CONCURRENT_UPLOADS: usize = 4;

/// How many zip exports may be written at the same time, per node.
pub const CONCURRENT_ZIP_EXPORTS: usize = 4;

impl AppState {
    pub fn new(
        pool: Pool,
        catalog: Catalog,
        countries: Arc<Countries>,
        templates: Templates,
        settings: Settings,
        mailer: Option<Mailer>,
        emails: EmailTemplates,
    ) -> Self {
        AppState {
            health: crate::db::health::HealthCheck::start(pool.clone(), HEALTH_CHECK_PATIENCE),
            pool,
            catalog,
            country_options: CountryOptions::new(&countries),
            countries,
            templates,
            link_writes: RequestBudget::new(
                settings.link_saves_per_minute,
                Duration::from_secs(60),
            ),
            settings,
            passwords: crate::accounts::PasswordPool::new(
                CONCURRENT_PASSWORD_CHECKS,
                PASSWORD_QUEUE,
            ),
            mailer,
            emails,
            uploads: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_UPLOADS)),
            zip_exports: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_ZIP_EXPORTS)),
            http_requests: AtomicU64::new(0),
            results_cache: Default::default(),
        }
    }

    /// A page rendered from its typed view (see [`render::Templates::render_view`]).
    pub fn view<T: serde::Serialize>(
        &self,
        name: &str,
        lang: &str,
        layout: &render::Layout,
        view: &T,
    ) -> Result<HttpResponse, AppError> {
        let html = self.templates.render_view(name, lang, layout, view)?;
        Ok(html_response(html))
    }
}

/// A page that says one thing: errors, an expired setup link.
#[derive(Debug, serde::Serialize)]
pub struct MessagePage {
    pub title: String,
    pub body: String,
    /// Where "back" leads, if anywhere.
    pub back: Option<String>,
}

/// The `<option>` list of every country, rendered once per language: 249 options are most of
/// the work of a page with a country question if rendered per request.
pub struct CountryOptions {
    by_lang: Vec<(&'static str, String)>,
}

impl CountryOptions {
    pub fn new(countries: &Countries) -> CountryOptions {
        let by_lang = ["en", "fr", "es"]
            .into_iter()
            .map(|lang| {
                let html: String = countries
                    .sorted_by_name(lang)
                    .into_iter()
                    .map(|c| {
                        format!(
                            "<option value=\"{}\">{}</option>",
                            handlebars::html_escape(&c.iso3),
                            handlebars::html_escape(c.name(lang))
                        )
                    })
                    .collect();
                (lang, html)
            })
            .collect();
        CountryOptions { by_lang }
    }

    /// The list in `lang`, with `selected` (an ISO alpha-3 code) marked.
    pub fn options_html(&self, lang: &str, selected: &str) -> String {
        let html = self
            .by_lang
            .iter()
            .find(|(l, _)| *l == lang)
            .or_else(|| self.by_lang.first())
            .map(|(_, h)| h.as_str())
            .unwrap_or("");
        let valid = selected.len() == 3 && selected.bytes().all(|b| b.is_ascii_uppercase());
        if !valid {
            return html.to_string();
        }
        let needle = format!("<option value=\"{selected}\">");
        html.replacen(
            &needle,
            &format!("<option value=\"{selected}\" selected>"),
            1,
        )
    }
}

/// The client's address: the peer's, or what a trusted proxy says in X-Forwarded-For.
pub fn client_address(req: &HttpRequest, settings: &Settings) -> std::net::IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok());
    settings.trusted_proxies.client_address(peer, forwarded)
}

pub fn html_response(html: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_FORM_BYTES))
        .route("/", web::get().to(landing))
        .route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics))
        .route("/static/app.css", web::get().to(stylesheet))
        // The respondent's pages, under one scope: the link's segment is matched once, and
        // each path once whatever its methods (actix matches routes in turn, by regex).
        .service(
            web::scope("/r/{token}")
                .service(web::resource("").route(web::get().to(respond::overview)))
                .service(
                    web::resource("/s/{section}")
                        .route(web::get().to(respond::section_form))
                        .route(web::post().to(respond::section_save)),
                )
                .service(
                    web::resource("/files/{file}").route(web::get().to(respond::file_download)),
                )
                .service(web::resource("/review").route(web::get().to(respond::review)))
                .service(web::resource("/print").route(web::get().to(respond::print)))
                .service(
                    web::resource("/questionnaire.xlsx")
                        .route(web::get().to(respond::questionnaire_download)),
                )
                .service(
                    web::resource("/questionnaire")
                        .route(web::post().to(respond::questionnaire_upload))
                        .route(web::get().to(respond::questionnaire_after)),
                )
                .service(web::resource("/submit").route(web::post().to(respond::submit)))
                .service(
                    web::resource("/send-for-sign-off")
                        .route(web::post().to(respond::send_for_sign_off)),
                )
                .service(web::resource("/sign-off").route(web::post().to(respond::sign_off)))
                .service(web::resource("/send-back").route(web::post().to(respond::send_back)))
                .service(web::resource("/recall").route(web::post().to(respond::recall)))
                .service(web::resource("/receipt/{n}").route(web::get().to(respond::receipt)))
                .service(
                    web::resource("/versions/{n}/content.json")
                        .route(web::get().to(respond::version_content)),
                )
                .service(
                    web::resource("/queries/{query}")
                        .route(web::get().to(respond::query_page))
                        .route(web::post().to(respond::query_reply)),
                )
                .service(
                    web::resource("/colleagues")
                        .route(web::get().to(respond::colleagues))
                        .route(web::post().to(respond::colleagues_assign)),
                )
                .service(
                    web::resource("/colleagues/{link}/revoke")
                        .route(web::post().to(respond::colleague_revoke)),
                )
                .service(
                    web::resource("/s/{section}/ready")
                        .route(web::post().to(respond::section_ready)),
                ),
        )
        .route("/admin/login", web::get().to(admin::login_form))
        .route("/admin/login", web::post().to(admin::login))
        .route("/admin/logout", web::post().to(admin::logout))
        .route("/admin/setup/{token}", web::get().to(admin::setup_form))
        .route("/admin/setup/{token}", web::post().to(admin::setup))
        .route("/admin", web::get().to(admin::dashboard))
        .route("/admin/surveys/{id}", web::get().to(admin::survey))
        .route(
            "/admin/surveys/{id}/status.csv",
            web::get().to(admin::status_csv),
        )
        .route(
            "/admin/surveys/{id}/contacts.csv",
            web::get().to(admin::contacts_csv),
        )
        .route(
            "/admin/surveys/{id}/contacts",
            web::post().to(admin::import_contacts),
        )
        .route("/admin/surveys/{id}/invite", web::post().to(admin::invite))
        .route("/admin/surveys/{id}/remind", web::post().to(admin::remind))
        .route(
            "/admin/surveys/{id}/countries/{iso3}",
            web::get().to(admin::country),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/files/{file}",
            web::get().to(respond::admin_file),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/links/{link}/revoke",
            web::post().to(admin::revoke_link),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/links",
            web::post().to(admin::issue_link),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/deadline",
            web::post().to(admin::extend_deadline),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/reopen",
            web::post().to(admin::reopen),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/review",
            web::post().to(admin::begin_review),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/return",
            web::post().to(admin::return_response),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/accept",
            web::post().to(admin::accept),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/queries",
            web::post().to(admin::raise_query),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/queries/{query}/reply",
            web::post().to(admin::reply_query),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/queries/{query}/close",
            web::post().to(admin::close_query),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/versions/{number}.json",
            web::get().to(admin::version_json),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/entry",
            web::post().to(admin::open_entry),
        )
        .route(
            "/admin/surveys/{id}/results",
            web::get().to(results::dashboard),
        )
        .route(
            "/admin/surveys/{id}/results/q/{qid}",
            web::get().to(results::question),
        )
        .route(
            "/admin/surveys/{id}/results/changes",
            web::get().to(changes::overall),
        )
        .route(
            "/admin/surveys/{id}/results/changes.csv",
            web::get().to(changes::overall_csv),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/changes",
            web::get().to(changes::country),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/changes.csv",
            web::get().to(changes::country_csv),
        )
        .route(
            "/admin/surveys/{id}/countries/{iso3}/changes.xlsx",
            web::get().to(changes::country_xlsx),
        )
        .route(
            "/admin/surveys/{id}/results/compendium",
            web::get().to(results::compendium),
        )
        .route(
            "/admin/surveys/{id}/results/compendium.md",
            web::get().to(results::compendium_markdown),
        )
        .route(
            "/admin/surveys/{id}/results/needs",
            web::get().to(results::needs),
        )
        .route(
            "/admin/surveys/{id}/export.csv",
            web::get().to(results::export_csv),
        )
        .route(
            "/admin/surveys/{id}/codebook.csv",
            web::get().to(results::export_codebook),
        )
        .route(
            "/admin/surveys/{id}/export.xlsx",
            web::get().to(results::export_xlsx),
        )
        .route(
            "/admin/surveys/{id}/export.json",
            web::get().to(results::export_json),
        )
        .route(
            "/admin/surveys/{id}/export.zip",
            web::get().to(results::export_zip),
        );
}

/// Headers on every response. The personal link is in the URL, so no Referer may carry it to
/// another site; `same-origin` rather than `no-referrer`, because with the latter browsers send
/// `Origin: null` on form posts, which the CSRF check must refuse.
/// Under https, browsers are also told to use nothing but https for a year (HSTS).
pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = if https {
        DefaultHeaders::new().add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ))
    } else {
        DefaultHeaders::new()
    };
    headers
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
}

/// Middleware: a request body that stops arriving for `Settings::body_timeout`, or that takes
/// more than six times that in all, fails (400) instead of holding its connection: a client
/// trickling one byte at a time cannot keep a request open for days.
pub async fn body_timeout(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let idle = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings.body_timeout)
        .unwrap_or(Duration::from_secs(20));
    let deadline = tokio::time::Instant::now() + idle * 6;
    let payload = actix_web::HttpMessage::take_payload(&mut req);
    let timed = futures_util::stream::unfold(Some(payload), move |state| async move {
        let mut payload = state?;
        let wait = idle.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        match tokio::time::timeout(wait, futures_util::StreamExt::next(&mut payload)).await {
            Ok(Some(chunk)) => Some((chunk, Some(payload))),
            Ok(None) => None,
            Err(_) => Some((
                Err(actix_web::error::PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body stopped arriving, or took too long",
                ))),
                None,
            )),
        }
    });
    let timed = futures_util::StreamExt::fuse(timed);
    let boxed: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>>>,
    > = Box::pin(timed);
    req.set_payload(actix_web::dev::Payload::from(boxed));
    next.call(req).await
}

/// Give every error status a page in the service's look, whatever produced it.
pub fn error_pages<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(render_error_page)
}

fn render_error_page<B: MessageBody>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // Pages a handler rendered itself (a form with its errors, a conflict) are kept; empty
    // bodies and actix's own plain-text errors get the service's page.
    let is_html = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let empty = matches!(
        res.response().body().size(),
        BodySize::None | BodySize::Sized(0)
    );
    if is_html && !empty {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let page = res
        .response()
        .extensions()
        .get::<ErrorPage>()
        .copied()
        .unwrap_or_else(|| page_for_status(status));
    // "Retry-After" of a 503 says when to come back: keep it on the page that replaces the body.
    let retry_after = res.response().headers().get(header::RETRY_AFTER).cloned();
    let (req, _) = res.into_parts();
    let lang = language::choose(&req, |_| true);
    let html = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| {
            let t = |id| render::translate(lang, id, &[]);
            let view = MessagePage {
                title: t(page.title),
                body: t(page.body),
                back: None,
            };
            let layout = render::Layout::titled(view.title.clone());
            state
                .templates
                .render_view("message", lang, &layout, &view)
                .ok()
        })
        .unwrap_or_else(|| "<!DOCTYPE html><title>Error</title><p>Error</p>".to_string());
    let mut response = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(value) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
}

tokio::task_local! {
    /// The interface language of the request being served (see [`with_language`]).
    static PAGE_LANG: &'static str;
}

/// The current request's interface language, for pages that are not a survey's (admin,
/// results, errors); respondent pages also restrict it to the survey's languages.
pub fn page_language() -> &'static str {
    PAGE_LANG.try_with(|l| *l).unwrap_or("en")
}

/// Middleware: decide the request's language once and serve the request within it. Being
/// the middleware every request passes, it also counts them for `/metrics`.
pub async fn with_language(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        state.http_requests.fetch_add(1, Ordering::Relaxed);
    }
    let lang = language::choose(req.request(), |_| true);
    PAGE_LANG.scope(lang, next.call(req)).await
}

/// The front page: what the service is and which surveys it holds.
#[derive(serde::Serialize)]
struct LandingPage {
    surveys: Vec<String>,
}

async fn landing(
    state: web::Data<AppState>,
    extract::Lang(lang): extract::Lang,
) -> Result<HttpResponse, AppError> {
    let surveys = state.catalog.iter().map(|s| s.title.get(lang).to_string());
    let view = LandingPage {
        surveys: surveys.collect(),
    };
    state.view("landing", lang, &render::Layout::default(), &view)
}

/// How long `/healthz`'s check waits for one of the pool's connections: a health check
/// answers within a second or two, not after the pool's full wait, since a load balancer
/// polling it must see a database outage while it lasts.
const HEALTH_CHECK_PATIENCE: Duration = Duration::from_secs(1);

/// How long `/healthz` waits for its answer: a check already under way when it asked (at
/// most the patience and a `SELECT 1`), then its own.
const HEALTH_ANSWER_WITHIN: Duration = Duration::from_secs(3);

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    if state.health.database_answers(HEALTH_ANSWER_WITHIN).await {
        HttpResponse::Ok().content_type("text/plain").body("ok")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("database unreachable")
    }
}

/// Counters since start, in Prometheus' text format: counts only, nothing about any survey,
/// country or person.
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.state();
    let counters = [
        (
            "coherence_http_requests_total",
            "counter",
            "HTTP requests received.",
            state.http_requests.load(Ordering::Relaxed),
        ),
        (
            "coherence_sql_statements_total",
            "counter",
            "SQL statements sent by the pooled database connections, BEGIN, COMMIT and SAVEPOINT included.",
            state.pool.stats().statements(),
        ),
        (
            "coherence_db_connections",
            "gauge",
            "Database connections open in the pool.",
            u64::from(pool.connections),
        ),
        (
            "coherence_db_connections_idle",
            "gauge",
            "Database connections idle in the pool.",
            u64::from(pool.idle_connections),
        ),
    ];
    let mut body = String::new();
    for (name, kind, help, value) in counters {
        body.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

async fn stylesheet(req: HttpRequest) -> HttpResponse {
    // Versioned by its hash in the link, so it may be cached for a year.
    let versioned = req.query_string().starts_with("v=");
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, cache))
        .body(render::CSS)
}
