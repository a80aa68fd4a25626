//! Which interface language a request is served in, and how a choice is offered and kept.

use actix_web::cookie::{time::Duration, Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use super::render::LanguageLink;

/// Languages the interface is translated into (locales/), with their own names.
pub const INTERFACE_LANGUAGES: &[(&str, &str)] =
    &[("en", "English"), ("fr", "Français"), ("es", "Español")];
const COOKIE: &str = "coherence_lang";

/// The `lang` asked for in the query string (a plain link on every page), if valid.
pub fn requested(req: &HttpRequest) -> Option<&'static str> {
    let asked = req
        .query_string()
        .split('&')
        .find_map(|kv| kv.strip_prefix("lang="))?;
    INTERFACE_LANGUAGES
        .iter()
        .map(|(c, _)| *c)
        .find(|c| *c == asked)
}

/// The request's language among those `offered` allows: the link's `?lang=`, then the choice
/// remembered in a cookie, then the browser's Accept-Language, then English.
pub fn choose(req: &HttpRequest, offered: impl Fn(&str) -> bool) -> &'static str {
    let pick = |code: &str| -> Option<&'static str> {
        INTERFACE_LANGUAGES
            .iter()
            .map(|(c, _)| *c)
            .find(|c| *c == code && offered(c))
    };
    if let Some(l) = requested(req).and_then(pick) {
        return l;
    }
    if let Some(l) = req.cookie(COOKIE).and_then(|c| pick(c.value())) {
        return l;
    }
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for part in accept.split(',') {
        let mut bits = part.trim().split(';');
        let tag = bits.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = bits.any(|b| b.trim() == "q=0");
        let primary = tag.split('-').next().unwrap_or("");
        if let Some(l) = (!refused).then(|| pick(primary)).flatten() {
            return l;
        }
    }
    "en"
}

/// This page's address in another language: the same query (a breakdown, a filter, a sort)
/// with `lang` replaced.
fn with_lang(req: &HttpRequest, path: &str, code: &str) -> String {
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    pairs.retain(|(k, _)| k != "lang");
    pairs.push(("lang".into(), code.into()));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_else(|_| format!("lang={code}"));
    format!("{path}?{query}")
}

/// Links to this page in each offered language; none when only one is offered.
pub fn link_list(
    req: &HttpRequest,
    offered: impl Fn(&str) -> bool,
    current: &str,
) -> Vec<LanguageLink> {
    link_list_at(req, req.path(), offered, current)
}

/// Links to the page at `path` in each offered language: for the page a form's POST answers
/// with, whose own address shows nothing when opened again.
pub fn link_list_at(
    req: &HttpRequest,
    path: &str,
    offered: impl Fn(&str) -> bool,
    current: &str,
) -> Vec<LanguageLink> {
    let list: Vec<LanguageLink> = INTERFACE_LANGUAGES
        .iter()
        .filter(|(c, _)| offered(c))
        .map(|(code, name)| LanguageLink {
            code,
            name,
            href: with_lang(req, path, code),
            current: *code == current,
        })
        .collect();
    if list.len() > 1 {
        list
    } else {
        Vec::new()
    }
}

/// Remember a language asked for with `?lang=` for the next pages and visits.
pub fn remember(req: &HttpRequest, res: &mut HttpResponse, secure: bool) {
    if let Some(lang) = requested(req) {
        let cookie = Cookie::build(COOKIE, lang)
            .path("/")
            .same_site(SameSite::Lax)
            .secure(secure)
            .max_age(Duration::days(365))
            .finish();
        // A cookie that cannot be added only means the choice is asked again next time.
        let _ = res.add_cookie(&cookie);
    }
}
