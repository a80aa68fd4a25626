//! The contacts import file: any bytes must be refused with line-numbered errors or read as
//! rows, never panic, for a survey answered per country and one answered per organisation.
//! What imports also exports and imports again unchanged.
#![no_main]

use std::sync::LazyLock;

use coherence::contacts::{parse_csv, to_csv, Contact, ContactRow};
use coherence::reference::Countries;
use coherence::survey::RespondentUnit;
use libfuzzer_sys::fuzz_target;

static COUNTRIES: LazyLock<Countries> =
    LazyLock::new(|| Countries::load().expect("the shipped country list loads"));

fn check(result: &Result<Vec<ContactRow>, Vec<coherence::contacts::RowError>>) {
    match result {
        Ok(rows) => {
            assert!(!rows.is_empty());
            for r in rows {
                assert!(r.line >= 2);
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors {
                assert!(e.line >= 1);
                let _ = e.to_string();
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let by_country = parse_csv(data, &*COUNTRIES, RespondentUnit::Country);
    let by_office = parse_csv(data, &*COUNTRIES, RespondentUnit::Organisation);
    check(&by_country);
    check(&by_office);
    // Organisations only add a rule (the office may not be empty).
    if let Ok(rows) = &by_office {
        assert_eq!(by_country.as_ref().ok(), Some(rows));
    }
    let Ok(rows) = by_country else {
        return;
    };
    let contacts: Vec<Contact> = rows
        .iter()
        .map(|r| Contact {
            id: String::new(),
            survey_id: String::new(),
            country_iso3: r.country.clone(),
            name: r.name.clone(),
            email: r.email.clone(),
            language: r.language.clone(),
            office: r.office.clone(),
            role: r.role,
            sections: r.sections.join(" "),
            created_at: chrono::NaiveDateTime::default(),
            updated_at: chrono::NaiveDateTime::default(),
        })
        .collect();
    let exported = to_csv(&contacts).expect("contacts export to CSV");
    let again = parse_csv(exported.as_bytes(), &*COUNTRIES, RespondentUnit::Country)
        .expect("an export imports again");
    let key = |r: &ContactRow| {
        (
            r.country.clone(),
            r.name.clone(),
            r.email.clone(),
            r.language.clone(),
            r.office.clone(),
            r.role,
            r.sections.clone(),
        )
    };
    assert_eq!(
        rows.iter().map(key).collect::<Vec<_>>(),
        again.iter().map(key).collect::<Vec<_>>(),
        "export then import changes the contacts"
    );
});
