//! The respondent pages' views: what each template shows, built from the link and the
//! response as stored. Texts borrow from the survey; nothing here touches the database.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use chrono::Utc;
use serde::Serialize;

use super::field::{CarriedMark, FieldView};
use super::link::{Link, Page};
use super::queries::QueryNote;
use crate::db::tokens::{LinkRole, TokenRow};
use crate::error::AppError;
use crate::i18n::format_datetime;
use crate::respond::{Conflict, RespondError, ResponseState, SaveOutcome};
use crate::survey::answer::escape_of;
use crate::survey::answer::{
    missing_answers, section_progress, FieldError, FileItem, Item, RawAnswer, SectionProgress,
};
use crate::survey::display::{display_value, escape_label_id};
use crate::survey::{EscapeKind, Question, QuestionKind, Survey};
use crate::web::render::{translate, SECTION_PLAIN};
use crate::web::MessagePage;

impl Link {
    pub fn country_name(&self, iso3: &str) -> String {
        self.state
            .countries
            .get(iso3)
            .map(|c| c.name(self.lang).to_string())
            .unwrap_or_else(|| iso3.to_string())
    }

    /// Whose response this is: the country, or "organisation, country".
    pub fn respondent_name(&self) -> String {
        let token = &self.who.token;
        crate::survey::respondent_name(&token.unit, &self.country_name(&token.country_iso3))
    }

    /// An answer as text, countries by name, in the page's language.
    fn display(&self, q: &Question, items: &[Item]) -> String {
        display_value(q, items, self.lang, &|c| self.country_name(c))
    }

    pub(super) fn date(&self, t: chrono::NaiveDateTime) -> String {
        format_datetime(self.lang, t)
    }
}

/// Why a response cannot change now, as a message id, or None when it can.
fn readonly_reason(survey: &Survey, rs: &ResponseState) -> Option<&'static str> {
    let now = Utc::now();
    use crate::db::responses::ResponseStatus;
    if !rs.is_draft() {
        Some(match rs.response.status {
            ResponseStatus::AwaitingSignOff => "state-refused-awaiting_sign_off",
            ResponseStatus::UnderReview => "state-refused-under_review",
            ResponseStatus::Accepted => "state-refused-accepted",
            _ => "section-readonly",
        })
    } else if rs.is_closed(now) || !survey.is_open_yet(now) {
        Some("section-closed")
    } else {
        None
    }
}

/// The overview: the country, the deadline, and each section with its progress.
#[derive(Serialize)]
pub struct OverviewView<'a> {
    country: String,
    description: Option<&'a str>,
    deadline: Option<String>,
    closed_at: Option<String>,
    opens_at: Option<String>,
    submitted_at: Option<String>,
    sections: Vec<OverviewSection<'a>>,
    /// A contributor's link: only its sections, no submitting.
    contributor: bool,
    /// Where the response stands in the report cycle (`report-state-<state>`).
    state: &'static str,
    state_key: String,
    /// The latest version, for its receipt (links that submit).
    receipt: Option<i32>,
    base: String,
    /// The secretariat's queries this link sees.
    queries: Vec<QueryNote>,
    /// Who answers each section the link answers, and how far it is.
    handover: Vec<HandoverRow<'a>>,
    /// A coordinator's link: it hands sections to colleagues and revokes their links.
    coordinator: bool,
    /// A coordinator's colleagues (live contributor links); none for other links.
    colleagues: Vec<ColleagueRow>,
    csrf: String,
    /// Carried answers still to confirm in the sections this link answers (0 where the
    /// survey does not ask for it).
    to_confirm: usize,
    /// Sections to look at again since the survey's definition changed (see
    /// [`OverviewView::with_definition_notices`]).
    changed_sections: Vec<ChangedSection<'a>>,
}

/// A section whose stored answers a change of the survey's definition touched.
#[derive(Serialize)]
struct ChangedSection<'a> {
    id: &'a str,
    title: &'a str,
}

/// The live contributor links of the response, read with the overview.
pub struct Team {
    pub contributors: Vec<TokenRow>,
}

/// A section's hand-over state: nothing saved, saved, or marked ready (until saved again).
#[derive(Serialize)]
struct HandoverRow<'a> {
    id: &'a str,
    title: &'a str,
    /// The contributors it is handed to, by name, joined; '' when nobody has it.
    assignees: String,
    /// The tag's class (`tag-<state>`) and message (`handover-state-<state>`).
    state: &'static str,
    state_key: &'static str,
    /// Saved, not ready, and the response may still change.
    may_mark_ready: bool,
}

#[derive(Serialize)]
struct ColleagueRow {
    id: String,
    name: String,
    email: String,
    /// Titles of the sections handed over, joined.
    sections: String,
}

fn holder_name(t: &TokenRow) -> String {
    (t.holder_name.clone())
        .or_else(|| t.holder_email.clone())
        .unwrap_or_default()
}

#[derive(Serialize)]
struct OverviewSection<'a> {
    id: &'a str,
    title: &'a str,
    /// The tag's class (`tag-<status>`) and message (`overview-status-<status>`).
    status: &'static str,
    status_key: &'static str,
    /// Carried answers of the section neither confirmed nor changed.
    to_confirm: usize,
}

/// Carried answers left to confirm, by section, where the survey asks for it (the sections a
/// link does not answer included: callers filter).
fn to_confirm_by_section(survey: &Survey, rs: &ResponseState) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    if crate::respond::must_confirm(survey) {
        for m in rs.left_to_confirm(survey) {
            *out.entry(m.section).or_insert(0) += 1;
        }
    }
    out
}

fn progress_names(p: SectionProgress) -> (&'static str, &'static str) {
    match p {
        SectionProgress::NotStarted => ("not_started", "overview-status-not_started"),
        SectionProgress::InProgress => ("in_progress", "overview-status-in_progress"),
        SectionProgress::Complete => ("complete", "overview-status-complete"),
        SectionProgress::NotApplicable => ("not_applicable", "overview-status-not_applicable"),
    }
}

impl<'a> OverviewView<'a> {
    pub fn new(page: &'a Page, team: &Team, csrf: String) -> OverviewView<'a> {
        let (link, rs) = (&page.link, &page.rs);
        let (survey, lang) = (&link.survey, link.lang);
        let now = Utc::now();
        let coordinator = link.who.token.role == LinkRole::Coordinator;
        let to_confirm = to_confirm_by_section(survey, rs);
        let sections: Vec<OverviewSection> = survey
            .sections
            .iter()
            .filter(|s| link.who.may_answer(&s.id))
            .map(|s| {
                let (status, status_key) =
                    progress_names(section_progress(s, &rs.answers, &rs.visibility));
                OverviewSection {
                    id: &s.id,
                    title: s.title.get(lang),
                    status,
                    status_key,
                    to_confirm: to_confirm.get(&s.id).copied().unwrap_or(0),
                }
            })
            .collect();
        let to_confirm = match rs.is_draft() {
            true => sections.iter().map(|s| s.to_confirm).sum(),
            false => 0,
        };
        OverviewView {
            country: link.respondent_name(),
            description: survey.description.as_ref().map(|d| d.get(lang)),
            deadline: rs.closes.map(|c| link.date(c.naive_utc())),
            closed_at: rs
                .closes
                .filter(|c| now > *c)
                .map(|c| link.date(c.naive_utc())),
            opens_at: survey
                .opens
                .filter(|o| now < *o)
                .map(|o| link.date(o.naive_utc())),
            submitted_at: rs.response.submitted_at.map(|t| link.date(t)),
            sections,
            contributor: !link.who.may_submit(),
            state: rs.response.status.as_str(),
            state_key: format!("report-state-{}", rs.response.status.as_str()),
            receipt: (rs.response.version_count > 0 && link.who.may_submit())
                .then_some(rs.response.version_count),
            base: link.base(),
            queries: Vec::new(),
            handover: handover_rows(page, team),
            coordinator,
            colleagues: if coordinator {
                colleague_rows(survey, lang, team)
            } else {
                Vec::new()
            },
            csrf,
            to_confirm,
            changed_sections: Vec::new(),
        }
    }

    /// With the sections a definition change touched (`(section, when)`, from
    /// `db::definitions::notices`): each until it is saved after that time, all until the
    /// response is submitted after it.
    pub fn with_definition_notices(
        mut self,
        page: &'a Page,
        notices: &[(String, chrono::NaiveDateTime)],
    ) -> Self {
        let (link, rs) = (&page.link, &page.rs);
        let submitted = rs.response.submitted_at;
        self.changed_sections = (link.survey.sections.iter())
            .filter(|s| link.who.may_answer(&s.id))
            .filter(|s| {
                notices.iter().any(|(id, at)| {
                    *id == s.id
                        && submitted.is_none_or(|t| t < *at)
                        && rs.sections.get(&s.id).is_none_or(|st| st.updated_at < *at)
                })
            })
            .map(|s| ChangedSection {
                id: &s.id,
                title: s.title.get(link.lang),
            })
            .collect();
        self
    }

    /// With the secretariat's queries listed.
    pub fn with_queries(mut self, queries: Vec<QueryNote>) -> Self {
        self.queries = queries;
        self
    }
}

fn colleague_rows(survey: &Survey, lang: &str, team: &Team) -> Vec<ColleagueRow> {
    (team.contributors.iter())
        .map(|c| ColleagueRow {
            id: c.id.clone(),
            name: c.holder_name.clone().unwrap_or_default(),
            email: c.holder_email.clone().unwrap_or_default(),
            sections: (survey.sections.iter())
                .filter(|s| c.may_answer(&s.id))
                .map(|s| s.title.get(lang))
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect()
}

/// Each section the link answers: to whom it is handed and its state.
fn handover_rows<'a>(page: &'a Page, team: &Team) -> Vec<HandoverRow<'a>> {
    let (link, rs) = (&page.link, &page.rs);
    let editable = readonly_reason(&link.survey, rs).is_none();
    (link.survey.sections.iter())
        .filter(|s| link.who.may_answer(&s.id))
        .map(|s| {
            let stored = rs.sections.get(&s.id);
            let (state, state_key) = match stored {
                None => ("not_started", "handover-state-not_started"),
                Some(row) if row.is_ready() => ("ready", "handover-state-ready"),
                Some(_) => ("in_progress", "handover-state-in_progress"),
            };
            let assignees: Vec<String> = (team.contributors.iter())
                .filter(|c| c.may_answer(&s.id))
                .map(holder_name)
                .collect();
            HandoverRow {
                id: &s.id,
                title: s.title.get(link.lang),
                assignees: assignees.join(", "),
                state,
                state_key,
                may_mark_ready: editable && state == "in_progress",
            }
        })
        .collect()
}

/// What a section page shows besides the stored answers (after a save, a failed or a
/// conflicting one).
#[derive(Default)]
pub struct SectionExtras {
    pub errors: BTreeMap<String, FieldError>,
    /// Values to show instead of the stored ones (after a failed or conflicting save).
    pub posted: Option<HashMap<String, RawAnswer>>,
    pub saved: bool,
    pub revealed: bool,
    pub conflict: Option<ConflictView>,
    pub version: Option<i32>,
    /// The save was refused because the response may not change now (nothing stored).
    pub refused: bool,
    /// The secretariat's queries this link sees (shown beside their questions).
    pub queries: Vec<QueryNote>,
}

impl SectionExtras {
    /// The form shown again after a save that did not store everything: the posted values
    /// with their errors (422), or beside another official's newer save (409).
    pub fn shown_again(
        link: &Link,
        outcome: SaveOutcome,
        posted: HashMap<String, RawAnswer>,
    ) -> (SectionExtras, StatusCode) {
        match outcome {
            SaveOutcome::Saved { errors, revealed } => {
                let extras = SectionExtras {
                    errors,
                    posted: Some(posted),
                    revealed: !revealed.is_empty(),
                    ..SectionExtras::default()
                };
                (extras, StatusCode::UNPROCESSABLE_ENTITY)
            }
            SaveOutcome::Conflict {
                conflicts,
                current_version,
                saved_by,
                saved_at,
                errors,
            } => {
                let extras = SectionExtras {
                    errors,
                    posted: Some(posted),
                    conflict: Some(ConflictView::new(link, &conflicts, saved_by, saved_at)),
                    version: Some(current_version),
                    ..SectionExtras::default()
                };
                (extras, StatusCode::CONFLICT)
            }
        }
    }
}

/// Another official's newer save, beside this one's values.
#[derive(Serialize)]
pub struct ConflictView {
    who: String,
    date: String,
    items: Vec<ConflictItem>,
}

#[derive(Serialize)]
struct ConflictItem {
    text: String,
    yours: String,
    theirs: String,
}

impl ConflictView {
    fn new(
        link: &Link,
        conflicts: &[Conflict],
        saved_by: Option<String>,
        saved_at: Option<chrono::NaiveDateTime>,
    ) -> ConflictView {
        let items = conflicts
            .iter()
            .filter_map(|c| {
                let q = link.survey.question(&c.question)?;
                Some(ConflictItem {
                    text: q.text.get(link.lang).to_string(),
                    yours: link.display(q, &c.yours),
                    theirs: link.display(q, &c.theirs),
                })
            })
            .collect();
        ConflictView {
            who: saved_by.unwrap_or_else(|| translate(link.lang, "conflict-someone", &[])),
            date: saved_at.map(|t| link.date(t)).unwrap_or_default(),
            items,
        }
    }
}

/// One section's form.
#[derive(Serialize)]
pub struct SectionView<'a> {
    id: &'a str,
    pub title: &'a str,
    intro: Option<&'a str>,
    number: usize,
    total: usize,
    questions: SectionQuestions<'a>,
    error_list: Vec<ErrorItem<'a>>,
    /// Valid values were saved though others were not.
    kept: bool,
    saved: bool,
    revealed: bool,
    conflict: Option<ConflictView>,
    readonly_key: Option<&'static str>,
    /// Nothing was stored (the typed values are shown so they can be copied): the message id
    /// of why. None when the save was not refused.
    refused: Option<&'static str>,
    csrf: String,
    version: i32,
    base: String,
    queries: Vec<QueryNote>,
    /// The section has a file question: the form is sent as multipart/form-data.
    multipart: bool,
    /// Carried answers of this section neither confirmed nor changed.
    to_confirm: usize,
    /// Offer one box for all of them (more than one left).
    confirm_all: bool,
    /// The survey asks for each carried answer to be confirmed or changed before submitting.
    must_confirm: bool,
}

/// The section's questions: their views, which the section template renders through the field
/// partial, or (the fast path) each field already rendered from its skeleton.
#[derive(Serialize)]
#[serde(untagged)]
enum SectionQuestions<'a> {
    Fields(Vec<FieldView<'a>>),
    Rendered(Vec<RenderedField<'a>>),
}

/// A question of a section page as the fast section template takes it: its field's HTML.
#[derive(Serialize)]
struct RenderedField<'a> {
    id: &'a str,
    field_html: String,
}

/// A line of the error summary, linking to its field.
#[derive(Serialize)]
struct ErrorItem<'a> {
    id: &'a str,
    text: &'a str,
    message: String,
}

impl<'a> SectionView<'a> {
    /// The form of `section_id`; None when it does not exist or a condition hides it. Its
    /// fields come rendered from their skeletons where the section template allows it.
    pub fn new(
        page: &'a Page,
        section_id: &str,
        extras: SectionExtras,
        csrf: String,
    ) -> Result<Option<SectionView<'a>>, handlebars::RenderError> {
        let Some(mut view) = Self::with_fields(page, section_id, extras, csrf) else {
            return Ok(None);
        };
        let templates = &page.link.state.templates;
        if templates.fast_section() {
            view.render_fields(page)?;
        }
        Ok(Some(view))
    }

    /// Each field rendered from its skeleton (see [`crate::web::render::Templates::render_fragment`]); in debug
    /// builds, the section's body also rendered both ways and compared.
    fn render_fields(&mut self, page: &'a Page) -> Result<(), handlebars::RenderError> {
        let SectionQuestions::Fields(fields) = &mut self.questions else {
            return Ok(());
        };
        let (link, templates) = (&page.link, &page.link.state.templates);
        let mut rendered = Vec::with_capacity(fields.len());
        for field in fields.iter_mut() {
            let Some(q) = link.survey.question(field.id) else {
                continue;
            };
            let key = super::field::fragment_key(&link.survey, q, link.lang);
            let mut html = String::with_capacity(1024);
            templates.render_fragment("respond/field", link.lang, key, field, &mut html)?;
            rendered.push(RenderedField {
                id: field.id,
                field_html: html,
            });
        }
        let fields = std::mem::replace(&mut self.questions, SectionQuestions::Rendered(rendered));
        if templates.verify_always() {
            let fast = templates.render_body("respond/section", link.lang, self)?;
            let rendered = std::mem::replace(&mut self.questions, fields);
            let plain = templates.render_body(SECTION_PLAIN, link.lang, self)?;
            self.questions = rendered;
            if fast != plain {
                return Err(crate::web::render::mismatch(
                    "respond/section",
                    &plain,
                    &fast,
                ));
            }
        }
        Ok(())
    }

    /// The form with every question's view, as the plain section template takes it.
    pub fn with_fields(
        page: &'a Page,
        section_id: &str,
        extras: SectionExtras,
        csrf: String,
    ) -> Option<SectionView<'a>> {
        let (link, rs) = (&page.link, &page.rs);
        let lang = link.lang;
        let (index, section) = (link.survey.sections.iter().enumerate())
            .find(|(_, s)| s.id == section_id)
            .filter(|(_, s)| rs.visibility.section(&s.id) && link.who.may_answer(&s.id))?;
        let mut questions = Vec::new();
        let mut error_list = Vec::new();
        let unanswered = RawAnswer::default();
        let mut multipart = false;
        let mut to_confirm = 0;
        for q in (section.questions.iter()).filter(|q| rs.visibility.question(&q.id)) {
            let stored;
            let raw = match &extras.posted {
                Some(posted) => posted.get(&q.id).unwrap_or(&unanswered),
                None => {
                    let items = rs.answers.get(&q.id).map(Vec::as_slice).unwrap_or(&[]);
                    stored = RawAnswer::from_items(&q.kind, items);
                    &stored
                }
            };
            let error = (extras.errors.get(&q.id)).map(|e| translate(lang, e.message_id, &e.args));
            if let Some(message) = &error {
                error_list.push(ErrorItem {
                    id: &q.id,
                    text: q.text.get(lang),
                    message: message.clone(),
                });
            }
            let countries = &link.state.country_options;
            let items = rs.answers.get(&q.id).map(Vec::as_slice).unwrap_or(&[]);
            multipart |= q.kind.is_file();
            let mut field = FieldView::new(q, raw, items, error, lang, countries);
            if let Some(c) = rs.carried_shown(&q.id) {
                let changed = rs.carried_changed(&q.id);
                if !changed && c.confirmed_at.is_none() {
                    to_confirm += 1;
                }
                field = field.with_carried(CarriedMark {
                    confirmed: c.confirmed_at.is_some(),
                    changed,
                    previous: match changed {
                        true if c.items.is_empty() => translate(lang, "rounds-no-answer", &[]),
                        true => link.display(q, &c.items),
                        false => String::new(),
                    },
                });
            }
            questions.push(field);
        }
        Some(SectionView {
            id: &section.id,
            title: section.title.get(lang),
            intro: section.intro.as_ref().map(|t| t.get(lang)),
            number: index + 1,
            total: link.survey.sections.len(),
            questions: SectionQuestions::Fields(questions),
            error_list,
            kept: !extras.errors.is_empty() && extras.conflict.is_none(),
            saved: extras.saved,
            revealed: extras.revealed,
            conflict: extras.conflict,
            readonly_key: readonly_reason(&link.survey, rs),
            // Why nothing was stored: the state it is in now, or, when it changed back to
            // editable in the meantime (returned while the save was refused), that it may be
            // saved again.
            refused: extras.refused.then(|| {
                readonly_reason(&link.survey, rs).unwrap_or("section-refused-editable-now")
            }),
            csrf,
            version: extras
                .version
                .unwrap_or_else(|| rs.section_version(&section.id)),
            base: link.base(),
            queries: extras.queries,
            multipart,
            to_confirm,
            confirm_all: to_confirm > 1,
            must_confirm: crate::respond::must_confirm(&link.survey),
        })
    }
}

/// Every answer before submitting, and what is still missing.
#[derive(Serialize)]
pub struct ReviewView<'a> {
    sections: Vec<ReviewSection<'a>>,
    missing: Vec<MissingItem<'a>>,
    /// Carried answers neither confirmed nor changed, where the survey asks for it.
    unconfirmed: Vec<MissingItem<'a>>,
    editable: bool,
    /// Where the response stands in the report cycle and what this link may do.
    cycle: super::cycle::CycleView,
    submitted_at: Option<String>,
    csrf: String,
    base: String,
}

#[derive(Serialize)]
struct ReviewSection<'a> {
    id: &'a str,
    title: &'a str,
    answers: Vec<ReviewAnswer<'a>>,
    /// Carried answers of the section left to confirm.
    to_confirm: usize,
}

#[derive(Serialize)]
struct ReviewAnswer<'a> {
    id: &'a str,
    text: &'a str,
    value: Option<String>,
    /// A file question's files, linked for download (`files/<id>` under the link).
    files: Vec<ReviewFile>,
    /// Carried from the previous round: changed since, or confirmed still accurate.
    carried: Option<ReviewCarried>,
}

#[derive(Serialize)]
struct ReviewCarried {
    changed: bool,
    confirmed: bool,
}

#[derive(Serialize)]
struct ReviewFile {
    id: String,
    name: String,
}

#[derive(Serialize)]
struct MissingItem<'a> {
    section: String,
    question: String,
    text: &'a str,
}

impl<'a> ReviewView<'a> {
    pub fn new(page: &'a Page, show_missing: bool, csrf: String) -> ReviewView<'a> {
        let (link, rs) = (&page.link, &page.rs);
        let (survey, lang) = (&*link.survey, link.lang);
        let to_confirm = to_confirm_by_section(survey, rs);
        let sections = survey
            .sections
            .iter()
            .filter(|s| rs.visibility.section(&s.id) && link.who.may_answer(&s.id))
            .map(|s| ReviewSection {
                id: &s.id,
                title: s.title.get(lang),
                to_confirm: to_confirm.get(&s.id).copied().unwrap_or(0),
                answers: s
                    .questions
                    .iter()
                    .filter(|q| rs.visibility.question(&q.id))
                    .map(|q| {
                        let items = rs.answers.get(&q.id).map(Vec::as_slice).unwrap_or(&[]);
                        ReviewAnswer {
                            id: &q.id,
                            text: q.text.get(lang),
                            value: (!items.is_empty()).then(|| link.display(q, items)),
                            files: FileItem::all(items)
                                .into_iter()
                                .map(|f| ReviewFile {
                                    id: f.id,
                                    name: f.name,
                                })
                                .collect(),
                            carried: rs.carried_shown(&q.id).map(|c| ReviewCarried {
                                changed: rs.carried_changed(&q.id),
                                confirmed: c.confirmed_at.is_some(),
                            }),
                        }
                    })
                    .collect(),
            })
            .collect();
        let listed = |list: Vec<crate::survey::answer::Missing>| -> Vec<MissingItem<'a>> {
            list.into_iter()
                .filter(|m| link.who.may_answer(&m.section))
                .filter_map(|m| {
                    let text = survey.question(&m.question)?.text.get(lang);
                    Some(MissingItem {
                        section: m.section,
                        question: m.question,
                        text,
                    })
                })
                .collect()
        };
        let (missing, unconfirmed) = if show_missing {
            let unconfirmed = match crate::respond::must_confirm(survey) {
                true => rs.left_to_confirm(survey),
                false => Vec::new(),
            };
            (
                listed(missing_answers(survey, &rs.answers, &rs.visibility)),
                listed(unconfirmed),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let editable = readonly_reason(survey, rs).is_none();
        ReviewView {
            sections,
            missing,
            unconfirmed,
            editable,
            cycle: super::cycle::CycleView::default(),
            submitted_at: rs.response.submitted_at.map(|t| link.date(t)),
            csrf,
            base: link.base(),
        }
    }
}

impl ReviewView<'_> {
    /// Whether the response may still change (a draft or returned, open, not closed).
    pub fn editable(&self) -> bool {
        self.editable
    }

    pub fn set_cycle(&mut self, cycle: super::cycle::CycleView) {
        self.cycle = cycle;
    }
}

/// The whole questionnaire on one printable page: blank (every question, with its options),
/// or with this country's answers (the questions it was asked).
#[derive(Serialize)]
pub struct PrintView<'a> {
    survey_title: &'a str,
    country: String,
    deadline: Option<String>,
    sections: Vec<PrintSection<'a>>,
    base: String,
}

#[derive(Serialize)]
struct PrintSection<'a> {
    number: usize,
    title: &'a str,
    conditional: bool,
    questions: Vec<PrintQuestion<'a>>,
}

#[derive(Serialize)]
struct PrintQuestion<'a> {
    number: String,
    text: &'a str,
    help: Option<&'a str>,
    required: bool,
    conditional: bool,
    options: Option<Vec<PrintOption<'a>>>,
    rows: Option<Vec<PrintRow<'a>>>,
    scale: Vec<&'a str>,
    /// Answered in words or figures: lines to write on when blank.
    free: bool,
    answer: Option<String>,
    /// "Not known" and "not applicable" boxes, where the question allows them.
    escapes: Option<Vec<PrintOption<'a>>>,
}

#[derive(Serialize)]
struct PrintOption<'a> {
    label: std::borrow::Cow<'a, str>,
    checked: bool,
}

#[derive(Serialize)]
struct PrintRow<'a> {
    label: &'a str,
    cells: Vec<bool>,
}

impl<'a> PrintView<'a> {
    pub fn new(page: &'a Page, with_answers: bool) -> PrintView<'a> {
        let (link, rs) = (&page.link, &page.rs);
        let (survey, lang) = (&*link.survey, link.lang);
        let mut sections = Vec::new();
        for (si, section) in survey.sections.iter().enumerate() {
            // A contributor prints only its own sections.
            if !link.who.may_answer(&section.id)
                || (with_answers && !rs.visibility.section(&section.id))
            {
                continue;
            }
            let questions = section
                .questions
                .iter()
                .filter(|q| !with_answers || rs.visibility.question(&q.id))
                .enumerate()
                .map(|(qi, q)| {
                    let items: &[Item] = match with_answers {
                        true => rs.answers.get(&q.id).map(Vec::as_slice).unwrap_or(&[]),
                        false => &[],
                    };
                    let mut pq = print_question(q, items, lang);
                    pq.number = format!("{}.{}", si + 1, qi + 1);
                    pq.conditional = !with_answers && q.show_if.is_some();
                    // A non-answer is written out with its reason, whatever the kind.
                    let escaped = escape_of(items).is_some();
                    pq.answer = ((pq.free || escaped || q.kind.is_file()) && !items.is_empty())
                        .then(|| link.display(q, items));
                    pq
                })
                .collect();
            sections.push(PrintSection {
                number: si + 1,
                title: section.title.get(lang),
                conditional: !with_answers && section.show_if.is_some(),
                questions,
            });
        }
        PrintView {
            survey_title: survey.title.get(lang),
            country: link.respondent_name(),
            deadline: rs.closes.map(|c| link.date(c.naive_utc())),
            sections,
            base: link.base(),
        }
    }
}

/// A question on paper: its boxes to tick, its grid, or lines to write on.
fn print_question<'a>(q: &'a Question, items: &[Item], lang: &str) -> PrintQuestion<'a> {
    let raw = RawAnswer::from_items(&q.kind, items);
    let tick = |label, checked| PrintOption { label, checked };
    let mut options = Vec::new();
    let mut rows = Vec::new();
    let mut scale = Vec::new();
    let mut free = false;
    match &q.kind {
        QuestionKind::YesNo => {
            for c in ["yes", "no"] {
                options.push(tick(translate(lang, c, &[]).into(), raw.first() == c));
            }
        }
        QuestionKind::SingleChoice {
            options: list,
            other,
        }
        | QuestionKind::MultipleChoice {
            options: list,
            other,
            ..
        } => {
            for o in list {
                let checked = raw.values.contains(&o.code);
                options.push(tick(o.label.get(lang).into(), checked));
            }
            if *other {
                let written = raw.other.clone().unwrap_or_default();
                let blank = if written.is_empty() {
                    "______".to_string()
                } else {
                    written
                };
                let label = format!("{} {blank}", translate(lang, "other-specify", &[]));
                let checked = raw.values.iter().any(|v| v == crate::survey::OTHER_CODE);
                options.push(tick(label.into(), checked));
            }
        }
        QuestionKind::Matrix {
            rows: matrix_rows,
            scale: points,
        } => {
            for r in matrix_rows {
                let cells = points
                    .iter()
                    .map(|s| raw.rows.get(&r.code) == Some(&s.code))
                    .collect();
                rows.push(PrintRow {
                    label: r.label.get(lang),
                    cells,
                });
            }
            scale = points.iter().map(|s| s.label.get(lang)).collect();
        }
        QuestionKind::ShortText { .. }
        | QuestionKind::LongText { .. }
        | QuestionKind::Integer { .. }
        | QuestionKind::Decimal { .. }
        | QuestionKind::Percentage
        | QuestionKind::Date { .. }
        | QuestionKind::Country
        | QuestionKind::Email
        | QuestionKind::Url => free = true,
        // Documents are attached online; a filled print lists their names.
        QuestionKind::File { .. } => {}
    }
    PrintQuestion {
        number: String::new(),
        text: q.text.get(lang),
        help: q.help.as_ref().map(|h| h.get(lang)),
        required: q.required,
        conditional: false,
        options: (!options.is_empty()).then_some(options),
        rows: (!rows.is_empty()).then_some(rows),
        scale,
        free,
        answer: None,
        escapes: q.escapes.any().then(|| {
            EscapeKind::ALL
                .into_iter()
                .filter(|k| q.escapes.get(*k).is_some())
                .map(|k| {
                    let label = translate(lang, escape_label_id(k), &[]);
                    tick(label.into(), raw.escape.as_deref() == Some(k.code()))
                })
                .collect()
        }),
    }
}

/// Why a response cannot change now (closed survey, already submitted), as a message page;
/// other errors are handed back.
pub fn refusal(link: &Link, e: RespondError) -> Result<MessagePage, AppError> {
    let t = |id: &str, args: &[(&str, String)]| translate(link.lang, id, args);
    let (title, body) = match &e {
        RespondError::Closed(at) => {
            let date = link.date(at.naive_utc());
            (t("closed-title", &[]), t("closed-body", &[("date", date)]))
        }
        RespondError::NotOpenYet => {
            let date = link
                .survey
                .opens
                .map(|o| link.date(o.naive_utc()))
                .unwrap_or_default();
            let body = t("overview-not-open", &[("date", date)]);
            (t("not-open-title", &[]), body)
        }
        RespondError::AlreadySubmitted => (
            t("submitted-readonly-title", &[]),
            t("section-readonly", &[]),
        ),
        RespondError::State(state) => (
            t("state-refused-title", &[]),
            t(&format!("state-refused-{}", state.as_str()), &[]),
        ),
        RespondError::SignOffRequired => {
            (t("state-refused-title", &[]), t("sign-off-required", &[]))
        }
        RespondError::NoSuchSection
        | RespondError::NotSubmitter
        | RespondError::NotApprover
        | RespondError::Invalid { .. }
        | RespondError::Email(_)
        | RespondError::Db(_) => return Err(e.into()),
    };
    Ok(MessagePage {
        title,
        body,
        back: Some(link.base()),
    })
}
