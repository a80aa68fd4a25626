//! [`Respondent`]: the personal link in the route's `{token}`, resolved to the link and its
//! survey with the link rules, and the page language among the survey's languages.
//!
//! At most one thread hop per page or save: the extractor itself only gathers what the lookup
//! needs (the token, the caller's address); [`Respondent::write`] then resolves the link and
//! does the save's database work in one blocking task, on one pooled connection (a draft save
//! on SQLite: on the pool's writer, see [`Respondent::write_opened`]), and
//! [`Respondent::open`] does a page's the same way, or on the worker's own thread when the page
//! only reads and a connection is free (see [`Respondent::read_with`]). An extractor that
//! looked the link up on its own would cost every page a second hop, and on a form post would
//! look the link up before the CSRF check had run.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::{NaiveDateTime, Utc};
use serde::Serialize;

use crate::access::{self, address_subject};
use crate::db::tokens::{self, OpenedLink, StoredResponse};
use crate::db::{wait_left, DbConn};
use crate::error::AppError;
use crate::respond::{self, ResponseState};
use crate::survey::Survey;
use crate::web::render::Layout;
use crate::web::{csrf, language, AppState};

/// The personal link of the request, not yet looked up (see the module's note).
#[derive(Clone)]
pub struct Respondent {
    state: web::Data<AppState>,
    req: HttpRequest,
    token: String,
}

impl FromRequest for Respondent {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = crate::web::extract::state_of(req);
        std::future::ready(
            found
                .map(|state| Respondent {
                    state,
                    req: req.clone(),
                    token: req
                        .match_info()
                        .get("token")
                        .unwrap_or_default()
                        .to_string(),
                })
                .map_err(Into::into),
        )
    }
}

/// Whether opening a page counts as the link's latest use (the overview does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    Record,
    Quiet,
}

/// A valid link: who answers, for which survey, in which language.
pub struct Link {
    pub state: web::Data<AppState>,
    pub req: HttpRequest,
    pub token: String,
    pub who: respond::Respondent,
    pub survey: Arc<Survey>,
    /// The page's language, among those the survey offers.
    pub lang: &'static str,
}

/// A respondent page's material: the link and the response as stored.
pub struct Page {
    pub link: Link,
    pub rs: ResponseState,
}

impl Respondent {
    /// The page's language as the request asks for it, before the survey is known (emails
    /// written during a save use it; the survey's own languages narrow it down).
    pub fn requested_lang(&self) -> &'static str {
        language::choose(&self.req, |_| true)
    }

    /// The link and its response as stored, for a page, with `more` read in the same task.
    pub async fn open_with<T, F>(self, visit: Visit, more: F) -> Result<(Page, T), AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn, &respond::Respondent, &ResponseState) -> Result<T, AppError>
            + Send
            + 'static,
    {
        let (link, (rs, extra)) = self
            .read_with(visit, move |conn, _, who, survey, opened| {
                let rs = opened.load(conn, survey, who, visit)?;
                let extra = more(conn, who, &rs)?;
                Ok((rs, extra))
            })
            .await?;
        Ok((Page { link, rs }, extra))
    }

    /// The link and its response as stored, for a page.
    pub async fn open(self, visit: Visit) -> Result<Page, AppError> {
        let (page, ()) = self.open_with(visit, |_, _, _| Ok(())).await?;
        Ok(page)
    }

    /// The link's survey, once the link is known to be live (unknown links count against the
    /// caller as any lookup does): what a large upload checks before its body is read.
    pub async fn survey(&self) -> Result<Arc<Survey>, AppError> {
        let (link, ()) = self.clone().resolve(false, |_, _, _, _| Ok(())).await?;
        Ok(link.survey)
    }

    /// A save: as [`Respondent::write`], `work` also given what the link's look-up read with
    /// it, and on SQLite in the write turn as `turn` says. [`Turn::Whole`] is for a brief save
    /// (a section's answers, no files): the link's look-up and `work` run in one write turn on
    /// the pool's writer (see [`crate::db::Pool::in_write_turn`]), with no pooled connection
    /// held while the turn is waited for. The look-up then reads the pages the writer has in
    /// its cache, instead of reading them back from the file on a pooled connection whose cache
    /// the last commit emptied: a draft save took a fifth less of the server's CPU, its median
    /// latency fell and its p99 rose (benches/README.md, thirty-fifth slice). The process's
    /// other writes wait for the look-up and `work`'s checks as well, so uploads (files
    /// checked and stored) and submissions (a version copied, receipts written) take
    /// [`Turn::ForEachWrite`].
    pub async fn write_opened<T, F>(self, turn: Turn, work: F) -> Result<(Link, T), AppError>
    where
        T: Send + 'static,
        F: FnOnce(
                &mut DbConn,
                &AppState,
                &respond::Respondent,
                &Survey,
                Opened,
            ) -> Result<T, AppError>
            + Send
            + 'static,
    {
        self.resolve_with(true, turn, work).await
    }

    /// A save or a submission: the link's write budget is spent, then `work` runs, in the
    /// same blocking task as the lookup.
    pub async fn write<T, F>(self, work: F) -> Result<(Link, T), AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn, &AppState, &respond::Respondent, &Survey) -> Result<T, AppError>
            + Send
            + 'static,
    {
        self.resolve(true, work).await
    }

    /// Today's link rules: a valid link always works, whatever its address did; unknown links
    /// count against the caller's address (in the database, for every node) and are 404, 429
    /// past the limit; revoked or expired ones 410; the first use is recorded once.
    pub(super) async fn resolve<T, F>(
        self,
        spends_budget: bool,
        work: F,
    ) -> Result<(Link, T), AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn, &AppState, &respond::Respondent, &Survey) -> Result<T, AppError>
            + Send
            + 'static,
    {
        self.resolve_with(
            spends_budget,
            Turn::ForEachWrite,
            move |conn, app, who, survey, _| work(conn, app, who, survey),
        )
        .await
    }

    /// As [`Respondent::resolve`], `work` also given what the link's look-up read with it, and
    /// on SQLite in the write turn as `turn` says.
    pub(super) async fn resolve_with<T, F>(
        self,
        spends_budget: bool,
        turn: Turn,
        work: F,
    ) -> Result<(Link, T), AppError>
    where
        T: Send + 'static,
        F: FnOnce(
                &mut DbConn,
                &AppState,
                &respond::Respondent,
                &Survey,
                Opened,
            ) -> Result<T, AppError>
            + Send
            + 'static,
    {
        let Respondent { state, req, token } = self;
        let address = address_subject(super::super::client_address(&req, &state.settings));
        let (app, t) = (state.clone(), token.clone());
        let asked = std::time::Instant::now();
        let (who, survey, done) = web::block(move || {
            let now = Utc::now().naive_utc();
            let served = |id: &str| app.catalog.get(id).is_some();
            let open = |conn: &mut DbConn| -> Result<_, AppError> {
                Ok(access::open_link(conn, &t, &address, served, now)?)
            };
            let then = |conn: &mut DbConn, opened| {
                let (who, survey, opened) = Opened::split(&app, opened, now)?;
                // Spent once the link is known to exist, so made-up links cannot fill the
                // table.
                if spends_budget && !app.link_writes.take(&who.token.id) {
                    return Err(AppError::LinkWritesLimited);
                }
                let done = work(conn, &app, &who, &survey, opened)?;
                Ok((who, survey, done))
            };
            if turn == Turn::Whole && app.pool.has_writer() {
                return app.pool.in_write_turn(wait_left(asked), |writer| {
                    let opened = open(writer)?;
                    then(writer, opened)
                });
            }
            let (mut conn, opened) = app.pool.get_then(wait_left(asked), open)?;
            then(&mut conn, opened)
        })
        .await??;
        Ok((Link::new(state, req, token, who, survey), done))
    }

    /// A page that only reads: as [`Respondent::resolve_with`] with no budget spent, but on
    /// the worker's own thread when a pooled connection is free at once and the page writes
    /// nothing (a quiet visit of a link used before, whose response exists). `work` must then
    /// only read. A page's database work is one indexed statement of a few hundred
    /// microseconds; handing it to a blocking thread and back cost more than that in thread
    /// wake-ups, and on two cores made the slowest 1 % of section pages twice as slow as the
    /// median (see benches/README.md, twenty-third slice). Anything else (no free connection,
    /// an unknown, ended or first-used link, a response still to create, a failed read) takes
    /// the blocking way, where waiting and writing cannot hold up the worker's other
    /// connections. A read that does wait (behind a lock on PostgreSQL) holds the worker at
    /// most the pool's statement timeout (`db::STATEMENT_TIMEOUT`), and a server gone without
    /// a word about a minute (`db::DEAD_PEER_SETTINGS`).
    pub(super) async fn read_with<T, F>(self, visit: Visit, work: F) -> Result<(Link, T), AppError>
    where
        T: Send + 'static,
        F: FnOnce(
                &mut DbConn,
                &AppState,
                &respond::Respondent,
                &Survey,
                Opened,
            ) -> Result<T, AppError>
            + Send
            + 'static,
    {
        if visit == Visit::Quiet {
            if let Some(mut conn) = self.state.pool.try_get() {
                let now = Utc::now().naive_utc();
                let served = |id: &str| self.state.catalog.get(id).is_some();
                let used = access::open_used_link(&mut conn, &self.token, served, now);
                if let Ok(Some(opened)) = used.map(|o| o.filter(|o| o.response.is_some())) {
                    let (who, survey, opened) = Opened::split(&self.state, opened, now)?;
                    let done = work(&mut conn, &self.state, &who, &survey, opened)?;
                    drop(conn);
                    let Respondent { state, req, token } = self;
                    return Ok((Link::new(state, req, token, who, survey), done));
                }
            }
        }
        self.resolve_with(false, Turn::ForEachWrite, work).await
    }
}

/// Which of a link's work on SQLite runs in the database's write turn, on the pool's writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Each write, as it comes; the look-up and other reads on a pooled connection.
    ForEachWrite,
    /// The look-up and the whole work (see [`Respondent::write_opened`]).
    Whole,
}

impl Link {
    fn new(
        state: web::Data<AppState>,
        req: HttpRequest,
        token: String,
        who: respond::Respondent,
        survey: Arc<Survey>,
    ) -> Link {
        let lang = language::choose(&req, |c| survey.languages.iter().any(|l| l == c));
        Link {
            state,
            req,
            token,
            who,
            survey,
            lang,
        }
    }
}

/// What the link's look-up read besides the link (see [`tokens::open_token`]), for a page.
pub struct Opened {
    response: Option<StoredResponse>,
    extension: Option<NaiveDateTime>,
    /// Whether the response has review queries: a page reads them only then.
    pub has_queries: bool,
    /// When the link was looked up.
    now: NaiveDateTime,
}

impl Opened {
    /// The look-up's result as the link's respondent, its survey and the rest.
    fn split(
        app: &AppState,
        opened: OpenedLink,
        now: NaiveDateTime,
    ) -> Result<(respond::Respondent, Arc<Survey>, Opened), AppError> {
        let survey = app
            .catalog
            .get(&opened.token.survey_id)
            .cloned()
            .ok_or(AppError::NotFound)?;
        let OpenedLink {
            token,
            response,
            extension,
            has_queries,
        } = opened;
        let opened = Opened {
            response,
            extension,
            has_queries,
            now,
        };
        Ok((respond::Respondent { token }, survey, opened))
    }

    /// The response as stored (created on the link's first page). The overview records the
    /// link's use, unless the look-up just recorded its first.
    pub fn load(
        self,
        conn: &mut DbConn,
        survey: &Survey,
        who: &respond::Respondent,
        visit: Visit,
    ) -> Result<ResponseState, AppError> {
        let now = self.now;
        if visit == Visit::Record && who.token.first_used_at != Some(now) {
            tokens::touch_token(conn, &who.token.id, now)?;
        }
        Ok(respond::load_opened(
            conn,
            survey,
            who,
            self.response,
            self.extension,
            now,
        )?)
    }
}

impl Link {
    /// The link's pages start here.
    pub fn base(&self) -> String {
        format!("/r/{}", self.token)
    }

    pub fn secure(&self) -> bool {
        self.state.settings.is_https()
    }

    /// The token the link's forms carry.
    pub fn form_token(&self) -> csrf::FormToken {
        csrf::form_token(&self.req, csrf::Binding::Link(&self.token), self.secure())
    }

    /// The layout of a page titled `page_title`: the survey named in the header, or not.
    pub fn layout(&self, page_title: String, survey_in_header: bool) -> Layout {
        Layout {
            page_title: Some(page_title),
            survey_title: survey_in_header.then(|| self.survey.title.get(self.lang).to_string()),
            languages: language::link_list(
                &self.req,
                |c| self.survey.languages.iter().any(|l| l == c),
                self.lang,
            ),
            ..Layout::default()
        }
    }

    /// A page from its typed view. Respondent pages carry the personal link: never cached.
    pub fn render<T: Serialize>(
        &self,
        name: &str,
        layout: &Layout,
        view: &T,
        status: StatusCode,
        form: Option<&csrf::FormToken>,
    ) -> Result<HttpResponse, AppError> {
        let mut res = self.state.view(name, self.lang, layout, view)?;
        *res.status_mut() = status;
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        language::remember(&self.req, &mut res, self.secure());
        if let Some(token) = form {
            token.set_cookie(&mut res, self.secure());
        }
        Ok(res)
    }

    /// See Other to `to` (a path under the link's base).
    pub fn redirect(&self, to: &str) -> HttpResponse {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("{}{to}", self.base())))
            .finish()
    }
}
