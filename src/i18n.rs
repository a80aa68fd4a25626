//! Interface strings in the user's language (Project Fluent files under `locales/`).

use std::collections::HashMap;
use std::sync::LazyLock;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader};

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        // Fluent's bidi isolation marks would show up inside HTML attributes and emails.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

static ENGLISH: LazyLock<LanguageIdentifier> = LazyLock::new(|| "en".parse().unwrap_or_default());

/// The interface's languages, parsed once (a page asks for dozens of messages).
static KNOWN: LazyLock<Vec<(&'static str, LanguageIdentifier)>> = LazyLock::new(|| {
    ["en", "fr", "es"]
        .into_iter()
        .map(|code| (code, code.parse().unwrap_or_else(|_| ENGLISH.clone())))
        .collect()
});

fn language(lang: &str) -> std::borrow::Cow<'static, LanguageIdentifier> {
    match KNOWN.iter().find(|(code, _)| *code == lang) {
        Some((_, id)) => std::borrow::Cow::Borrowed(id),
        None => std::borrow::Cow::Owned(lang.parse().unwrap_or_else(|_| ENGLISH.clone())),
    }
}

/// Translate a message id with named arguments.
pub fn translate(lang: &str, id: &str, args: &[(&str, String)]) -> String {
    let lang = language(lang);
    if args.is_empty() {
        return LOCALES.lookup(&lang, id);
    }
    // The values borrowed, not copied: the compendium translates one per practice.
    let map: HashMap<std::borrow::Cow<'static, str>, FluentValue> = args
        .iter()
        .map(|(k, v)| {
            (
                std::borrow::Cow::Owned(k.to_string()),
                FluentValue::from(v.as_str()),
            )
        })
        .collect();
    LOCALES.lookup_with_args(&lang, id, &map)
}

const MONTHS: [[&str; 12]; 3] = [
    [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
    [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ],
];

/// A date and time as the language writes it: "30 June 2027, 23:59", "30 juin 2027 à 23:59",
/// "30 de junio de 2027, 23:59".
pub fn format_datetime(lang: &str, t: chrono::NaiveDateTime) -> String {
    use chrono::{Datelike, Timelike};
    let (day, year, hour, minute) = (t.day(), t.year(), t.hour(), t.minute());
    let m = t.month0() as usize;
    match lang {
        "fr" => format!("{day} {} {year} à {hour:02}:{minute:02}", MONTHS[1][m]),
        "es" => format!("{day} de {} de {year}, {hour:02}:{minute:02}", MONTHS[2][m]),
        _ => format!("{day} {} {year}, {hour:02}:{minute:02}", MONTHS[0][m]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_follow_the_language() {
        let t = chrono::NaiveDate::from_ymd_opt(2027, 6, 30)
            .unwrap()
            .and_hms_opt(23, 59, 0)
            .unwrap();
        assert_eq!(format_datetime("en", t), "30 June 2027, 23:59");
        assert_eq!(format_datetime("fr", t), "30 juin 2027 à 23:59");
        assert_eq!(format_datetime("es", t), "30 de junio de 2027, 23:59");
    }
}

/// A number as the language writes it: a decimal comma in French and Spanish.
pub fn format_number(lang: &str, text: &str) -> String {
    match lang {
        "fr" | "es" => text.replace('.', ","),
        _ => text.to_string(),
    }
}

/// A share as the language writes it: "12.5%" in English, "12,5 %" in French and Spanish
/// (a narrow no-break space before the sign).
pub fn format_percent(lang: &str, text: &str) -> String {
    match lang {
        "fr" | "es" => format!("{}\u{202f}%", format_number(lang, text)),
        _ => format!("{text}%"),
    }
}

#[cfg(test)]
mod number_tests {
    #[test]
    fn decimal_separator_follows_the_language() {
        assert_eq!(super::format_number("fr", "0.25"), "0,25");
        assert_eq!(super::format_number("en", "0.25"), "0.25");
    }
}
