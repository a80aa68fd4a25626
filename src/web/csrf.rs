//! CSRF protection for every form: a random token in a SameSite=Strict cookie, repeated in a
//! hidden field, plus an Origin check. Forms are plain HTML, so this works without JavaScript.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use crate::error::AppError;

pub const COOKIE: &str = "coherence_csrf";
pub const FIELD: &str = "_csrf";

/// The request's CSRF token, and whether it must be set as a new cookie.
pub fn token_for(req: &HttpRequest) -> (String, bool) {
    match req.cookie(COOKIE) {
        Some(c) if c.value().len() == 64 => (c.value().to_string(), false),
        _ => (hex::encode(rand::random::<[u8; 32]>()), true),
    }
}

pub fn set_cookie(res: &mut HttpResponse, token: &str, secure: bool) {
    let cookie = Cookie::build(COOKIE, token.to_string())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .finish();
    // A cookie header that cannot be added only means the next form post is refused.
    let _ = res.add_cookie(&cookie);
}

pub fn verify(req: &HttpRequest, form: &[(String, String)]) -> Result<(), AppError> {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let host = req.connection_info().host().to_string();
        let origin = origin.to_str().unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
        if origin_host != host {
            return Err(AppError::Csrf);
        }
    }
    let cookie = req.cookie(COOKIE).ok_or(AppError::Csrf)?;
    let sent = form
        .iter()
        .find(|(k, _)| k == FIELD)
        .map(|(_, v)| v.as_str())
        .ok_or(AppError::Csrf)?;
    if constant_time_eq(cookie.value().as_bytes(), sent.as_bytes()) && !sent.is_empty() {
        Ok(())
    } else {
        Err(AppError::Csrf)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
