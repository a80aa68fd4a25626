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

fn language(lang: &str) -> LanguageIdentifier {
    lang.parse().unwrap_or_else(|_| ENGLISH.clone())
}

/// Translate a message id with named arguments.
pub fn translate(lang: &str, id: &str, args: &[(&str, String)]) -> String {
    let lang = language(lang);
    if args.is_empty() {
        return LOCALES.lookup(&lang, id);
    }
    let map: HashMap<std::borrow::Cow<'static, str>, FluentValue> = args
        .iter()
        .map(|(k, v)| {
            (
                std::borrow::Cow::Owned(k.to_string()),
                FluentValue::from(v.clone()),
            )
        })
        .collect();
    LOCALES.lookup_with_args(&lang, id, &map)
}
