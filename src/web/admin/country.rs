//! One country's file, as the secretariat reads it: the response section by section (draft or
//! submitted) with who saved each section and when; the personal links, with revoke and
//! "issue a new link" (its address shown once); the contacts and what was emailed to them;
//! the deadline extension and reopening.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::cycle::{self, AuditView, ChannelChoice, CycleQuery, CycleView};
use super::{admin_view, campaign_for, help_address, t, with_conn, Notices};
use crate::access::LinkEnd;
use crate::campaign;
use crate::db::outbox::{CountryMessage, OutboxStatus};
use crate::db::tokens::{LinkRole, TokenRow};
use crate::error::AppError;
use crate::i18n::format_datetime;
use crate::report::secretariat;
use crate::review::{self, CountryFile, HolderProblem, NewHolder, ResponseFile};
use crate::survey::answer::FileItem;
use crate::survey::display::display_value;
use crate::survey::Survey;
use crate::web::extract::{CsrfForm, SurveyAdmin};
use crate::web::AppState;

#[derive(Serialize)]
struct CountryPage {
    id: String,
    iso3: String,
    country: String,
    survey_title: String,
    #[serde(flatten)]
    notices: Notices,
    /// The address of a link just issued: shown this once, never stored.
    new_link: Option<String>,
    with_unit: bool,
    responses: Vec<ResponseView>,
    links: Vec<LinkView>,
    contacts: Vec<ContactView>,
    /// Emails to addresses that are no longer among the contacts.
    other_messages: Vec<MessageView>,
    deadline: DeadlineView,
    /// What the "issue a new link" form sent, kept when it is refused.
    issue: IssueView,
    /// Contacts, emails and issuing links are shown to administrators only.
    is_admin: bool,
    /// The country's audit entries, newest first.
    audit: Vec<AuditView>,
    /// The channels of a report entered for the country.
    channels: Vec<ChannelChoice>,
    /// "What changed since <previous round>", for a survey that follows another.
    changes_link: Option<String>,
}

#[derive(Serialize)]
struct ResponseView {
    unit: String,
    state: String,
    submitted: bool,
    sections: Vec<SectionView>,
    cycle: CycleView,
}

#[derive(Serialize)]
struct SectionView {
    title: String,
    saved: String,
    answers: Vec<AnswerView>,
}

#[derive(Serialize)]
struct AnswerView {
    question: String,
    answer: String,
    answered: bool,
    /// A file question's files, each linked for download.
    files: Vec<FileLink>,
}

/// An attached file named and linked for download.
#[derive(Serialize)]
struct FileLink {
    name: String,
    href: String,
}

/// One personal link as the country page shows it.
#[derive(Serialize)]
struct LinkView {
    id: String,
    holder: String,
    unit: String,
    /// "entered by X (paper)" for an owner's entry link.
    entry: Option<String>,
    issued: String,
    first_used: String,
    last_used: String,
    status: String,
    live: bool,
    /// The link's role, and a contributor's sections by title.
    role: String,
    sections: String,
}

#[derive(Serialize)]
struct ContactView {
    name: String,
    email: String,
    language: String,
    office: String,
    messages: Vec<MessageView>,
}

#[derive(Serialize)]
struct MessageView {
    kind: String,
    recipient: String,
    queued: String,
    delivery: String,
    failed: bool,
}

#[derive(Serialize)]
struct DeadlineView {
    current: String,
    /// Allowed dates for the form: today to two years ahead.
    min: String,
    max: String,
}

#[derive(Serialize, Default)]
struct IssueView {
    name: String,
    email: String,
    unit: String,
    expires: String,
    error: Option<String>,
    /// The role chosen, and for a contributor the sections ticked.
    roles: Vec<RoleChoice>,
    sections: Vec<SectionChoice>,
}

#[derive(Serialize)]
struct RoleChoice {
    value: &'static str,
    label: String,
    checked: bool,
}

#[derive(Serialize)]
struct SectionChoice {
    id: String,
    title: String,
    checked: bool,
}

impl IssueView {
    /// The role radios and section checkboxes, with what was chosen (a coordinator when
    /// nothing was).
    fn with_choices(
        mut self,
        survey: &Survey,
        lang: &str,
        role: LinkRole,
        ticked: &[String],
    ) -> Self {
        self.roles = LinkRole::ALL
            .iter()
            .map(|&r| RoleChoice {
                value: r.as_str(),
                label: t(&format!("link-role-{}", r.as_str()), &[]),
                checked: r == role,
            })
            .collect();
        self.sections = survey
            .sections
            .iter()
            .map(|s| SectionChoice {
                id: s.id.clone(),
                title: s.title.get(lang).to_string(),
                checked: ticked.contains(&s.id),
            })
            .collect();
        self
    }
}

impl DeadlineView {
    fn new(deadline: Option<NaiveDateTime>, lang: &str, now: NaiveDateTime) -> DeadlineView {
        let last = now.date() + chrono::Duration::days(366 * campaign::MAX_EXTENSION_YEARS);
        DeadlineView {
            current: match deadline {
                Some(d) => t("admin-deadline-current", &[("date", when(lang, Some(d)))]),
                None => t("admin-deadline-none", &[]),
            },
            min: now.date().to_string(),
            max: last.to_string(),
        }
    }
}

fn when(lang: &str, t: Option<NaiveDateTime>) -> String {
    t.map(|t| format_datetime(lang, t)).unwrap_or_default()
}

impl LinkView {
    fn new(row: &TokenRow, survey: &Survey, lang: &str, now: NaiveDateTime) -> Self {
        let status = match (row.ended(now), row.expires_at) {
            (None, None) => t("admin-link-live", &[]),
            (None, Some(e)) => t("admin-link-live-until", &[("date", when(lang, Some(e)))]),
            (Some(LinkEnd::Revoked), _) => t(
                "admin-link-revoked",
                &[
                    ("date", when(lang, row.revoked_at)),
                    ("by", row.revoked_by.clone().unwrap_or_default()),
                ],
            ),
            (Some(LinkEnd::Expired), _) => t(
                "admin-link-expired",
                &[("date", when(lang, row.expires_at))],
            ),
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
            entry: None,
            issued: when(lang, Some(row.created_at)),
            first_used: when(lang, row.first_used_at),
            last_used: when(lang, row.last_used_at),
            status,
            live: row.ended(now).is_none(),
            role: t(&format!("link-role-{}", row.role.as_str()), &[]),
            sections: row
                .section_ids()
                .map(|id| {
                    survey
                        .section(id)
                        .map(|s| s.title.get(lang).to_string())
                        .unwrap_or_else(|| id.to_string())
                })
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

impl MessageView {
    fn new(m: &CountryMessage, lang: &str) -> Self {
        let kind = t(&format!("admin-mail-kind-{}", m.kind.as_str()), &[]);
        let failed = m.status == OutboxStatus::Failed;
        let delivery = match m.status {
            OutboxStatus::Sent => t("admin-mail-sent", &[("date", when(lang, m.sent_at))]),
            OutboxStatus::Failed => t(
                "admin-mail-failed",
                &[("error", m.last_error.clone().unwrap_or_default())],
            ),
            OutboxStatus::Pending | OutboxStatus::Sending => t(
                "admin-mail-waiting",
                &[("attempts", m.attempts.to_string())],
            ),
        };
        MessageView {
            kind,
            recipient: m.recipient.clone(),
            queued: when(lang, Some(m.created_at)),
            delivery,
            failed,
        }
    }
}

fn response_view(
    state: &AppState,
    survey: &Survey,
    r: &ResponseFile,
    lang: &str,
    cycle: CycleView,
) -> ResponseView {
    let name_of = |code: &str| {
        state
            .countries
            .get(code)
            .map(|c| c.name(lang).to_string())
            .unwrap_or_else(|| code.to_string())
    };
    // Reopening takes a response with the secretariat (submitted, under review, accepted).
    let submitted = r.response.is_submitted();
    let state_line = match r.response.submitted_at {
        Some(at) => t(
            "admin-response-submitted",
            &[("date", when(lang, Some(at)))],
        ),
        // A save dates its section, not the response row.
        None => t(
            "admin-response-draft",
            &[(
                "date",
                when(
                    lang,
                    r.saves
                        .values()
                        .map(|s| s.at)
                        .max()
                        .max(Some(r.response.updated_at)),
                ),
            )],
        ),
    };
    let sections = survey
        .sections
        .iter()
        .filter(|s| r.visibility.section(&s.id))
        .map(|s| {
            let saved = match r.saves.get(&s.id) {
                None => t("admin-section-not-saved", &[]),
                Some(save) => {
                    let date = ("date", when(lang, Some(save.at)));
                    match &save.by {
                        Some(by) => t("admin-section-saved-by", &[date, ("by", by.clone())]),
                        None => t("admin-section-saved", &[date]),
                    }
                }
            };
            let answers = s
                .questions
                .iter()
                .filter(|q| r.visibility.question(&q.id))
                .map(|q| match r.answers.get(&q.id).filter(|i| !i.is_empty()) {
                    Some(items) => AnswerView {
                        question: q.text.get(lang).to_string(),
                        answer: display_value(q, items, lang, &name_of),
                        answered: true,
                        files: FileItem::all(items)
                            .into_iter()
                            .map(|f| FileLink {
                                href: format!(
                                    "/admin/surveys/{}/countries/{}/files/{}",
                                    survey.id, r.response.country_iso3, f.id
                                ),
                                name: f.name,
                            })
                            .collect(),
                    },
                    None => AnswerView {
                        question: q.text.get(lang).to_string(),
                        answer: t("admin-answer-missing", &[]),
                        answered: false,
                        files: Vec::new(),
                    },
                })
                .collect();
            SectionView {
                title: s.title.get(lang).to_string(),
                saved,
                answers,
            }
        })
        .collect();
    ResponseView {
        unit: r.response.unit.clone(),
        state: state_line,
        submitted,
        sections,
        cycle,
    }
}

fn contact_views(file: &CountryFile, lang: &str) -> (Vec<ContactView>, Vec<MessageView>) {
    let mut contacts: Vec<ContactView> = file
        .contacts
        .iter()
        .map(|c| ContactView {
            name: c.name.clone(),
            email: c.email.clone(),
            language: c.language.clone(),
            office: c.office.clone(),
            messages: Vec::new(),
        })
        .collect();
    let mut others = Vec::new();
    for m in &file.messages {
        let owner = file
            .contacts
            .iter()
            .position(|c| m.contact_id.as_deref() == Some(c.id.as_str()) || m.recipient == c.email);
        match owner {
            Some(i) => contacts[i].messages.push(MessageView::new(m, lang)),
            None => others.push(MessageView::new(m, lang)),
        }
    }
    (contacts, others)
}

/// What a handler adds to the page it shows after a form.
pub(super) struct Outcome {
    pub(super) notices: Notices,
    new_link: Option<String>,
    issue: IssueView,
    /// The issue form's role and sections, kept when it is refused.
    role: LinkRole,
    sections: Vec<String>,
    /// Accepting the response of this unit was asked with open queries: ask to confirm.
    pub(super) confirm_accept: Option<String>,
    /// The version shown and the versions compared.
    pub(super) cycle: CycleQuery,
}

impl Default for Outcome {
    fn default() -> Outcome {
        Outcome {
            notices: Notices::default(),
            new_link: None,
            issue: IssueView::default(),
            role: LinkRole::Coordinator,
            sections: Vec::new(),
            confirm_accept: None,
            cycle: CycleQuery::default(),
        }
    }
}

impl Outcome {
    pub(super) fn error(text: String) -> Outcome {
        Outcome {
            notices: Notices::error(text),
            ..Outcome::default()
        }
    }

    pub(super) fn message(text: String) -> Outcome {
        Outcome {
            notices: Notices::message(text),
            ..Outcome::default()
        }
    }

    /// The issue form again, with what was typed and why it was refused.
    fn refused_issue(form: IssueForm, error: String) -> Outcome {
        let issue = IssueView {
            name: form.name,
            email: form.email,
            unit: form.unit,
            expires: form.expires,
            error: Some(error),
            ..IssueView::default()
        };
        Outcome {
            issue,
            role: form.role.unwrap_or(LinkRole::Coordinator),
            sections: form.sections,
            ..Outcome::default()
        }
    }
}

/// The country page. Contacts and their emails, and issuing links, are for administrators (as
/// the contacts file and invitations are); owners read the response and the links, revoke
/// links, extend the deadline and reopen.
pub(super) async fn country_page(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    scope: &SurveyAdmin,
    iso3: &str,
    outcome: Outcome,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let survey = &scope.survey;
    let is_admin = scope.user.is_admin();
    let lang = crate::web::page_language();
    let country = state
        .countries
        .get(iso3)
        .ok_or(AppError::NotFound)?
        .name(lang)
        .to_string();
    let (s, code) = (survey.clone(), iso3.to_string());
    let asked = outcome.cycle.clone();
    let (file, cycles, audit, names) = with_conn(state, move |conn| {
        let file = review::load(conn, &s, &code)?;
        let mut cycles = Vec::new();
        for r in &file.responses {
            let request = asked.for_unit(&r.response.unit);
            let c = secretariat::load_cycle(conn, &s, &r.response, &request);
            cycles.push(c.map_err(cycle::app_error)?);
        }
        let audit = crate::db::audit::country_entries(conn, &s.id, &code, AUDIT_SHOWN)?;
        let names = cycle::load_names(conn, &file.links, &cycles, &audit)?;
        Ok((file, cycles, audit, names))
    })
    .await?;
    let now = campaign::now();
    let deadline = file.extended_to.or(survey.closes.map(|c| c.naive_utc()));
    let (contacts, other_messages) = if is_admin {
        contact_views(&file, lang)
    } else {
        (Vec::new(), Vec::new())
    };
    let view = CountryPage {
        id: survey.id.clone(),
        iso3: iso3.to_string(),
        survey_title: survey.title.get(lang).to_string(),
        notices: outcome.notices,
        new_link: outcome.new_link,
        with_unit: !survey.unit.is_country(),
        responses: file
            .responses
            .iter()
            .zip(&cycles)
            .map(|(r, c)| {
                let confirm = outcome.confirm_accept.as_deref() == Some(r.response.unit.as_str());
                let cv = cycle::cycle_view(state, survey, lang, &names, &r.response, c, confirm);
                response_view(state, survey, r, lang, cv)
            })
            .collect(),
        links: file
            .links
            .iter()
            .map(|r| LinkView {
                entry: names.entry(&r.id),
                ..LinkView::new(r, survey, lang, now)
            })
            .collect(),
        audit: cycle::audit_views(&audit, &names, survey, lang),
        channels: cycle::channel_choices(),
        contacts,
        other_messages,
        deadline: DeadlineView::new(deadline, lang, now),
        issue: outcome
            .issue
            .with_choices(survey, lang, outcome.role, &outcome.sections),
        is_admin,
        country: country.clone(),
        changes_link: survey
            .previous
            .as_ref()
            .and_then(|p| p.definition.as_ref())
            .map(|p| {
                t(
                    "changes-link",
                    &[("previous", p.title.get(lang).to_string())],
                )
            }),
    };
    let page = format!("/admin/surveys/{}/countries/{iso3}", survey.id);
    let layout = super::wide_layout(req, country, &page);
    admin_view(state, req, "admin/country", layout, &view, status)
}

/// How many audit entries the country page lists (the newest).
const AUDIT_SHOWN: i64 = 200;

pub async fn country(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    path: web::Path<(String, String)>,
    query: web::Query<CycleQuery>,
) -> Result<HttpResponse, AppError> {
    let iso3 = path.into_inner().1;
    let outcome = Outcome {
        cycle: query.into_inner(),
        ..Outcome::default()
    };
    country_page(&state, &req, &scope, &iso3, outcome, StatusCode::OK).await
}

pub async fn revoke_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    path: web::Path<(String, String, String)>,
    _: CsrfForm<super::session::NoFields>,
) -> Result<HttpResponse, AppError> {
    let (_, iso3, link_id) = path.into_inner();
    let (sid, code, user) = (scope.survey.id.clone(), iso3.clone(), scope.user.clone());
    let revoked = with_conn(&state, move |conn| {
        Ok(review::revoke_link(
            conn,
            &sid,
            &code,
            &link_id,
            &user,
            campaign::now(),
        )?)
    })
    .await?;
    let msg = match revoked.ok_or(AppError::NotFound)? {
        review::Revoked::Now(holder) => t("admin-link-revoked-done", &[("holder", holder)]),
        review::Revoked::Already(holder) => t("admin-link-already-ended", &[("holder", holder)]),
    };
    let outcome = Outcome::message(msg);
    country_page(&state, &req, &scope, &iso3, outcome, StatusCode::OK).await
}

/// The "issue a new link" form: `section` repeats (one per ticked box), so it is read from
/// the posted pairs rather than by serde.
#[derive(Clone, Default)]
pub struct IssueForm {
    name: String,
    email: String,
    unit: String,
    expires: String,
    /// None when the posted role names none.
    role: Option<LinkRole>,
    sections: Vec<String>,
}

impl IssueForm {
    fn from_pairs(pairs: Vec<(String, String)>) -> IssueForm {
        let mut form = IssueForm {
            role: Some(LinkRole::Coordinator),
            ..IssueForm::default()
        };
        for (key, value) in pairs {
            match key.as_str() {
                "name" => form.name = value,
                "email" => form.email = value,
                "unit" => form.unit = value,
                "expires" => form.expires = value,
                "role" => form.role = LinkRole::parse(value.trim()),
                "section" => form.sections.push(value),
                _ => {}
            }
        }
        // Sections ticked before the role was changed away from contributor are not sent on.
        if form.role != Some(LinkRole::Contributor) {
            form.sections.clear();
        }
        form
    }

    /// Who the link is for, as the page names them: the name, else the email.
    fn holder(&self) -> String {
        [self.name.trim(), self.email.trim()]
            .into_iter()
            .find(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| t("admin-link-unnamed", &[]))
    }
}

/// The form's values checked: the link's expiry, or the message to show beside the form. A
/// country outside the survey's population gets no link.
fn check_issue(
    survey: &Survey,
    iso3: &str,
    form: &IssueForm,
    now: NaiveDateTime,
) -> Result<Option<NaiveDateTime>, String> {
    if !survey.population.contains(iso3) {
        return Err(survey.population.refusal(&survey.id, iso3));
    }
    let Some(role) = form.role else {
        return Err(t("admin-issue-bad-role", &[]));
    };
    let holder = NewHolder {
        name: &form.name,
        email: &form.email,
        unit: &form.unit,
        expires_at: None,
        role,
        sections: &form.sections,
    };
    holder.check(survey).map_err(|problem| {
        let max = [("max", review::MAX_HOLDER_CHARS.to_string())];
        match problem {
            HolderProblem::UnitNotAsked => t("admin-issue-unit-not-asked", &[]),
            HolderProblem::UnitMissing => t("admin-issue-unit-missing", &[]),
            HolderProblem::TooLong => t("error-too-long", &max),
            HolderProblem::Unprintable => t("admin-issue-unprintable", &[]),
            HolderProblem::BadEmail => t("admin-issue-bad-email", &[]),
            HolderProblem::NoSection => t("admin-issue-no-section", &[]),
            // Not reachable from the form, which sends sections only for contributors.
            HolderProblem::SectionsNotAsked => t("admin-issue-sections-not-asked", &[]),
            HolderProblem::UnknownSection => t("admin-issue-unknown-section", &[]),
        }
    })?;
    if form.expires.trim().is_empty() {
        return Ok(None);
    }
    match campaign::deadline_in_range(&form.expires, now) {
        Some(day) => Ok(day.and_hms_opt(23, 59, 59)),
        None => {
            let years = [("years", campaign::MAX_EXTENSION_YEARS.to_string())];
            Err(t("admin-bad-date-range", &years))
        }
    }
}

pub async fn issue_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    path: web::Path<(String, String)>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let form = IssueForm::from_pairs(pairs);
    if !scope.user.is_admin() {
        return Err(AppError::Forbidden);
    }
    let iso3 = path.into_inner().1;
    state.countries.get(&iso3).ok_or(AppError::NotFound)?;
    let now = campaign::now();
    let expires_at = match check_issue(&scope.survey, &iso3, &form, now) {
        Ok(expires) => expires,
        Err(error) => {
            let outcome = Outcome::refused_issue(form, error);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return country_page(&state, &req, &scope, &iso3, outcome, status).await;
        }
    };
    let (s, code, f) = (scope.survey.clone(), iso3.clone(), form.clone());
    let by = scope.user.id.clone();
    let token = with_conn(&state, move |conn| {
        let holder = NewHolder {
            name: &f.name,
            email: &f.email,
            unit: &f.unit,
            expires_at,
            role: f.role.unwrap_or(LinkRole::Coordinator),
            sections: &f.sections,
        };
        let by = crate::audit::Actor::User(&by);
        Ok(review::issue_link(conn, &s, &code, &holder, by, now)?)
    })
    .await?;
    let outcome = Outcome {
        notices: Notices::message(t("admin-issue-done", &[("holder", form.holder())])),
        new_link: Some(format!("{}/r/{token}", state.settings.base_url)),
        ..Outcome::default()
    };
    country_page(&state, &req, &scope, &iso3, outcome, StatusCode::OK).await
}

/// Run a campaign action (extension, reopening) for the signed-in user, on a pooled connection.
async fn in_campaign<F>(
    state: &web::Data<AppState>,
    scope: &SurveyAdmin,
    act: F,
) -> Result<(), AppError>
where
    F: FnOnce(
            &campaign::Campaign,
            &mut crate::db::DbConn,
            &crate::accounts::User,
        ) -> Result<campaign::Queued, campaign::CampaignError>
        + Send
        + 'static,
{
    let (app, survey, user) = (state.clone(), scope.survey.clone(), scope.user.clone());
    let help = help_address(state);
    with_conn(state, move |conn| {
        act(&campaign_for(&app, &survey, &help), conn, &user)?;
        Ok(())
    })
    .await
}

#[derive(Deserialize)]
pub struct DeadlineForm {
    #[serde(default)]
    closes: String,
}

pub async fn extend_deadline(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    path: web::Path<(String, String)>,
    CsrfForm(form): CsrfForm<DeadlineForm>,
) -> Result<HttpResponse, AppError> {
    let iso3 = path.into_inner().1;
    let country = state.countries.get(&iso3).ok_or(AppError::NotFound)?;
    let country = country.name(crate::web::page_language()).to_string();
    let Some(date) = campaign::deadline_in_range(&form.closes, campaign::now()) else {
        let years = [("years", campaign::MAX_EXTENSION_YEARS.to_string())];
        let outcome = Outcome {
            notices: Notices::error(t("admin-bad-date-range", &years)),
            ..Outcome::default()
        };
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return country_page(&state, &req, &scope, &iso3, outcome, status).await;
    };
    let closes = date.and_hms_opt(23, 59, 59).ok_or(AppError::BadRequest)?;
    let c = iso3.clone();
    in_campaign(&state, &scope, move |round, conn, user| {
        round.extend_deadline(conn, &c, closes, user, campaign::now())
    })
    .await?;
    let date = ("date", format!("{date} 23:59"));
    let msg = t("admin-extended", &[("country", country), date]);
    let outcome = Outcome::message(msg);
    country_page(&state, &req, &scope, &iso3, outcome, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct ReopenForm {
    /// In a survey of organisations, which of the country's responses.
    #[serde(default)]
    unit: String,
}

pub async fn reopen(
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: SurveyAdmin,
    path: web::Path<(String, String)>,
    CsrfForm(form): CsrfForm<ReopenForm>,
) -> Result<HttpResponse, AppError> {
    let iso3 = path.into_inner().1;
    let unit = form.unit.trim().to_string();
    let country = state.countries.get(&iso3).ok_or(AppError::NotFound)?;
    let country = crate::survey::respondent_name(&unit, country.name(crate::web::page_language()));
    let c = iso3.clone();
    in_campaign(&state, &scope, move |round, conn, user| {
        round.reopen(conn, &c, &unit, user, campaign::now())
    })
    .await?;
    let outcome = Outcome::message(t("admin-reopened", &[("country", country)]));
    country_page(&state, &req, &scope, &iso3, outcome, StatusCode::OK).await
}
