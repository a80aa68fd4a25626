//! The secretariat's file on one country in one survey: its response as it stands (draft or
//! submitted) with who saved each section, the personal links, the contacts and what was
//! emailed to them, and the country's deadline. Read by the admin country page; the national
//! report cycle (queries, versions) will grow here.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::QueryResult;

use crate::access::{hash_token, new_token};
use crate::audit::{self, Actor, AuditKind, Event};
use crate::contacts::{self, Contact};
use crate::db::outbox::{self, CountryMessage};
use crate::db::responses::{self, ResponseRow};
use crate::db::tokens::{self, LinkRole, TokenRow};
use crate::db::{answers, deadlines, sections, DbConn, QueryError};
use crate::survey::answer::{Answers, Visibility};
use crate::survey::Survey;

pub struct CountryFile {
    /// One response per organisation in a survey of organisations; at most one otherwise.
    pub responses: Vec<ResponseFile>,
    /// Newest first.
    pub links: Vec<TokenRow>,
    pub contacts: Vec<Contact>,
    /// Newest first.
    pub messages: Vec<CountryMessage>,
    /// The country's own deadline, when extended.
    pub extended_to: Option<NaiveDateTime>,
}

pub struct ResponseFile {
    pub response: ResponseRow,
    pub answers: Answers,
    pub visibility: Visibility,
    /// Section id -> its last save.
    pub saves: HashMap<String, SectionSave>,
}

pub struct SectionSave {
    pub at: NaiveDateTime,
    /// The holder of the link that saved it, when the link names one.
    pub by: Option<String>,
}

/// Everything the country page shows, in a number of queries that does not grow with the
/// number of answers (one per response for answers and section states).
pub fn load(conn: &mut DbConn, survey: &Survey, iso3: &str) -> QueryResult<CountryFile> {
    let links = tokens::country_tokens(conn, &survey.id, iso3)?;
    let holder_of: HashMap<&str, Option<String>> = links
        .iter()
        .map(|l| {
            let name = l.holder_name.clone().or_else(|| l.holder_email.clone());
            (l.id.as_str(), name)
        })
        .collect();
    let mut responses = Vec::new();
    for response in responses::country_responses(conn, &survey.id, iso3)? {
        let answers = answers::load_answers(conn, &response.id)?;
        let saves = sections::section_states(conn, &response.id)?
            .into_iter()
            .map(|s| {
                let by = holder_of.get(s.updated_by.as_str()).cloned().flatten();
                (
                    s.section_id,
                    SectionSave {
                        at: s.updated_at,
                        by,
                    },
                )
            })
            .collect();
        responses.push(ResponseFile {
            visibility: Visibility::evaluate(survey, &answers),
            response,
            answers,
            saves,
        });
    }
    let contacts = contacts::list_for_country(conn, &survey.id, iso3)?;
    Ok(CountryFile {
        responses,
        contacts,
        messages: outbox::country_messages(conn, &survey.id, iso3)?,
        extended_to: deadlines::deadline_extension(conn, &survey.id, iso3)?,
        links,
    })
}

/// Who a new link is for, as the secretariat typed it.
pub struct NewHolder<'a> {
    pub name: &'a str,
    pub email: &'a str,
    /// The organisation, in a survey of organisations ('' for the country itself).
    pub unit: &'a str,
    pub expires_at: Option<NaiveDateTime>,
    pub role: LinkRole,
    /// The section ids a contributor may answer (none for other roles).
    pub sections: &'a [String],
}

/// Longest holder name and organisation name taken for a link.
pub const MAX_HOLDER_CHARS: usize = 300;
/// Longest email address (RFC 5321).
pub const MAX_EMAIL_BYTES: usize = 320;

/// Why a new link's holder was refused; the web form and the command line word it each their
/// own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderProblem {
    /// A survey answered once per country was given an organisation.
    UnitNotAsked,
    /// A survey answered per organisation was not told which one.
    UnitMissing,
    /// A name or organisation over [`MAX_HOLDER_CHARS`].
    TooLong,
    /// A line break, tab or other control or direction-changing character in a name.
    Unprintable,
    BadEmail,
    /// A contributor given no section.
    NoSection,
    /// Sections given to a coordinator or an approver, who answer every section.
    SectionsNotAsked,
    /// A section id the survey does not have.
    UnknownSection,
}

impl NewHolder<'_> {
    /// The rules every link follows, however it is issued: the organisation named exactly
    /// when the survey is answered per organisation; names of printable text, bounded; the
    /// email, if any, an address.
    pub fn check(&self, survey: &Survey) -> Result<(), HolderProblem> {
        let unit = self.unit.trim();
        match (survey.unit.is_country(), unit.is_empty()) {
            (true, false) => return Err(HolderProblem::UnitNotAsked),
            (false, true) => return Err(HolderProblem::UnitMissing),
            _ => {}
        }
        for text in [self.name.trim(), unit] {
            if text.chars().count() > MAX_HOLDER_CHARS {
                return Err(HolderProblem::TooLong);
            }
            if text.chars().any(unprintable) {
                return Err(HolderProblem::Unprintable);
            }
        }
        let email = self.email.trim();
        use validator::ValidateEmail;
        if !email.is_empty() && (email.len() > MAX_EMAIL_BYTES || !email.validate_email()) {
            return Err(HolderProblem::BadEmail);
        }
        match (self.role, self.sections.is_empty()) {
            (LinkRole::Contributor, true) => return Err(HolderProblem::NoSection),
            (LinkRole::Coordinator | LinkRole::Approver, false) => {
                return Err(HolderProblem::SectionsNotAsked)
            }
            _ => {}
        }
        if self.unknown_section(survey).is_some() {
            return Err(HolderProblem::UnknownSection);
        }
        Ok(())
    }

    /// The first section id given that the survey does not have.
    pub fn unknown_section(&self, survey: &Survey) -> Option<&str> {
        (self.sections.iter())
            .map(|s| s.trim())
            .find(|s| survey.section(s).is_none())
    }

    /// The sections given, each once, in the survey's order.
    fn sections_in_order(&self, survey: &Survey) -> Vec<String> {
        (survey.sections.iter())
            .filter(|s| self.sections.iter().any(|given| given.trim() == s.id))
            .map(|s| s.id.clone())
            .collect()
    }
}

/// Control characters and the bidirectional overrides that make a name read other than it is.
pub fn unprintable(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A new personal link for the country. Only its hash is stored: the token returned is shown
/// once and cannot be seen again. Earlier links keep working (revoke them separately).
pub fn issue_link(
    conn: &mut DbConn,
    survey: &Survey,
    iso3: &str,
    holder: &NewHolder,
    by: Actor,
    now: NaiveDateTime,
) -> QueryResult<String> {
    debug_assert!(holder.check(survey).is_ok(), "checked by the caller");
    let token = new_token();
    let named = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_string())
    };
    let (name, email) = (named(holder.name), named(holder.email));
    let sections = holder.sections_in_order(survey);
    crate::db::transaction(conn, |conn| {
        let id = tokens::insert_token(
            conn,
            &tokens::NewToken {
                survey_id: &survey.id,
                country_iso3: iso3,
                unit: holder.unit.trim(),
                token_hash: &hash_token(&token),
                holder_name: name.as_deref(),
                holder_email: email.map(|e| e.to_lowercase()).as_deref(),
                now,
                expires_at: holder.expires_at,
                role: holder.role,
                sections: &sections,
            },
        )?;
        // The link's id, never its secret.
        let detail = serde_json::json!({
            "link": id,
            "role": holder.role.as_str(),
            "sections": sections,
            "unit": holder.unit.trim(),
        });
        audit::record(
            conn,
            &Event {
                survey_id: &survey.id,
                country_iso3: iso3,
                actor: by,
                kind: AuditKind::LinkIssued,
                detail,
            },
            now,
        )
    })?;
    Ok(token)
}

/// What revoking a link did.
pub enum Revoked {
    /// It was live and is revoked now; its holder's name (or email).
    Now(String),
    /// It had already ended (a form sent twice, say): nothing changed.
    Already(String),
}

/// Revoke one of the country's links; `None` when the country has no such link.
pub fn revoke_link(
    conn: &mut DbConn,
    survey_id: &str,
    iso3: &str,
    link_id: &str,
    by: &crate::accounts::User,
    now: NaiveDateTime,
) -> QueryResult<Option<Revoked>> {
    let holder = tokens::find_token_by_id(conn, link_id)?
        .filter(|row| row.survey_id == survey_id && row.country_iso3 == iso3)
        .map(|row| row.holder_name.or(row.holder_email).unwrap_or_default());
    let Some(holder) = holder else {
        return Ok(None);
    };
    let done = crate::db::transaction(conn, |conn| {
        let done = crate::campaign::revoke_link(conn, survey_id, iso3, link_id, by, now)?;
        if done {
            audit::record(
                conn,
                &Event {
                    survey_id,
                    country_iso3: iso3,
                    actor: Actor::User(&by.id),
                    kind: AuditKind::LinkRevoked,
                    detail: serde_json::json!({ "link": link_id }),
                },
                now,
            )?;
        }
        Ok::<_, QueryError>(done)
    })?;
    Ok(Some(if done {
        Revoked::Now(holder)
    } else {
        Revoked::Already(holder)
    }))
}
