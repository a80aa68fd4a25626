//! CSRF protection for every form, without JavaScript.
//!
//! - A random secret per browser lives in an HttpOnly, SameSite=Strict cookie (`__Host-` prefixed
//!   under https, so a sibling subdomain cannot plant one).
//! - A form's token is not that secret but a hash of it with what the form acts for: the admin
//!   session, the personal link, or the setup link. A cookie/field pair an attacker made up
//!   therefore fails, and a token taken from one session or link is useless for another.
//! - The secret is replaced at sign-in and sign-out.
//! - Origin (or Referer) must be the service's own: the scheme and host of `COHERENCE_BASE_URL`,
//!   never a forwarded host header. `Sec-Fetch-Site: cross-site` is refused as well.
//!
//! The token is derived, not stored, so any node behind a proxy verifies what another issued.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::error::AppError;

const COOKIE_PLAIN: &str = "coherence_csrf";
/// Under https: the browser only accepts it Secure, for path `/`, from this very host.
const COOKIE_HOST: &str = "__Host-coherence_csrf";
pub const FIELD: &str = "_csrf";

/// What a form acts for; its token is valid for that alone.
#[derive(Debug, Clone, Copy)]
pub enum Binding<'a> {
    /// Pages without an identity: the sign-in form.
    Anonymous,
    /// An administrator's or owner's session (the session cookie's value).
    Session(&'a str),
    /// A focal point's personal link.
    Link(&'a str),
    /// A one-time password-setup link.
    Setup(&'a str),
}

impl Binding<'_> {
    fn label(&self) -> (&'static str, &str) {
        match self {
            Binding::Anonymous => ("anonymous", ""),
            Binding::Session(s) => ("session", s),
            Binding::Link(l) => ("link", l),
            Binding::Setup(s) => ("setup", s),
        }
    }
}

fn cookie_name(secure: bool) -> &'static str {
    if secure {
        COOKIE_HOST
    } else {
        COOKIE_PLAIN
    }
}

fn valid_secret(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The browser's secret from its cookie, if it has a well-formed one.
fn browser_secret(req: &HttpRequest, secure: bool) -> Option<String> {
    req.cookie(cookie_name(secure))
        .map(|c| c.value().to_string())
        .filter(|s| valid_secret(s))
}

fn derive(secret: &str, binding: Binding) -> String {
    let (kind, value) = binding.label();
    let mut h = Sha256::new();
    for part in ["coherence-csrf-v2", secret, kind, value] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// The token to put in a form, and the secret to set as a cookie when the browser has none.
pub struct FormToken {
    pub token: String,
    new_secret: Option<String>,
}

impl FormToken {
    /// Set the browser's secret on the response when it was just made.
    pub fn set_cookie(&self, res: &mut HttpResponse, secure: bool) {
        if let Some(secret) = &self.new_secret {
            set_secret(res, secret, secure);
        }
    }
}

pub fn form_token(req: &HttpRequest, binding: Binding, secure: bool) -> FormToken {
    match browser_secret(req, secure) {
        Some(secret) => FormToken {
            token: derive(&secret, binding),
            new_secret: None,
        },
        None => {
            let secret = new_secret();
            FormToken {
                token: derive(&secret, binding),
                new_secret: Some(secret),
            }
        }
    }
}

fn new_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn set_secret(res: &mut HttpResponse, secret: &str, secure: bool) {
    let cookie = Cookie::build(cookie_name(secure), secret.to_string())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .finish();
    // A cookie header that cannot be added only means the next form post is refused.
    let _ = res.add_cookie(&cookie);
}

/// Replace the browser's secret (at sign-in and sign-out): tokens issued before stop working.
pub fn rotate(res: &mut HttpResponse, secure: bool) {
    set_secret(res, &new_secret(), secure);
}

/// The origin a browser sends for this service: `COHERENCE_BASE_URL`'s scheme and host when it
/// is set; otherwise (a local run) plain http with the Host the client connected to.
fn own_origin(req: &HttpRequest, settings: &Settings) -> Option<String> {
    if settings.base_url_explicit {
        return Some(origin_of(&settings.base_url));
    }
    let host = req.headers().get(header::HOST)?.to_str().ok()?;
    Some(format!("http://{}", host.to_ascii_lowercase()))
}

/// `scheme://host[:port]` of a URL, lower-cased.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    )
}

fn check_origin(req: &HttpRequest, settings: &Settings) -> Result<(), AppError> {
    let headers = req.headers();
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(AppError::Csrf);
    }
    let claimed = match (headers.get(header::ORIGIN), headers.get(header::REFERER)) {
        (Some(origin), _) => origin.to_str().map(origin_of).map_err(|_| AppError::Csrf)?,
        (None, Some(referer)) => referer
            .to_str()
            .map(origin_of)
            .map_err(|_| AppError::Csrf)?,
        // Neither header: not a browser's cross-site post (browsers send Origin on POST); the
        // token below still has to match.
        (None, None) => return Ok(()),
    };
    match own_origin(req, settings) {
        Some(own) if own == claimed => Ok(()),
        _ => Err(AppError::Csrf),
    }
}

/// Check a posted form's token for what it acts for.
pub fn verify(
    req: &HttpRequest,
    settings: &Settings,
    form: &[(String, String)],
    binding: Binding,
) -> Result<(), AppError> {
    check_origin(req, settings)?;
    let secure = settings.base_url.starts_with("https://");
    let secret = browser_secret(req, secure).ok_or(AppError::Csrf)?;
    let sent = form
        .iter()
        .find(|(k, _)| k == FIELD)
        .map(|(_, v)| v.as_str())
        .ok_or(AppError::Csrf)?;
    if constant_time_eq(derive(&secret, binding).as_bytes(), sent.as_bytes()) {
        Ok(())
    } else {
        Err(AppError::Csrf)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_what_they_act_for() {
        let secret = new_secret();
        let a = derive(&secret, Binding::Session("s1"));
        assert_ne!(a, derive(&secret, Binding::Session("s2")));
        assert_ne!(a, derive(&secret, Binding::Link("s1")));
        assert_ne!(a, derive(&new_secret(), Binding::Session("s1")));
        assert_ne!(a, secret);
        assert_eq!(a, derive(&secret, Binding::Session("s1")));
    }

    #[test]
    fn origins_compare_scheme_and_host() {
        assert_eq!(
            origin_of("https://Survey.example.org/r/x"),
            "https://survey.example.org"
        );
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_ne!(
            origin_of("http://survey.example.org"),
            origin_of("https://survey.example.org")
        );
    }
}
