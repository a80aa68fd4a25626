//! Emails of the country's side of the cycle: the receipt of each submission, and the request
//! for sign-off, to the holders of the country's coordinator and approver links.

use chrono::NaiveDateTime;

use crate::db::outbox::{self, NewMessage};
use crate::db::responses::ResponseRow;
use crate::db::tokens::{self, LinkRole, TokenRow};
use crate::db::versions::VersionRow;
use crate::db::DbConn;
use crate::i18n::format_datetime;
use crate::mail::templates::{EmailTemplates, Letter, Message, Receipt};
use crate::reference::Countries;
use crate::respond::RespondError;
use crate::survey::Survey;
use crate::web::render::translate;

/// What the emails need besides the database.
pub struct Notifier<'a> {
    pub survey: &'a Survey,
    pub countries: &'a Countries,
    pub emails: &'a EmailTemplates,
    /// Where respondents write for help (the sender address).
    pub help: &'a str,
    /// The language of the page the action came from: the emails are written in it.
    pub lang: &'a str,
}

impl Notifier<'_> {
    /// Queue the receipt of `version` to the country's coordinators and approvers.
    pub fn receipt(
        &self,
        conn: &mut DbConn,
        response: &ResponseRow,
        version: &VersionRow,
        now: NaiveDateTime,
    ) -> Result<usize, RespondError> {
        let receipt = Receipt {
            version: version.number,
            at: format_datetime(self.lang, version.submitted_at),
            signed_off: signed_off_by(version),
            entered: version
                .entered_by
                .as_ref()
                .map(|_| translate(self.lang, &format!("channel-{}", version.channel), &[])),
            digest: version.digest.clone(),
        };
        let roles = [LinkRole::Coordinator, LinkRole::Approver];
        self.send(conn, response, &roles, Message::Receipt(receipt), now)
    }

    /// Tell the country's approvers that a response waits for their sign-off.
    pub fn sign_off_requested(
        &self,
        conn: &mut DbConn,
        response: &ResponseRow,
        now: NaiveDateTime,
    ) -> Result<usize, RespondError> {
        let roles = [LinkRole::Approver];
        self.send(conn, response, &roles, Message::SignOffRequested, now)
    }

    fn send(
        &self,
        conn: &mut DbConn,
        response: &ResponseRow,
        roles: &[LinkRole],
        message: Message,
        now: NaiveDateTime,
    ) -> Result<usize, RespondError> {
        let holders = holders(
            tokens::country_tokens(conn, &self.survey.id, &response.country_iso3)?,
            &response.unit,
            roles,
            now,
        );
        let lang = if self.survey.languages.iter().any(|l| l == self.lang) {
            self.lang
        } else {
            "en"
        };
        let country = self
            .countries
            .get(&response.country_iso3)
            .map(|c| c.name(lang).to_string())
            .unwrap_or_else(|| response.country_iso3.clone());
        for holder in &holders {
            let letter = Letter {
                name: holder.name.clone(),
                survey: self.survey.title.get(lang).to_string(),
                country: crate::survey::respondent_name(&response.unit, &country),
                deadline: None,
                help: self.help.to_string(),
            };
            let rendered = self
                .emails
                .render(&message, &letter, lang)
                .map_err(|e| RespondError::Email(e.to_string()))?;
            outbox::enqueue(
                conn,
                &NewMessage {
                    kind: message.kind(),
                    survey_id: &self.survey.id,
                    country_iso3: &response.country_iso3,
                    contact_id: None,
                    recipient: &holder.email,
                    subject: &rendered.subject,
                    body_text: &rendered.text,
                    body_html: &rendered.html,
                },
                now,
            )?;
        }
        Ok(holders.len())
    }
}

/// "Name, title" of the approver who signed a version off.
pub fn signed_off_by(version: &VersionRow) -> Option<String> {
    let name = version.signed_off_name.as_deref()?;
    Some(match version.signed_off_title.as_deref() {
        Some(title) if !title.is_empty() => format!("{name}, {title}"),
        _ => name.to_string(),
    })
}

/// Who holds one of a response's live links of the given roles with an address.
pub struct Holder {
    pub link_id: String,
    pub name: String,
    pub email: String,
}

/// The holders of the live links of the given roles for the response's unit, each email once
/// (compared without case), in the order of `links`.
pub fn holders(
    links: Vec<TokenRow>,
    unit: &str,
    roles: &[LinkRole],
    now: NaiveDateTime,
) -> Vec<Holder> {
    let mut out: Vec<Holder> = Vec::new();
    for t in links {
        if t.unit != unit || !roles.contains(&t.role) || t.ended(now).is_some() {
            continue;
        }
        let Some(email) = t.holder_email.filter(|e| !e.trim().is_empty()) else {
            continue;
        };
        if out.iter().any(|h| h.email.eq_ignore_ascii_case(&email)) {
            continue;
        }
        out.push(Holder {
            link_id: t.id,
            name: t.holder_name.unwrap_or_else(|| email.clone()),
            email,
        });
    }
    out
}
