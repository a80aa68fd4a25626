//! Focal-point contacts per survey: CSV import (all or nothing, every problem reported with its
//! line and field), re-import to update, and export.

use std::collections::HashMap;

use chrono::NaiveDateTime;

use crate::db::contacts::{self as store, ContactFields};
use crate::db::tokens::LinkRole;
use crate::db::{DbConn, QueryError};
use crate::survey::answer::CountryCodes;
use crate::survey::{Population, RespondentUnit, Survey};

pub const LANGUAGES: &[&str] = &["en", "fr", "es"];
const REQUIRED_COLUMNS: &[&str] = &["country", "name", "email", "language", "office"];
/// Columns a file may add: the links' role (coordinator when absent or empty) and a
/// contributor's section ids, separated by spaces or semicolons.
const ROLE_COLUMNS: &[&str] = &["role", "sections"];

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

    /// The section ids a contributor contact answers (none for other roles).
    pub fn section_ids(&self) -> Vec<String> {
        self.sections
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
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
    pub role: LinkRole,
    /// A contributor's section ids, in the survey's order where the survey is known.
    pub sections: Vec<String>,
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

/// What a file is checked against beyond the country codes: the survey's population and its
/// section ids.
struct SurveyRules<'a> {
    id: &'a str,
    population: &'a Population,
    sections: Vec<&'a str>,
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
        Some(SurveyRules {
            id: &survey.id,
            population: &survey.population,
            sections: survey.sections.iter().map(|s| s.id.as_str()).collect(),
        }),
    )
}

fn parse_rows(
    data: &[u8],
    countries: &dyn CountryCodes,
    unit: RespondentUnit,
    rules: Option<SurveyRules>,
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
    for col in ROLE_COLUMNS {
        if let Some(i) = headers.iter().position(|h| h == col) {
            index.insert(*col, i);
        }
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
        let get = |col: &str| match index.get(col) {
            Some(&i) => crate::text::csv::restore(record.get(i).unwrap_or("")).to_string(),
            None => String::new(),
        };
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
        } else if let Some(rules) = &rules {
            if !rules.population.contains(&country) {
                bad("country", rules.population.refusal(rules.id, &country));
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
        let role_text = get("role").to_lowercase();
        let role = if role_text.is_empty() {
            Some(LinkRole::Coordinator)
        } else {
            LinkRole::parse(&role_text)
        };
        if role.is_none() {
            bad(
                "role",
                format!("'{role_text}' is not one of coordinator, contributor, approver"),
            );
        }
        let sections = row_sections(&get("sections"), rules.as_ref().map(|r| &r.sections[..]));
        match (&sections, role) {
            (Err(unknown), _) => bad(
                "sections",
                format!("'{unknown}' is not a section of this survey"),
            ),
            (Ok(list), Some(LinkRole::Contributor)) if list.is_empty() => bad(
                "sections",
                "is empty: a contributor answers the sections listed here".into(),
            ),
            (Ok(list), Some(LinkRole::Coordinator | LinkRole::Approver)) if !list.is_empty() => {
                bad(
                    "sections",
                    "only a contributor is given sections: the other roles answer them all".into(),
                )
            }
            _ => {}
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
            role: role.unwrap_or(LinkRole::Coordinator),
            sections: sections.unwrap_or_default(),
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

/// A row's section ids, split on spaces or semicolons, each once; in the survey's order when
/// the survey is known, and then every id must be one of its sections (the first unknown id
/// is the error).
fn row_sections(cell: &str, known: Option<&[&str]>) -> Result<Vec<String>, String> {
    let mut given: Vec<&str> = Vec::new();
    for id in cell.split(|c: char| c == ';' || c.is_whitespace()) {
        if !id.is_empty() && !given.contains(&id) {
            given.push(id);
        }
    }
    let Some(known) = known else {
        return Ok(given.into_iter().map(String::from).collect());
    };
    if let Some(unknown) = given.iter().find(|id| !known.contains(id)) {
        return Err(unknown.chars().take(100).collect());
    }
    Ok(known
        .iter()
        .filter(|id| given.contains(id))
        .map(|id| id.to_string())
        .collect())
}

/// Add or update contacts, matched by email within the survey, in one transaction.
pub fn import(
    conn: &mut DbConn,
    survey_id: &str,
    rows: &[ContactRow],
    now: NaiveDateTime,
) -> Result<ImportSummary, QueryError> {
    let sections: Vec<String> = rows.iter().map(|r| r.sections.join(" ")).collect();
    let fields: Vec<ContactFields> = rows
        .iter()
        .zip(&sections)
        .map(|(r, sections)| ContactFields {
            country_iso3: &r.country,
            name: &r.name,
            email: &r.email,
            language: &r.language,
            office: &r.office,
            role: r.role,
            sections,
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
/// The role and sections columns are written when some contact is not a coordinator.
pub fn to_csv(list: &[Contact]) -> Result<String, csv::Error> {
    let mut w = crate::text::csv::SafeWriter::new();
    let with_roles = list.iter().any(|c| c.role != LinkRole::Coordinator);
    let mut header = REQUIRED_COLUMNS.to_vec();
    if with_roles {
        header.extend(ROLE_COLUMNS);
    }
    w.write_record(&header)?;
    for c in list {
        let mut record = vec![
            c.country_iso3.as_str(),
            &c.name,
            &c.email,
            &c.language,
            &c.office,
        ];
        if with_roles {
            record.extend([c.role.as_str(), &c.sections]);
        }
        w.write_record(&record)?;
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
    fn roles_and_sections_are_read_and_checked() {
        let csv = "country,name,email,language,office,role,sections\n\
                   SWE,Anna,anna@gov.se,en,MFA,,\n\
                   SWE,Bo,bo@gov.se,en,MoE,Contributor,b;a a\n\
                   SWE,Cy,cy@gov.se,en,MoE,approver,\n\
                   SWE,Di,di@gov.se,en,MoE,owner,\n\
                   SWE,Ed,ed@gov.se,en,MoE,contributor,\n\
                   SWE,Fi,fi@gov.se,en,MoE,coordinator,a\n";
        let errors = parse_csv(csv.as_bytes(), &Few, RespondentUnit::Country).unwrap_err();
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "line 5, role: 'owner' is not one of coordinator, contributor, approver",
                "line 6, sections: is empty: a contributor answers the sections listed here",
                "line 7, sections: only a contributor is given sections: the other roles answer them all",
            ]
        );
        let good: String = csv.lines().take(4).map(|l| format!("{l}\n")).collect();
        let rows = parse_csv(good.as_bytes(), &Few, RespondentUnit::Country).unwrap();
        assert_eq!(rows[0].role, LinkRole::Coordinator);
        assert_eq!(
            (rows[1].role, &rows[1].sections[..]),
            (
                LinkRole::Contributor,
                &["b".to_string(), "a".to_string()][..]
            )
        );
        assert_eq!(rows[2].role, LinkRole::Approver);
        // Against a survey, ids are checked and put in the survey's order.
        assert_eq!(
            row_sections("b;a  a", Some(&["a", "b", "c"])),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(row_sections("a;zz", Some(&["a", "b"])), Err("zz".into()));
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
