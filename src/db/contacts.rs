//! The `contacts` table: a survey's focal points, matched by email within the survey.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::schema::contacts;
use super::tokens::LinkRole;
use super::{new_id, DbConn};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = contacts)]
pub struct Contact {
    pub id: String,
    pub survey_id: String,
    pub country_iso3: String,
    pub name: String,
    pub email: String,
    pub language: String,
    pub office: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The role of the links the contact is sent (coordinator unless the CSV said otherwise).
    #[diesel(deserialize_as = String)]
    pub role: LinkRole,
    /// A contributor's section ids, separated by single spaces ('' for other roles).
    pub sections: String,
}

/// A contact's fields as imported.
pub struct ContactFields<'a> {
    pub country_iso3: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub language: &'a str,
    pub office: &'a str,
    pub role: LinkRole,
    /// Section ids separated by single spaces.
    pub sections: &'a str,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// Add or update contacts, matched by email within the survey, in one transaction: the
/// contacts already there are read in one statement per [`EMAILS_PER_LOOKUP`], and the locks of
/// the offices the rows name, and of those they move contacts away from, are taken before any
/// is written (see [`super::unit_rates::lock_units`]). A row whose email an earlier row of the
/// same import added updates that contact.
pub fn upsert_all(
    conn: &mut DbConn,
    survey_id: &str,
    rows: &[ContactFields],
    now: NaiveDateTime,
) -> QueryResult<ImportSummary> {
    use std::collections::HashMap;
    super::transaction(conn, |conn| {
        let emails: Vec<&str> = rows.iter().map(|r| r.email).collect();
        let mut existing: HashMap<String, Contact> = HashMap::new();
        for chunk in emails.chunks(EMAILS_PER_LOOKUP) {
            let found: Vec<Contact> = contacts::table
                .filter(contacts::survey_id.eq(survey_id))
                .filter(contacts::email.eq_any(chunk))
                .order(contacts::created_at)
                .select(Contact::as_select())
                .load(conn)?;
            for c in found {
                // The first added, as a look-up of one email would have found it.
                existing.entry(c.email.clone()).or_insert(c);
            }
        }
        let left = rows
            .iter()
            .filter_map(|r| existing.get(r.email))
            .map(|c| (survey_id, c.country_iso3.as_str(), c.office.as_str()));
        let joined = rows.iter().map(|r| (survey_id, r.country_iso3, r.office));
        super::unit_rates::lock_units(conn, left.chain(joined))?;

        let mut summary = ImportSummary::default();
        for r in rows {
            match existing.get_mut(r.email) {
                Some(c) => {
                    let same = c.country_iso3 == r.country_iso3
                        && c.name == r.name
                        && c.language == r.language
                        && c.office == r.office
                        && c.role == r.role
                        && c.sections == r.sections;
                    if same {
                        summary.unchanged += 1;
                        continue;
                    }
                    diesel::update(contacts::table.find(&c.id))
                        .set((
                            contacts::country_iso3.eq(r.country_iso3),
                            contacts::name.eq(r.name),
                            contacts::language.eq(r.language),
                            contacts::office.eq(r.office),
                            contacts::role.eq(r.role.as_str()),
                            contacts::sections.eq(r.sections),
                            contacts::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                    c.country_iso3 = r.country_iso3.to_string();
                    c.name = r.name.to_string();
                    c.language = r.language.to_string();
                    c.office = r.office.to_string();
                    c.role = r.role;
                    c.sections = r.sections.to_string();
                    c.updated_at = now;
                    summary.updated += 1;
                }
                None => {
                    let contact = Contact {
                        id: new_id(),
                        survey_id: survey_id.to_string(),
                        country_iso3: r.country_iso3.to_string(),
                        name: r.name.to_string(),
                        email: r.email.to_string(),
                        language: r.language.to_string(),
                        office: r.office.to_string(),
                        created_at: now,
                        updated_at: now,
                        role: r.role,
                        sections: r.sections.to_string(),
                    };
                    diesel::insert_into(contacts::table)
                        .values((
                            contacts::id.eq(&contact.id),
                            contacts::survey_id.eq(survey_id),
                            contacts::country_iso3.eq(r.country_iso3),
                            contacts::name.eq(r.name),
                            contacts::email.eq(r.email),
                            contacts::language.eq(r.language),
                            contacts::office.eq(r.office),
                            contacts::role.eq(r.role.as_str()),
                            contacts::sections.eq(r.sections),
                            contacts::created_at.eq(now),
                            contacts::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                    existing.insert(contact.email.clone(), contact);
                    summary.added += 1;
                }
            }
        }
        Ok(summary)
    })
}

/// Emails bound in one look-up of [`upsert_all`]: well inside both backends' limits on bound
/// parameters.
const EMAILS_PER_LOOKUP: usize = 1000;

/// A survey's contacts, by country then email.
pub fn list(conn: &mut DbConn, survey_id: &str) -> QueryResult<Vec<Contact>> {
    contacts::table
        .filter(contacts::survey_id.eq(survey_id))
        .order((contacts::country_iso3, contacts::email))
        .select(Contact::as_select())
        .load(conn)
}

/// The contacts of one country in a survey, by email.
pub fn list_for_country(
    conn: &mut DbConn,
    survey_id: &str,
    iso3: &str,
) -> QueryResult<Vec<Contact>> {
    contacts::table
        .filter(contacts::survey_id.eq(survey_id))
        .filter(contacts::country_iso3.eq(iso3))
        .order(contacts::email)
        .select(Contact::as_select())
        .load(conn)
}
