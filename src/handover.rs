//! Handing sections to colleagues: a country's coordinator gives a colleague in another
//! ministry a contributor link for chosen sections (emailed through the outbox, or shown once
//! when email is off), contributors mark their sections ready, and the coordinator revokes a
//! contributor link. Knows nothing of HTTP; each write is one transaction on the caller's
//! connection, so it can be recorded alongside.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::audit::{self, Actor, AuditKind, Event};
use crate::campaign::CampaignError;
use crate::db::outbox;
use crate::db::sections::{self, ReadyOutcome};
use crate::db::tokens::{self, LinkRole, TokenRow};
use crate::db::{self, deadlines, DbConn, QueryError};
use crate::mail::templates::{EmailTemplates, Letter, Message};
use crate::mail::NewMessage;
use crate::reference::Countries;
use crate::respond::{RespondError, ResponseState};
use crate::review::{self, HolderProblem, NewHolder};
use crate::survey::Survey;

/// Most live contributor links one respondent (a country, or an organisation) may hold.
pub const MAX_CONTRIBUTORS: usize = 50;

/// The colleague a coordinator hands sections to, as typed in.
pub struct Colleague<'a> {
    pub name: &'a str,
    pub email: &'a str,
    /// Section ids of the survey.
    pub sections: &'a [String],
}

/// Why a hand-over was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignProblem {
    /// Only a coordinator hands sections out.
    NotCoordinator,
    NameMissing,
    EmailMissing,
    /// The name, the email or the sections, by the rules every link follows.
    Holder(HolderProblem),
    /// [`MAX_CONTRIBUTORS`] live contributor links already.
    TooMany,
    /// [`crate::access::HANDOVERS_PER_LINK`] hand-overs by this link in the last day.
    TooManyToday,
}

impl Colleague<'_> {
    /// The rules of a hand-over: a coordinator's link; a name and an email address; at least
    /// one section, each of the survey. The colleague answers for the coordinator's unit.
    pub fn check(&self, survey: &Survey, by: &TokenRow) -> Result<(), AssignProblem> {
        if by.role != LinkRole::Coordinator {
            return Err(AssignProblem::NotCoordinator);
        }
        if self.name.trim().is_empty() {
            return Err(AssignProblem::NameMissing);
        }
        if self.email.trim().is_empty() {
            return Err(AssignProblem::EmailMissing);
        }
        self.holder(by).check(survey).map_err(AssignProblem::Holder)
    }

    fn holder<'a>(&'a self, by: &'a TokenRow) -> NewHolder<'a> {
        NewHolder {
            name: self.name,
            email: self.email,
            unit: &by.unit,
            expires_at: None,
            role: LinkRole::Contributor,
            sections: self.sections,
        }
    }
}

/// What the assignment email needs beyond the survey.
pub struct Mailing<'a> {
    pub emails: &'a EmailTemplates,
    pub countries: &'a Countries,
    /// Public address of the service, for the link.
    pub base_url: &'a str,
    /// Where the colleague writes for help (the sender address).
    pub help: &'a str,
    /// The coordinator's page language: the email's.
    pub lang: &'a str,
    /// The coordinator as the email names them.
    pub sender: &'a str,
}

/// A hand-over done: the colleague's link, and whether it was emailed (else the caller shows
/// it, once).
pub struct Assigned {
    pub link: String,
    pub link_id: String,
    pub emailed: bool,
}

/// Give a colleague a contributor link for some sections of the coordinator's response, and
/// queue the email (when `mailing` is given), in one transaction.
pub fn assign(
    conn: &mut DbConn,
    survey: &Survey,
    by: &TokenRow,
    colleague: &Colleague,
    mailing: Option<&Mailing>,
    now: NaiveDateTime,
) -> Result<Result<Assigned, AssignProblem>, CampaignError> {
    if let Err(problem) = colleague.check(survey, by) {
        return Ok(Err(problem));
    }
    // A hand-over refused for the live links is not counted; the count comes before the
    // transaction (a lost race to create the counter must not abort it).
    let live = tokens::live_contributors(conn, &survey.id, &by.country_iso3, &by.unit, now)?;
    if live.len() >= MAX_CONTRIBUTORS {
        return Ok(Err(AssignProblem::TooMany));
    }
    let limit = crate::access::HANDOVERS_PER_LINK;
    if crate::db::attempts::hit(conn, &limit.counter(&by.id), limit.window(), now)? > limit.max {
        return Ok(Err(AssignProblem::TooManyToday));
    }
    db::transaction(conn, |conn| {
        let live = tokens::live_contributors(conn, &survey.id, &by.country_iso3, &by.unit, now)?;
        if live.len() >= MAX_CONTRIBUTORS {
            return Ok(Err(AssignProblem::TooMany));
        }
        let holder = colleague.holder(by);
        let token = review::issue_link(
            conn,
            survey,
            &by.country_iso3,
            &holder,
            Actor::Link(&by.id),
            now,
        )?;
        let link_id = tokens::find_token(conn, &crate::access::hash_token(&token))?
            .map(|row| row.id)
            .unwrap_or_default();
        let sections: Vec<&str> = colleague.sections.iter().map(|s| s.trim()).collect();
        audit::record(
            conn,
            &Event {
                survey_id: &survey.id,
                country_iso3: &by.country_iso3,
                actor: Actor::Link(&by.id),
                kind: AuditKind::SectionsAssigned,
                detail: serde_json::json!({
                    "unit": by.unit,
                    "link": link_id,
                    "sections": sections,
                    "emailed": mailing.is_some(),
                }),
            },
            now,
        )?;
        let Some(m) = mailing else {
            return Ok(Ok(Assigned {
                link: token,
                link_id,
                emailed: false,
            }));
        };
        let lang = if survey.languages.iter().any(|l| l == m.lang) {
            m.lang
        } else {
            "en"
        };
        let link = match lang {
            "en" => format!("{}/r/{token}", m.base_url),
            lang => format!("{}/r/{token}?lang={lang}", m.base_url),
        };
        let country = m
            .countries
            .get(&by.country_iso3)
            .map(|c| c.name(lang).to_string())
            .unwrap_or_else(|| by.country_iso3.clone());
        let deadline = deadlines::deadline_extension(conn, &survey.id, &by.country_iso3)?
            .or(survey.closes.map(|c| c.naive_utc()))
            .map(|t| crate::i18n::format_datetime(lang, t));
        let titles: Vec<&str> = (survey.sections.iter())
            .filter(|s| colleague.sections.iter().any(|id| id.trim() == s.id))
            .map(|s| s.title.get(lang))
            .collect();
        let letter = Letter {
            name: colleague.name.trim().to_string(),
            survey: survey.title.get(lang).to_string(),
            country: crate::survey::respondent_name(&by.unit, &country),
            deadline,
            help: m.help.to_string(),
        };
        let message = Message::Assignment {
            link,
            sender: m.sender.to_string(),
            sections: titles.join(", "),
        };
        let email = m.emails.render(&message, &letter, lang)?;
        outbox::enqueue(
            conn,
            &NewMessage {
                kind: message.kind(),
                survey_id: &survey.id,
                country_iso3: &by.country_iso3,
                contact_id: None,
                recipient: &colleague.email.trim().to_lowercase(),
                subject: &email.subject,
                body_text: &email.text,
                body_html: &email.html,
            },
            now,
        )?;
        Ok(Ok(Assigned {
            link: token,
            link_id,
            emailed: true,
        }))
    })
}

/// Mark a section ready, by a link that answers it (a contributor its own sections, the
/// coordinator any). A section never saved cannot be ready: [`ReadyOutcome::NotStarted`].
pub fn mark_ready(
    conn: &mut DbConn,
    survey: &Survey,
    by: &TokenRow,
    rs: &ResponseState,
    section_id: &str,
    now: DateTime<Utc>,
) -> Result<ReadyOutcome, RespondError> {
    if survey.section(section_id).is_none() || !by.may_answer(section_id) {
        return Err(RespondError::NoSuchSection);
    }
    crate::respond::check_writable(survey, rs, now)?;
    let outcome = db::transaction(conn, |conn| {
        let outcome =
            sections::mark_ready(conn, &rs.response.id, section_id, &by.id, now.naive_utc())?;
        if outcome == ReadyOutcome::Marked {
            audit::record(
                conn,
                &Event {
                    survey_id: &survey.id,
                    country_iso3: &by.country_iso3,
                    actor: Actor::Link(&by.id),
                    kind: AuditKind::SectionReady,
                    detail: serde_json::json!({ "unit": by.unit, "section": section_id }),
                },
                now.naive_utc(),
            )?;
        }
        Ok::<_, QueryError>(outcome)
    })?;
    Ok(outcome)
}

/// `revoked_by` of a contributor link its coordinator revoked.
pub fn revoked_by_coordinator(coordinator: &TokenRow) -> String {
    let who = (coordinator.holder_name.as_deref())
        .or(coordinator.holder_email.as_deref())
        .unwrap_or("");
    format!("coordinator {who}").trim().to_string()
}

/// Revoke one contributor link of the coordinator's own response. `None` when there is no
/// such link there (another country's, another organisation's, or not a contributor's);
/// `Some(false)` when it had already ended.
pub fn revoke_contributor(
    conn: &mut DbConn,
    by: &TokenRow,
    link_id: &str,
    now: NaiveDateTime,
) -> Result<Option<bool>, QueryError> {
    if by.role != LinkRole::Coordinator {
        return Ok(None);
    }
    db::transaction(conn, |conn| {
        let found = tokens::find_token_by_id(conn, link_id)?.filter(|row| {
            row.survey_id == by.survey_id
                && row.country_iso3 == by.country_iso3
                && row.unit == by.unit
                && row.role == LinkRole::Contributor
        });
        if found.is_none() {
            return Ok(None);
        }
        let revoked = tokens::revoke_tokens(
            conn,
            &tokens::RevokeLinks {
                survey_id: &by.survey_id,
                country_iso3: &by.country_iso3,
                unit: Some(&by.unit),
                holder_email: None,
                id: Some(link_id),
            },
            &revoked_by_coordinator(by),
            now,
        )?;
        if revoked == 1 {
            audit::record(
                conn,
                &Event {
                    survey_id: &by.survey_id,
                    country_iso3: &by.country_iso3,
                    actor: Actor::Link(&by.id),
                    kind: AuditKind::LinkRevoked,
                    detail: serde_json::json!({ "unit": by.unit, "link": link_id }),
                },
                now,
            )?;
        }
        Ok(Some(revoked == 1))
    })
}
