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

/// Add or update contacts, matched by email within the survey, in one transaction.
pub fn upsert_all(
    conn: &mut DbConn,
    survey_id: &str,
    rows: &[ContactFields],
    now: NaiveDateTime,
) -> QueryResult<ImportSummary> {
    conn.transaction(|conn| {
        let mut summary = ImportSummary::default();
        for r in rows {
            let existing: Vec<Contact> = contacts::table
                .filter(contacts::survey_id.eq(survey_id))
                .filter(contacts::email.eq(r.email))
                .select(Contact::as_select())
                .load(conn)?;
            match existing.into_iter().next() {
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
                    summary.updated += 1;
                }
                None => {
                    diesel::insert_into(contacts::table)
                        .values((
                            contacts::id.eq(new_id()),
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
                    summary.added += 1;
                }
            }
        }
        Ok(summary)
    })
}

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
