//! Focal-point contacts per survey: CSV import (all or nothing, every problem reported with its
//! line and field), re-import to update, and export.

use std::collections::HashMap;

use chrono::NaiveDateTime;

use crate::db::contacts::{self as store, ContactFields};
use crate::db::{DbConn, QueryError};
use crate::survey::answer::CountryCodes;
use crate::survey::{Population, RespondentUnit, Survey};

pub const LANGUAGES: &[&str] = &["en", "fr", "es"];
const REQUIRED_COLUMNS: &[&str] = &["country", "name", "email", "language", "office"];

pub use crate::db::contacts::{Contact, ImportSummary};

impl Contact {
    /// The respondent unit this contact answers for: the country itself, or, in a survey of
    /// organisations, the contact's office (stored trimmed: the import trims every field).
    pub fn unit(&self, unit: RespondentUnit) -> &str {
        match unit {
            RespondentUnit::Country => "",
            RespondentUnit::Organisation => &self.office,
        }
    }
}

/// One row of an import file, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactRow {
    pub line: usize,
    pub country: String,
    pub name: String,
    pub email: String,
    pub language: String,
    pub office: String,
}

/// A problem in an import file: line (1 = the header) and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, {}: {}", self.line, self.field, self.message)
    }
}

/// Read and check a whole CSV file; every problem is reported. In a survey of organisations
/// the office names the organisation that answers, so it may not be empty.
pub fn parse_csv(
    data: &[u8],
    countries: &dyn CountryCodes,
    unit: RespondentUnit,
) -> Result<Vec<ContactRow>, Vec<RowError>> {
    parse_rows(data, countries, unit, None)
}

/// [`parse_csv`] for a survey: a country outside the survey's population is refused too, as
/// a problem of its line's `country` field.
pub fn parse_csv_for(
    data: &[u8],
    countries: &dyn CountryCodes,
    survey: &Survey,
) -> Result<Vec<ContactRow>, Vec<RowError>> {
    parse_rows(
        data,
        countries,
        survey.unit,
        Some((&survey.id, &survey.population)),
    )
}

fn parse_rows(
    data: &[u8],
    countries: &dyn CountryCodes,
    unit: RespondentUnit,
    population: Option<(&str, &Population)>,
) -> Result<Vec<ContactRow>, Vec<RowError>> {
    use validator::ValidateEmail;
    let text = String::from_utf8_lossy(data);
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut errors = Vec::new();
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.to_lowercase()).collect(),
        Err(e) => {
            return Err(vec![RowError {
                line: 1,
                field: "header".into(),
                message: e.to_string(),
            }])
        }
    };
    let mut index = HashMap::new();
    for col in REQUIRED_COLUMNS {
        match headers.iter().position(|h| h == col) {
            Some(i) => {
                index.insert(*col, i);
            }
            None => errors.push(RowError {
                line: 1,
                field: (*col).into(),
                message: format!(
                    "missing column '{col}' (the header needs {})",
                    REQUIRED_COLUMNS.join(",")
                ),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut rows = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (n, record) in reader.records().enumerate() {
        let line = n + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(RowError {
                    line,
                    field: "row".into(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        if record.iter().all(|c| c.is_empty()) {
            continue;
        }
        // A cell our own export neutralised ('=...) comes back as it was typed.
        let get =
            |col: &str| crate::text::csv::restore(record.get(index[col]).unwrap_or("")).to_string();
        let mut bad = |field: &str, message: String| {
            errors.push(RowError {
                line,
                field: field.into(),
                message,
            })
        };
        let country = get("country").to_uppercase();
        if !countries.is_country(&country) {
            bad(
                "country",
                format!("'{country}' is not an ISO 3166-1 alpha-3 country code"),
            );
        } else if let Some((survey_id, population)) = population {
            if !population.contains(&country) {
                bad("country", population.refusal(survey_id, &country));
            }
        }
        let name = get("name");
        if name.is_empty() {
            bad("name", "is empty".into());
        } else if name.chars().count() > 200 {
            bad("name", "is longer than 200 characters".into());
        }
        let email = get("email").to_lowercase();
        if !email.validate_email() {
            bad("email", format!("'{email}' is not an email address"));
        }
        let language = get("language").to_lowercase();
        if !LANGUAGES.contains(&language.as_str()) {
            bad(
                "language",
                format!("'{language}' is not one of {}", LANGUAGES.join(", ")),
            );
        }
        let office = get("office");
        if office.chars().count() > 300 {
            bad("office", "is longer than 300 characters".into());
        } else if office.is_empty() && !unit.is_country() {
            bad(
                "office",
                "is empty: this survey is answered per organisation, and the office names it"
                    .into(),
            );
        }
        if let Some(first) = seen.get(&email) {
            bad(
                "email",
                format!("'{email}' already appears on line {first}"),
            );
        } else {
            seen.insert(email.clone(), line);
        }
        rows.push(ContactRow {
            line,
            country,
            name,
            email,
            language,
            office,
        });
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(RowError {
            line: 2,
            field: "row".into(),
            message: "the file has no contacts".into(),
        });
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Add or update contacts, matched by email within the survey, in one transaction.
pub fn import(
    conn: &mut DbConn,
    survey_id: &str,
    rows: &[ContactRow],
    now: NaiveDateTime,
) -> Result<ImportSummary, QueryError> {
    let fields: Vec<ContactFields> = rows
        .iter()
        .map(|r| ContactFields {
            country_iso3: &r.country,
            name: &r.name,
            email: &r.email,
            language: &r.language,
            office: &r.office,
        })
        .collect();
    store::upsert_all(conn, survey_id, &fields, now)
}

pub fn list(conn: &mut DbConn, survey_id: &str) -> Result<Vec<Contact>, QueryError> {
    store::list(conn, survey_id)
}

/// The contacts of one country in a survey, by email.
pub fn list_for_country(
    conn: &mut DbConn,
    survey_id: &str,
    iso3: &str,
) -> Result<Vec<Contact>, QueryError> {
    store::list_for_country(conn, survey_id, iso3)
}

/// The contacts as CSV, in the import format (so an export can be edited and re-imported).
pub fn to_csv(list: &[Contact]) -> Result<String, csv::Error> {
    let mut w = crate::text::csv::SafeWriter::new();
    w.write_record(REQUIRED_COLUMNS)?;
    for c in list {
        w.write_record([&c.country_iso3, &c.name, &c.email, &c.language, &c.office])?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Few;
    impl CountryCodes for Few {
        fn is_country(&self, iso3: &str) -> bool {
            ["SWE", "PHL"].contains(&iso3)
        }
    }

    #[test]
    fn every_bad_row_is_reported() {
        let csv = "country,name,email,language,office\n\
                   SWE,Anna,anna@gov.se,en,MFA\n\
                   XXX,Bo,bo@gov.se,en,MFA\n\
                   PHL,,not-an-email,de,DFA\n\
                   SWE,Anna again,ANNA@gov.se,fr,MFA\n";
        let errors = parse_csv(csv.as_bytes(), &Few, RespondentUnit::Country).unwrap_err();
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "line 3, country: 'XXX' is not an ISO 3166-1 alpha-3 country code",
                "line 4, name: is empty",
                "line 4, email: 'not-an-email' is not an email address",
                "line 4, language: 'de' is not one of en, fr, es",
                "line 5, email: 'anna@gov.se' already appears on line 2",
            ]
        );
    }

    #[test]
    fn missing_columns_are_named() {
        let errors = parse_csv(
            b"country,name,email\nSWE,A,a@b.se\n",
            &Few,
            RespondentUnit::Country,
        )
        .unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].to_string().contains("missing column 'language'"));
    }
}
