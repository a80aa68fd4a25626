//! Running a survey round: invitations and reminders through the outbox, the per-country
//! status table, deadline extensions and reopened responses. Used by the CLI and the admin
//! pages alike; knows nothing of HTTP.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{NaiveDateTime, Utc};
use serde::Serialize;

use crate::access::{hash_token, new_token};
use crate::accounts::User;
use crate::contacts::{self, Contact};
use crate::db::outbox::{MailKind, OutboxStatus};
use crate::db::states::text_enum;
use crate::db::{self, answers, deadlines, outbox, responses, tokens, DbConn, DbError, QueryError};
use crate::mail::templates::{EmailTemplates, Letter, Message};
use crate::mail::NewMessage;
use crate::reference::Countries;
use crate::survey::answer::{section_progress, SectionProgress, Visibility};
use crate::survey::Survey;

#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("rendering an email failed: {0}")]
    Render(#[from] handlebars::RenderError),
    #[error("no response of {0} to reopen")]
    NoResponse(String),
    #[error("the response of {0} is not submitted")]
    NotSubmitted(String),
}

impl From<QueryError> for CampaignError {
    fn from(e: QueryError) -> Self {
        CampaignError::Db(DbError::Query(e))
    }
}

/// What a campaign needs to write emails.
pub struct Campaign<'a> {
    pub survey: &'a Survey,
    pub countries: &'a Countries,
    pub emails: &'a EmailTemplates,
    /// Public address of the service, for personal links.
    pub base_url: &'a str,
    /// Where respondents write for help (the sender address).
    pub help: &'a str,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Queued {
    pub queued: usize,
    pub skipped: usize,
}

/// The extended deadlines of a survey's countries, read once per round of messages.
type Deadlines = HashMap<String, NaiveDateTime>;

fn fmt_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

impl Campaign<'_> {
    fn language_for(&self, contact: &Contact) -> String {
        if self.survey.languages.contains(&contact.language) {
            contact.language.clone()
        } else {
            "en".into()
        }
    }

    fn country_name(&self, iso3: &str, lang: &str) -> String {
        self.countries
            .get(iso3)
            .map(|c| c.name(lang).to_string())
            .unwrap_or_else(|| iso3.to_string())
    }

    /// The country's deadline in `lang`: its extension (`extended` holds the survey's), else
    /// the survey's.
    fn deadline(&self, extended: &Deadlines, iso3: &str, lang: &str) -> Option<String> {
        extended
            .get(iso3)
            .copied()
            .or(self.survey.closes.map(|c| c.naive_utc()))
            .map(|t| crate::i18n::format_datetime(lang, t))
    }

    /// The link opening in the contact's preferred language, where the survey offers it.
    fn in_language(&self, link: String, contact: &Contact) -> String {
        match self.language_for(contact).as_str() {
            "en" => link,
            lang => format!("{link}?lang={lang}"),
        }
    }

    /// A new personal link for each contact, in their order (only its hash is stored), of the
    /// contact's role and sections. It replaces the links of that role the contact was sent
    /// before, so each person holds one live link, however many reminders they get; an old
    /// link then says it was replaced. Links of another role, or other people's, stay as they
    /// are. A handful of statements whatever the number of contacts.
    fn issue_links(
        &self,
        conn: &mut DbConn,
        contacts: &[&Contact],
        now: NaiveDateTime,
    ) -> Result<Vec<String>, CampaignError> {
        let holders: Vec<tokens::Holder> = contacts
            .iter()
            .map(|c| tokens::Holder {
                country_iso3: &c.country_iso3,
                unit: c.unit(self.survey.unit),
                email: &c.email,
                role: c.role,
            })
            .collect();
        tokens::revoke_replaced(conn, &self.survey.id, &holders, REPLACED, now)?;
        let secrets: Vec<String> = contacts.iter().map(|_| new_token()).collect();
        let hashes: Vec<String> = secrets.iter().map(|t| hash_token(t)).collect();
        let sections: Vec<Vec<String>> = contacts
            .iter()
            .map(|c| match c.role {
                tokens::LinkRole::Contributor => c.section_ids(),
                tokens::LinkRole::Coordinator | tokens::LinkRole::Approver => Vec::new(),
            })
            .collect();
        let links: Vec<tokens::NewToken> = contacts
            .iter()
            .zip(&hashes)
            .zip(&sections)
            .map(|((c, hash), sections)| tokens::NewToken {
                survey_id: &self.survey.id,
                country_iso3: &c.country_iso3,
                unit: c.unit(self.survey.unit),
                token_hash: hash,
                holder_name: Some(&c.name),
                holder_email: Some(&c.email),
                now,
                expires_at: None,
                role: c.role,
                sections,
            })
            .collect();
        tokens::insert_tokens(conn, &links)?;
        Ok(contacts
            .iter()
            .zip(secrets)
            .map(|(c, token)| self.in_language(format!("{}/r/{token}", self.base_url), c))
            .collect())
    }

    /// Queue each message to its contact, in the contact's language, with a handful of
    /// statements whatever their number (see [`outbox::enqueue_all`]). Returns how many.
    fn queue_all(
        &self,
        conn: &mut DbConn,
        messages: Vec<(&Contact, Message)>,
        now: NaiveDateTime,
    ) -> Result<usize, CampaignError> {
        if messages.is_empty() {
            return Ok(0);
        }
        let extended = deadlines::survey_extensions(conn, &self.survey.id)?;
        let mut emails = Vec::with_capacity(messages.len());
        for (contact, message) in &messages {
            let lang = self.language_for(contact);
            let letter = Letter {
                name: contact.name.clone(),
                survey: self.survey.title.get(&lang).to_string(),
                country: crate::survey::respondent_name(
                    contact.unit(self.survey.unit),
                    &self.country_name(&contact.country_iso3, &lang),
                ),
                deadline: self.deadline(&extended, &contact.country_iso3, &lang),
                help: self.help.to_string(),
            };
            emails.push(self.emails.render(message, &letter, &lang)?);
        }
        let new: Vec<NewMessage> = messages
            .iter()
            .zip(&emails)
            .map(|((contact, message), email)| NewMessage {
                kind: message.kind(),
                survey_id: &self.survey.id,
                country_iso3: &contact.country_iso3,
                contact_id: Some(&contact.id),
                recipient: &contact.email,
                subject: &email.subject,
                body_text: &email.text,
                body_html: &email.html,
            })
            .collect();
        outbox::enqueue_all(conn, &new, now)?;
        Ok(new.len())
    }

    /// Invite every contact (of the given countries, or all) not invited yet. Running it again
    /// queues nothing twice; a contact whose invitation failed for good is invited again.
    pub fn invite(
        &self,
        conn: &mut DbConn,
        only: &[String],
        now: NaiveDateTime,
    ) -> Result<Queued, CampaignError> {
        let all = contacts::list(conn, &self.survey.id)?;
        db::transaction(conn, |conn| {
            let invited: HashSet<String> =
                outbox::contacts_with(conn, &self.survey.id, MailKind::Invite)?;
            let (done, due): (Vec<&Contact>, Vec<&Contact>) = all
                .iter()
                .filter(|c| only.is_empty() || only.contains(&c.country_iso3))
                .partition(|c| invited.contains(&c.id));
            let links = self.issue_links(conn, &due, now)?;
            let messages = due
                .into_iter()
                .zip(links)
                .map(|(c, link)| (c, Message::Invite { link }))
                .collect();
            Ok(Queued {
                queued: self.queue_all(conn, messages, now)?,
                skipped: done.len(),
            })
        })
    }

    /// Remind the contacts of every country (or organisation) that has not submitted, saying
    /// what remains.
    pub fn remind(&self, conn: &mut DbConn, now: NaiveDateTime) -> Result<Queued, CampaignError> {
        let all = contacts::list(conn, &self.survey.id)?;
        let by_unit: HashMap<(String, String), responses::ResponseRow> =
            responses::survey_responses(conn, &self.survey.id)?
                .into_iter()
                .map(|r| ((r.country_iso3.clone(), r.unit.clone()), r))
                .collect();
        let all_answers = answers::survey_answers(conn, &self.survey.id)?;
        let mut result = Queued::default();
        let mut due: Vec<(&Contact, String)> = Vec::new();
        for c in &all {
            let key = (c.country_iso3.clone(), c.unit(self.survey.unit).to_string());
            let response = by_unit.get(&key);
            if response.is_some_and(|r| r.is_submitted()) {
                result.skipped += 1;
                continue;
            }
            let lang = self.language_for(c);
            // Several contacts of one country share its answers.
            let answers = response
                .and_then(|r| all_answers.get(&r.id).cloned())
                .unwrap_or_default();
            let vis = Visibility::evaluate(self.survey, &answers);
            let remaining: Vec<&str> = self
                .survey
                .sections
                .iter()
                .filter(|s| {
                    matches!(
                        section_progress(s, &answers, &vis),
                        SectionProgress::NotStarted | SectionProgress::InProgress
                    )
                })
                .map(|s| s.title.get(&lang))
                .collect();
            due.push((c, remaining.join(", ")));
        }
        db::transaction(conn, |conn| {
            let contacts: Vec<&Contact> = due.iter().map(|(c, _)| *c).collect();
            let links = self.issue_links(conn, &contacts, now)?;
            let messages = due
                .iter()
                .zip(links)
                .map(|((c, remaining), link)| {
                    let remaining = remaining.clone();
                    (*c, Message::Reminder { link, remaining })
                })
                .collect();
            result.queued = self.queue_all(conn, messages, now)?;
            Ok(result)
        })
    }

    /// Give one country a later deadline, and tell its contacts.
    pub fn extend_deadline(
        &self,
        conn: &mut DbConn,
        iso3: &str,
        closes_at: NaiveDateTime,
        by: &User,
        now: NaiveDateTime,
    ) -> Result<Queued, CampaignError> {
        let all = contacts::list(conn, &self.survey.id)?;
        db::transaction(conn, |conn| {
            deadlines::set_extension(conn, &self.survey.id, iso3, closes_at, &by.id, now)?;
            let event = crate::audit::Event {
                survey_id: &self.survey.id,
                country_iso3: iso3,
                actor: crate::audit::Actor::User(&by.id),
                kind: crate::audit::AuditKind::DeadlineChanged,
                detail: serde_json::json!({ "closes_at": closes_at.to_string() }),
            };
            crate::audit::record(conn, &event, now)?;
            let messages = all
                .iter()
                .filter(|c| c.country_iso3 == iso3)
                .map(|c| (c, Message::Deadline))
                .collect();
            Ok(Queued {
                queued: self.queue_all(conn, messages, now)?,
                skipped: 0,
            })
        })
    }

    /// Make a submitted response a draft again (recorded), and tell the contacts who answer
    /// for it. `unit` names the organisation, or is '' for the country's own response.
    pub fn reopen(
        &self,
        conn: &mut DbConn,
        iso3: &str,
        unit: &str,
        by: &User,
        now: NaiveDateTime,
    ) -> Result<Queued, CampaignError> {
        let response = responses::find_response(conn, &self.survey.id, iso3, unit)?
            .ok_or_else(|| CampaignError::NoResponse(iso3.to_string()))?;
        if !response.is_submitted() {
            return Err(CampaignError::NotSubmitted(iso3.to_string()));
        }
        let all = contacts::list(conn, &self.survey.id)?;
        db::transaction(conn, |conn| {
            if !responses::reopen_response(conn, &response.id, &by.id, now)? {
                // Reopened by someone else since it was read.
                return Err(CampaignError::NotSubmitted(iso3.to_string()));
            }
            let event = crate::audit::Event {
                survey_id: &self.survey.id,
                country_iso3: iso3,
                actor: crate::audit::Actor::User(&by.id),
                kind: crate::audit::AuditKind::Reopened,
                detail: serde_json::json!({ "response": response.id, "unit": unit }),
            };
            crate::audit::record(conn, &event, now)?;
            let messages = all
                .iter()
                .filter(|c| c.country_iso3 == iso3 && c.unit(self.survey.unit) == unit)
                .map(|c| (c, Message::Reopened))
                .collect();
            Ok(Queued {
                queued: self.queue_all(conn, messages, now)?,
                skipped: 0,
            })
        })
    }
}

text_enum! {
    /// How far a country (or organisation) has come in a round: before a response exists, the
    /// furthest step of the invitation; then where its response stands.
    pub enum Stage("stage") {
        /// Known (contacts, a link, an extension), not invited yet.
        Listed = "listed",
        /// An invitation was sent or waits in the outbox.
        Invited = "invited",
        /// A personal link was opened.
        Opened = "opened",
        /// Answers are saved; not submitted (a response reopened by an administrator too).
        Draft = "draft",
        /// Sent to the country's approver, who signs off or sends it back.
        AwaitingSignOff = "awaiting_sign_off",
        /// Submitted; the secretariat has not started its review.
        Submitted = "submitted",
        UnderReview = "under_review",
        /// Sent back to the country with queries: being changed, its last version still counts.
        Returned = "returned",
        Accepted = "accepted",
    }
}

/// One line of the status table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CountryStatus {
    pub iso3: String,
    pub country: String,
    /// The organisation, in a survey of organisations; '' otherwise.
    pub unit: String,
    pub contacts: usize,
    pub invited: Option<Invitation>,
    pub first_opened: Option<NaiveDateTime>,
    pub sections_done: usize,
    pub sections_total: usize,
    /// Some answer has been saved.
    pub started: bool,
    pub submitted: Option<NaiveDateTime>,
    /// Where the response stands, once there is one.
    pub response: Option<responses::ResponseStatus>,
    /// The version results count (the latest submitted and not recalled), if any.
    pub counted_version: Option<i32>,
    pub last_reminder: Option<NaiveDateTime>,
    pub delivery_errors: usize,
    /// The country's own deadline when extended, else the survey's (UTC).
    pub deadline: Option<NaiveDateTime>,
}

impl CountryStatus {
    /// Where the response stands, else the furthest step reached (a reopened response is a
    /// draft again).
    pub fn stage(&self) -> Stage {
        use responses::ResponseStatus as S;
        match self.response {
            Some(S::AwaitingSignOff) => return Stage::AwaitingSignOff,
            Some(S::Submitted) => return Stage::Submitted,
            Some(S::UnderReview) => return Stage::UnderReview,
            Some(S::Returned) => return Stage::Returned,
            Some(S::Accepted) => return Stage::Accepted,
            Some(S::Draft) | None => {}
        }
        if self.started {
            Stage::Draft
        } else if self.first_opened.is_some() {
            Stage::Opened
        } else if self.invited.is_some() {
            Stage::Invited
        } else {
            Stage::Listed
        }
    }
}

/// Where a country's first invitation is. Sorted as the table sorts: delivered ones by time,
/// then those still waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Invitation {
    Delivered(NaiveDateTime),
    Queued,
}

impl Invitation {
    /// As the status CSV writes it.
    pub fn as_text(&self) -> String {
        match self {
            Invitation::Delivered(at) => fmt_time(*at),
            Invitation::Queued => "queued".into(),
        }
    }
}

pub const SORT_KEYS: &[&str] = &[
    "country",
    "contacts",
    "invited",
    "opened",
    "progress",
    "submitted",
    "reminder",
    "errors",
];

/// Every country (or organisation) with contacts, links or a response for the survey, with
/// country names in `lang`.
pub fn status_table(
    conn: &mut DbConn,
    survey: &Survey,
    countries: &Countries,
    sort: &str,
    lang: &str,
) -> Result<Vec<CountryStatus>, CampaignError> {
    type Key = (String, String);
    let mut rows: BTreeMap<Key, CountryStatus> = BTreeMap::new();
    let entry = |(iso3, unit): &Key| -> CountryStatus {
        CountryStatus {
            iso3: iso3.to_string(),
            country: countries
                .get(iso3)
                .map(|c| c.name(lang).to_string())
                .unwrap_or_else(|| iso3.to_string()),
            unit: unit.clone(),
            contacts: 0,
            invited: None,
            first_opened: None,
            sections_done: 0,
            sections_total: 0,
            started: false,
            submitted: None,
            response: None,
            counted_version: None,
            last_reminder: None,
            delivery_errors: 0,
            deadline: survey.closes.map(|c| c.naive_utc()),
        }
    };
    // Every State a survey of countries is asked of has its line, contacted or not.
    if survey.unit.is_country() {
        for iso3 in survey.population.codes() {
            let key = (iso3.to_string(), String::new());
            rows.entry(key.clone()).or_insert_with(|| entry(&key));
        }
    }
    // An email belongs to the unit of the contact it went to.
    let mut contact_units: HashMap<String, String> = HashMap::new();
    for c in contacts::list(conn, &survey.id)? {
        let key = (c.country_iso3.clone(), c.unit(survey.unit).to_string());
        contact_units.insert(c.id.clone(), key.1.clone());
        rows.entry(key.clone())
            .or_insert_with(|| entry(&key))
            .contacts += 1;
    }
    for m in outbox::survey_mail(conn, &survey.id)? {
        // Emails to link holders who are not contacts (receipts, hand-overs, returns) name no
        // organisation: in a survey of organisations they belong to no row.
        let unit = match m.contact_id.and_then(|id| contact_units.get(&id).cloned()) {
            Some(unit) => unit,
            None if survey.unit.is_country() => String::new(),
            None => continue,
        };
        let key = (m.country_iso3, unit);
        let r = rows.entry(key.clone()).or_insert_with(|| entry(&key));
        match (m.kind, m.status) {
            (_, OutboxStatus::Failed) => r.delivery_errors += 1,
            (MailKind::Invite, OutboxStatus::Sent) => {
                // The first delivery; a delivered one beats one still waiting.
                if let Some(at) = m.sent_at.map(Invitation::Delivered) {
                    r.invited = Some(r.invited.map_or(at, |seen| seen.min(at)));
                }
            }
            (MailKind::Invite, OutboxStatus::Pending | OutboxStatus::Sending)
                if r.invited.is_none() =>
            {
                r.invited = Some(Invitation::Queued)
            }
            (MailKind::Reminder, OutboxStatus::Sent) if m.sent_at > r.last_reminder => {
                r.last_reminder = m.sent_at;
            }
            _ => {}
        }
    }
    for (iso3, unit, first) in tokens::first_uses(conn, &survey.id)? {
        let key = (iso3, unit);
        let r = rows.entry(key.clone()).or_insert_with(|| entry(&key));
        if let Some(t) = first {
            if r.first_opened.is_none_or(|o| t < o) {
                r.first_opened = Some(t);
            }
        }
    }
    // Every response's answers in one query: the table costs the same few statements for
    // five countries or for 193.
    let mut all_answers = answers::survey_answers(conn, &survey.id)?;
    for response in responses::survey_responses(conn, &survey.id)? {
        let answers = all_answers.remove(&response.id).unwrap_or_default();
        let vis = Visibility::evaluate(survey, &answers);
        let key = (response.country_iso3, response.unit);
        let r = rows.entry(key.clone()).or_insert_with(|| entry(&key));
        r.submitted = response.submitted_at;
        r.response = Some(response.status);
        r.counted_version = response.counted_version;
        r.started = !answers.is_empty();
        for s in &survey.sections {
            match section_progress(s, &answers, &vis) {
                SectionProgress::Complete => {
                    r.sections_done += 1;
                    r.sections_total += 1;
                }
                SectionProgress::NotApplicable => {}
                _ => r.sections_total += 1,
            }
        }
    }
    // An extended deadline holds for every organisation of the country.
    let extensions = deadlines::survey_extensions(conn, &survey.id)?;
    if survey.unit.is_country() {
        for iso3 in extensions.keys() {
            let key = (iso3.clone(), String::new());
            rows.entry(key.clone()).or_insert_with(|| entry(&key));
        }
    }
    let mut list: Vec<CountryStatus> = rows.into_values().collect();
    for r in &mut list {
        if let Some(at) = extensions.get(&r.iso3) {
            r.deadline = Some(*at);
        }
        if r.sections_total == 0 {
            r.sections_total = survey
                .sections
                .iter()
                .filter(|s| s.show_if.is_none())
                .count();
        }
    }
    let desc = sort.starts_with('-');
    let key = sort.trim_start_matches('-');
    list.sort_by(|a, b| {
        let by_name = (&a.country, &a.unit).cmp(&(&b.country, &b.unit));
        let ord = match key {
            "contacts" => a.contacts.cmp(&b.contacts),
            "invited" => a.invited.cmp(&b.invited),
            "opened" => a.first_opened.cmp(&b.first_opened),
            "progress" => (a.sections_done * 1000 / a.sections_total.max(1))
                .cmp(&(b.sections_done * 1000 / b.sections_total.max(1))),
            "submitted" => a.submitted.cmp(&b.submitted),
            "reminder" => a.last_reminder.cmp(&b.last_reminder),
            "errors" => a.delivery_errors.cmp(&b.delivery_errors),
            _ => by_name,
        };
        let ord = if desc { ord.reverse() } else { ord };
        ord.then(by_name)
    });
    Ok(list)
}

/// The status table as CSV; the organisation column only in a survey of organisations.
pub fn status_csv(survey: &Survey, rows: &[CountryStatus]) -> Result<String, csv::Error> {
    let time = |t: Option<NaiveDateTime>| t.map(fmt_time).unwrap_or_default();
    let with_unit = !survey.unit.is_country();
    let mut w = crate::text::csv::SafeWriter::new();
    let header = [
        "iso3",
        "country",
        "organisation",
        "contacts",
        "invited",
        "first_opened",
        "sections_done",
        "sections_total",
        "submitted",
        "last_reminder",
        "delivery_errors",
        "deadline",
        "stage",
        "counted_version",
    ];
    let keep = |i: usize| with_unit || i != 2;
    w.write_record(
        header
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, h)| h),
    )?;
    for r in rows {
        let cells = [
            r.iso3.clone(),
            r.country.clone(),
            r.unit.clone(),
            r.contacts.to_string(),
            r.invited.map(|i| i.as_text()).unwrap_or_default(),
            time(r.first_opened),
            r.sections_done.to_string(),
            r.sections_total.to_string(),
            time(r.submitted),
            time(r.last_reminder),
            r.delivery_errors.to_string(),
            time(r.deadline),
            r.stage().as_str().to_string(),
            r.counted_version.map(|v| v.to_string()).unwrap_or_default(),
        ];
        w.write_record(
            cells
                .iter()
                .enumerate()
                .filter(|(i, _)| keep(*i))
                .map(|(_, c)| c),
        )?;
    }
    w.finish()
}

/// Revoke one link of a country, recording who did; false if it was not a live link there.
pub fn revoke_link(
    conn: &mut DbConn,
    survey_id: &str,
    iso3: &str,
    link_id: &str,
    by: &User,
    now: NaiveDateTime,
) -> Result<bool, QueryError> {
    let revoked = tokens::revoke_tokens(
        conn,
        &tokens::RevokeLinks {
            survey_id,
            country_iso3: iso3,
            unit: None,
            holder_email: None,
            id: Some(link_id),
        },
        &by.email,
        now,
    )?;
    Ok(revoked == 1)
}

/// How far ahead a deadline may be moved.
pub const MAX_EXTENSION_YEARS: i64 = 2;

/// A new deadline from the admin form: a date (YYYY-MM-DD) from today to two years ahead,
/// ending at 23:59:59 UTC. Anything else (year 0, +99999, yesterday) is refused.
pub fn deadline_in_range(text: &str, now: NaiveDateTime) -> Option<chrono::NaiveDate> {
    let day = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()?;
    let today = now.date();
    let last = today + chrono::Duration::days(366 * MAX_EXTENSION_YEARS);
    (today..=last).contains(&day).then_some(day)
}

/// `revoked_by` of a link that a newer one sent to the same person replaced.
pub const REPLACED: &str = "replaced by a newer link";

/// The current time, as stored.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}
