//! The country's side of the report cycle: submitting or sending for sign-off, the approver's
//! sign-off or sending back, recalling a submission, and the receipt of each version.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::link::{Link, Page, Respondent, Turn, Visit};
use super::views::ReviewView;
use crate::db::responses::{ResponseRow, ResponseStatus};
use crate::db::versions::{self, VersionRow};
use crate::db::DbConn;
use crate::error::AppError;
use crate::report::notify::{signed_off_by, Notifier};
use crate::report::SignOff;
use crate::respond::{self, ForSignOff, RespondError, ResponseState, SubmitOutcome};
use crate::web::extract::CsrfForm;
use crate::web::render::translate;
use crate::web::AppState;

/// What the review page and the overview need beyond the response: its versions, and
/// whether the link is an owner's entering a report for the country.
pub struct Cycle {
    pub versions: Vec<VersionRow>,
    pub entry: bool,
}

pub fn load_cycle(
    conn: &mut DbConn,
    who: &respond::Respondent,
    rs: &ResponseState,
) -> Result<Cycle, AppError> {
    Ok(Cycle {
        versions: versions::versions(conn, &rs.response.id)?,
        entry: who.entry(conn)?.is_some(),
    })
}

/// The cycle's part of the review page: where the response stands and what this link may do.
#[derive(Serialize, Default)]
pub struct CycleView {
    /// `report-state-<state>`: the response's state in words.
    state_key: String,
    state: &'static str,
    /// Submit directly (no sign-off in this survey, or an owner entering a report).
    pub can_submit: bool,
    /// Send to the approver (a survey with sign-off).
    can_send_for_sign_off: bool,
    /// Waiting for the approver: the sign-off and send-back forms for an approver, a notice
    /// for everyone else.
    awaiting: bool,
    sign_off: Option<SignOffForm>,
    /// The approver's message, while the response is back with the coordinators.
    sent_back: Option<SentBack>,
    /// Take back the submission (before the secretariat begins its review).
    can_recall: bool,
    /// The latest version, for its receipt.
    latest: Option<i32>,
}

#[derive(Serialize, Default, Clone)]
pub struct SignOffForm {
    name: String,
    title: String,
    message: String,
    name_error: Option<String>,
    title_error: Option<String>,
    message_error: Option<String>,
}

#[derive(Serialize)]
struct SentBack {
    message: String,
    at: String,
}

impl CycleView {
    pub fn new(link: &Link, rs: &ResponseState, cycle: &Cycle, editable: bool) -> CycleView {
        let status = rs.response.status;
        let who = &link.who;
        let sign_off = link.survey.sign_off && !cycle.entry;
        let awaiting = status == ResponseStatus::AwaitingSignOff;
        CycleView {
            state_key: format!("report-state-{}", status.as_str()),
            state: status.as_str(),
            can_submit: editable && who.may_submit() && !sign_off,
            can_send_for_sign_off: editable && who.may_submit() && sign_off,
            awaiting,
            sign_off: (awaiting && sign_off && who.is_approver()).then(SignOffForm::default),
            sent_back: rs
                .response
                .sent_back_message
                .clone()
                .filter(|_| status.is_editable())
                .map(|message| SentBack {
                    message,
                    at: rs
                        .response
                        .sent_back_at
                        .map(|t| link.date(t))
                        .unwrap_or_default(),
                }),
            can_recall: status == ResponseStatus::Submitted && who.may_submit(),
            latest: cycle
                .versions
                .last()
                .filter(|_| who.may_submit())
                .map(|v| v.number),
        }
    }
}

pub async fn review(link: Respondent) -> Result<HttpResponse, AppError> {
    let (page, cycle) = link.open_with(Visit::Quiet, load_cycle).await?;
    let show_missing = page.rs.is_draft();
    review_page(&page, &cycle, show_missing, None, StatusCode::OK)
}

/// The review page: every answer, and the cycle's forms (`sign_off` as typed, with its errors,
/// when a sign-off or sending back was refused).
fn review_page(
    page: &Page,
    cycle: &Cycle,
    show_missing: bool,
    sign_off: Option<SignOffForm>,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let form = page.link.form_token();
    let mut view = ReviewView::new(page, show_missing, form.token.clone());
    let editable = view.editable();
    let mut cycle_view = CycleView::new(&page.link, &page.rs, cycle, editable);
    if let (Some(typed), Some(_)) = (sign_off, cycle_view.sign_off.as_ref()) {
        cycle_view.sign_off = Some(typed);
    }
    view.set_cycle(cycle_view);
    let layout = page
        .link
        .layout(translate(page.link.lang, "review-title", &[]), true);
    page.link
        .render("respond/review", &layout, &view, status, Some(&form))
}

type NoFields = CsrfForm<crate::web::admin::NoFields>;

/// Submit the response directly (a survey without sign-off, or an owner entering a report):
/// the receipt, or the review page listing what is missing.
pub async fn submit(link: Respondent, _: NoFields) -> Result<HttpResponse, AppError> {
    let lang = link.requested_lang();
    let (link, outcome) = link
        .write_opened(Turn::ForEachWrite, move |conn, app, who, survey, opened| {
            let stored = opened.load(conn, survey, who, Visit::Quiet)?;
            let now = Utc::now();
            let help = super::super::admin::help_address(app);
            let notifier = notifier(app, survey, &help, lang);
            let notify = receipts(&notifier, now.naive_utc());
            let outcome = respond::submit(conn, survey, who, Some(stored), &notify, now);
            shown_again(conn, survey, who, outcome.map(Submitted::from))
        })
        .await?;
    after(link, outcome, SignOffForm::default())
}

/// Send the response to the country's approver.
pub async fn send_for_sign_off(link: Respondent, _: NoFields) -> Result<HttpResponse, AppError> {
    let lang = link.requested_lang();
    let (link, outcome) = link
        .write(move |conn, app, who, survey| {
            let now = Utc::now();
            let help = super::super::admin::help_address(app);
            let notifier = notifier(app, survey, &help, lang);
            let notify = |conn: &mut DbConn, r: &_| match &notifier {
                Some(n) => n.sign_off_requested(conn, r, now.naive_utc()).map(|_| ()),
                None => Ok(()),
            };
            let outcome = respond::send_for_sign_off(conn, survey, who, &notify, now);
            shown_again(conn, survey, who, outcome.map(Submitted::from))
        })
        .await?;
    after(link, outcome, SignOffForm::default())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignOffFields {
    name: String,
    title: String,
}

/// The approver signs off: the response is submitted as a new version.
pub async fn sign_off(
    link: Respondent,
    CsrfForm(form): CsrfForm<SignOffFields>,
) -> Result<HttpResponse, AppError> {
    let lang = link.requested_lang();
    let signed = SignOff {
        name: form.name,
        title: form.title,
    };
    let typed = signed.clone();
    let (link, outcome) = link
        .write(move |conn, app, who, survey| {
            let now = Utc::now();
            let help = super::super::admin::help_address(app);
            let notifier = notifier(app, survey, &help, lang);
            let notify = receipts(&notifier, now.naive_utc());
            let outcome =
                respond::sign_off(conn, survey, who, &signed, &notify, now).map(Submitted::from);
            shown_again(conn, survey, who, outcome)
        })
        .await?;
    let typed = SignOffForm {
        name: typed.name,
        title: typed.title,
        ..SignOffForm::default()
    };
    after(link, outcome, typed)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SendBackFields {
    message: String,
}

/// The approver sends the response back to the coordinators with a message.
pub async fn send_back(
    link: Respondent,
    CsrfForm(form): CsrfForm<SendBackFields>,
) -> Result<HttpResponse, AppError> {
    let typed = form.message.clone();
    let (link, outcome) = link
        .write(move |conn, _, who, survey| {
            let now = Utc::now();
            let outcome = respond::send_back(conn, survey, who, &form.message, now)
                .map(|_| Submitted::SentBack);
            shown_again(conn, survey, who, outcome)
        })
        .await?;
    let typed = SignOffForm {
        message: typed,
        ..SignOffForm::default()
    };
    after(link, outcome, typed)
}

/// The country takes back its submission before the secretariat's review.
pub async fn recall(link: Respondent, _: NoFields) -> Result<HttpResponse, AppError> {
    let (link, outcome) = link
        .write(move |conn, _, who, survey| {
            let outcome =
                respond::recall(conn, survey, who, Utc::now()).map(|_| Submitted::Recalled);
            shown_again(conn, survey, who, outcome)
        })
        .await?;
    after(link, outcome, SignOffForm::default())
}

impl SignOffForm {
    fn with_error(mut self, link: &Link, field: &str, problem: &str) -> SignOffForm {
        let message = translate(
            link.lang,
            &format!("sign-off-error-{problem}"),
            &[("max", respond::MAX_SIGN_OFF_TEXT.to_string())],
        );
        match field {
            "name" => self.name_error = Some(message),
            "title" => self.title_error = Some(message),
            _ => self.message_error = Some(message),
        }
        self
    }
}

/// What an action led to, before the page is chosen.
enum Submitted {
    Version(i32),
    Incomplete,
    SentForSignOff,
    SentBack,
    Recalled,
}

impl From<SubmitOutcome> for Submitted {
    fn from(o: SubmitOutcome) -> Submitted {
        match o {
            SubmitOutcome::Submitted(v) => Submitted::Version(v.number),
            SubmitOutcome::Incomplete(_) => Submitted::Incomplete,
        }
    }
}

impl From<ForSignOff> for Submitted {
    fn from(o: ForSignOff) -> Submitted {
        match o {
            ForSignOff::Sent => Submitted::SentForSignOff,
            ForSignOff::Incomplete(_) => Submitted::Incomplete,
        }
    }
}

/// The page an action leads to, decided in the blocking task (where the response is read
/// again when a page must show it).
enum After {
    Redirect(String),
    /// The review page again, listing what is missing.
    Missing(Box<(ResponseState, Cycle)>),
    /// A typed value refused, with the response to show the form again.
    Invalid {
        field: &'static str,
        problem: &'static str,
        page: Box<(ResponseState, Cycle)>,
    },
    Refused(RespondError),
}

fn shown_again(
    conn: &mut DbConn,
    survey: &crate::survey::Survey,
    who: &respond::Respondent,
    outcome: Result<Submitted, RespondError>,
) -> Result<After, AppError> {
    let reload = |conn: &mut DbConn| -> Result<(ResponseState, Cycle), AppError> {
        let rs = respond::load(conn, survey, who, Utc::now().naive_utc())?;
        let cycle = load_cycle(conn, who, &rs)?;
        Ok((rs, cycle))
    };
    Ok(match outcome {
        Ok(Submitted::Version(n)) => After::Redirect(format!("/receipt/{n}")),
        Ok(Submitted::SentForSignOff) => After::Redirect("/review?sent=1".into()),
        Ok(Submitted::SentBack) => After::Redirect("/review?sent_back=1".into()),
        Ok(Submitted::Recalled) => After::Redirect("?recalled=1".into()),
        Ok(Submitted::Incomplete) => After::Missing(Box::new(reload(conn)?)),
        Err(RespondError::Invalid { field, problem }) => After::Invalid {
            field,
            problem,
            page: Box::new(reload(conn)?),
        },
        Err(e) => After::Refused(e),
    })
}

/// The page an action leads to; `typed`: what the sign-off or send-back form held, shown again
/// with its error when a value was refused.
fn after(link: Link, outcome: After, typed: SignOffForm) -> Result<HttpResponse, AppError> {
    match outcome {
        After::Redirect(to) => Ok(link.redirect(&to)),
        After::Missing(page) => {
            let (rs, cycle) = *page;
            review_page(
                &Page { link, rs },
                &cycle,
                true,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        After::Invalid {
            field,
            problem,
            page,
        } => {
            let form = typed.with_error(&link, field, problem);
            let (rs, cycle) = *page;
            review_page(
                &Page { link, rs },
                &cycle,
                false,
                Some(form),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        After::Refused(e) => super::refusal(&link, e),
    }
}

/// The hook a new version calls: its receipt emails, where email is configured.
fn receipts<'a>(
    notifier: &'a Option<Notifier<'a>>,
    now: chrono::NaiveDateTime,
) -> impl Fn(&mut DbConn, &ResponseRow, &VersionRow) -> Result<(), RespondError> + 'a {
    move |conn, response, version| match notifier {
        Some(n) => n.receipt(conn, response, version, now).map(|_| ()),
        None => Ok(()),
    }
}

fn notifier<'a>(
    app: &'a AppState,
    survey: &'a crate::survey::Survey,
    help: &'a str,
    lang: &'a str,
) -> Option<Notifier<'a>> {
    app.mailer.as_ref().map(|_| Notifier {
        survey,
        countries: &app.countries,
        emails: &app.emails,
        help,
        lang,
    })
}

/// The page's link and one of its response's versions: for the links that submit (not
/// contributors), else the bare 404; also 404 for a version that does not exist.
async fn open_version(link: Respondent, number: i32) -> Result<(Page, VersionRow), AppError> {
    let (page, version) = link
        .open_with(Visit::Quiet, move |conn, who, rs| {
            if !who.may_submit() {
                return Err(AppError::NotFound);
            }
            Ok(versions::version(conn, &rs.response.id, number)?)
        })
        .await?;
    Ok((page, version.ok_or(AppError::NotFound)?))
}

/// A submitted version's receipt: survey, country, version, time, who signed it off, and the
/// digest of its content. For the links that submit (not contributors).
pub async fn receipt(
    link: Respondent,
    path: web::Path<(String, i32)>,
) -> Result<HttpResponse, AppError> {
    let (page, version) = open_version(link, path.1).await?;
    let link = &page.link;
    let view = ReceiptView {
        survey: link.survey.title.get(link.lang),
        country: link.respondent_name(),
        version: version.number,
        at: link.date(version.submitted_at),
        signed_off: signed_off_by(&version),
        entered: version
            .entered_by
            .as_ref()
            .map(|_| translate(link.lang, &format!("channel-{}", version.channel), &[])),
        digest: version.digest,
        download: format!("{}/versions/{}/content.json", link.base(), version.number),
        base: link.base(),
    };
    let layout = link.layout(translate(link.lang, "receipt-title", &[]), true);
    link.render("respond/receipt", &layout, &view, StatusCode::OK, None)
}

#[derive(Serialize)]
struct ReceiptView<'a> {
    survey: &'a str,
    country: String,
    version: i32,
    at: String,
    signed_off: Option<String>,
    entered: Option<String>,
    digest: String,
    download: String,
    base: String,
}

/// A version's canonical content, byte for byte: its SHA-256 is the receipt's digest.
pub async fn version_content(
    link: Respondent,
    path: web::Path<(String, i32)>,
) -> Result<HttpResponse, AppError> {
    let (page, version) = open_version(link, path.1).await?;
    let token = &page.link.who.token;
    let name = format!(
        "{}-{}-v{}.json",
        page.link.survey.id, token.country_iso3, version.number
    );
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(version.content))
}
