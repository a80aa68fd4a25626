//! The SMTP relay: lettre's client connection, pooled here, with the message's content written
//! in one piece.
//!
//! lettre's `SmtpTransport` writes a message's content and the `<CRLF>.<CRLF>` that ends it as
//! two writes on a socket that keeps Nagle's algorithm on. The kernel holds the five bytes of
//! the second write until the server acknowledges the first, and the server, which answers only
//! once the end arrives, delays that acknowledgement (40 ms on Linux). Every message waited
//! 40 ms with both processes idle: 10,000 invitations took 140 s over 4 connections. lettre has
//! merged a fix (setting `TCP_NODELAY`, lettre PR #1159) that 0.11.23, the newest release, does
//! not have yet. Until then this module drives lettre's `SmtpConnection` itself, with the same
//! commands in the same order, and sends the content and its end as one command; once a lettre
//! release sets `TCP_NODELAY`, `SmtpTransport` can come back.
//!
//! Its pool also spares a round trip per message: `SmtpTransport`'s pool sends a NOOP before
//! each reuse of a connection; here a reused connection that turns out closed is replaced once,
//! at MAIL FROM, before anything of the message was sent.
//!
//! Over TLS (`smtps://`, `?tls=required`) native-tls writes a message of more than one TLS
//! record (16 KiB) as several writes, so a long message may still wait once; invitations and
//! reminders are a few KiB.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{SmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::{SMTP_PORT, SUBMISSIONS_PORT, SUBMISSION_PORT};

pub use lettre::transport::smtp::Error as SmtpError;

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Smtp(#[from] SmtpError),
    /// The server lacks an extension the message needs; trying again will not help (lettre
    /// reports it as a client error, which the outbox would retry ten times).
    #[error("the server does not accept {0}")]
    Unsupported(&'static str),
}

impl SendError {
    /// Whether trying again later cannot succeed (a 5xx answer, or a missing extension).
    pub fn is_permanent(&self) -> bool {
        match self {
            SendError::Smtp(e) => e.is_permanent(),
            SendError::Unsupported(_) => true,
        }
    }
}

/// Why `COHERENCE_SMTP_URL` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RelayUrlError {
    #[error("not a URL: {0}")]
    Url(#[from] url::ParseError),
    #[error("the URL names no host")]
    NoHost,
    #[error("'{scheme}' with tls={tls:?}: use smtp://, smtps:// or smtp://...?tls=required")]
    Scheme { scheme: String, tls: Option<String> },
    #[error("the user name or password is not UTF-8 once decoded")]
    Credentials,
    #[error("TLS: {0}")]
    Tls(#[source] SmtpError),
}

/// Where and how to reach the SMTP server, from `COHERENCE_SMTP_URL` (the forms lettre's
/// `SmtpTransport::from_url` reads: `smtp://host:port`, `smtp://host:587?tls=required` or
/// `?tls=opportunistic` for STARTTLS, `smtps://user:password@host:465`, and an optional
/// `/name` to say in EHLO).
pub struct Relay {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    mechanisms: Vec<Mechanism>,
    hello: ClientId,
    timeout: Option<Duration>,
}

impl Relay {
    pub fn from_url(url: &str, timeout: Duration) -> Result<Relay, RelayUrlError> {
        let url = url::Url::parse(url)?;
        let host = url.host_str().ok_or(RelayUrlError::NoHost)?.to_string();
        let tls_mode = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let tls_parameters = || TlsParameters::new(host.clone()).map_err(RelayUrlError::Tls);
        let (default_port, tls) = match (url.scheme(), tls_mode.as_deref()) {
            ("smtp", None) => (SMTP_PORT, Tls::None),
            ("smtp", Some("required")) => (SUBMISSION_PORT, Tls::Required(tls_parameters()?)),
            ("smtp", Some("opportunistic")) => {
                (SUBMISSION_PORT, Tls::Opportunistic(tls_parameters()?))
            }
            ("smtps", _) => (SUBMISSIONS_PORT, Tls::Wrapper(tls_parameters()?)),
            (scheme, tls) => {
                return Err(RelayUrlError::Scheme {
                    scheme: scheme.to_string(),
                    tls: tls.map(str::to_string),
                })
            }
        };
        let hello = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_string()),
        };
        let decode = |s: &str| -> Result<String, RelayUrlError> {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(Cow::into_owned)
                .map_err(|_| RelayUrlError::Credentials)
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(decode(url.username())?, decode(password)?)),
            None => None,
        };
        Ok(Relay {
            port: url.port().unwrap_or(default_port),
            host,
            tls,
            credentials,
            mechanisms: DEFAULT_MECHANISMS.to_vec(),
            hello,
            timeout: Some(timeout),
        })
    }

    /// A new connection, greeted, encrypted and signed in as the URL says (the steps of
    /// lettre's `SmtpTransport`).
    fn connect(&self) -> Result<SmtpConnection, SmtpError> {
        let wrapper = match &self.tls {
            Tls::Wrapper(parameters) => Some(parameters),
            _ => None,
        };
        let mut conn = SmtpConnection::connect(
            (self.host.as_str(), self.port),
            self.timeout,
            &self.hello,
            wrapper,
            None,
        )?;
        match &self.tls {
            Tls::Opportunistic(parameters) if conn.can_starttls() => {
                conn.starttls(parameters, &self.hello)?
            }
            Tls::Required(parameters) => conn.starttls(parameters, &self.hello)?,
            _ => {}
        }
        if let Some(credentials) = &self.credentials {
            if let Err(e) = conn.auth(&self.mechanisms, credentials) {
                conn.abort();
                return Err(e);
            }
        }
        Ok(conn)
    }
}

/// A pool of connections to the relay: at most `max_idle` kept between messages, each for at
/// most `idle_timeout`.
pub struct Connections {
    relay: Relay,
    idle: Mutex<Vec<(SmtpConnection, Instant)>>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl Connections {
    pub fn new(relay: Relay, max_idle: usize, idle_timeout: Duration) -> Connections {
        Connections {
            relay,
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
        }
    }

    /// Send one message (its envelope, and its content as lettre formats it); the server's
    /// answer to the end of the content.
    pub fn send(&self, envelope: &Envelope, content: &[u8]) -> Result<Response, SendError> {
        let mut kept = self.take_idle();
        loop {
            let reused = kept.is_some();
            let mut conn = match kept.take() {
                Some(conn) => conn,
                None => self.relay.connect()?,
            };
            let parameters = match mail_parameters(&conn, envelope, content) {
                Ok(parameters) => parameters,
                Err(e) => {
                    self.put_back(conn);
                    return Err(e);
                }
            };
            match conn.command(Mail::new(envelope.from().cloned(), parameters)) {
                Ok(_) => return self.finish(conn, envelope, content),
                // A kept connection the server has closed meanwhile fails here, before anything
                // of the message was sent: once more, on a new connection.
                Err(e) if reused && !e.is_permanent() => close(conn),
                Err(e) => {
                    close(conn);
                    return Err(e.into());
                }
            }
        }
    }

    /// The rest of the transaction after MAIL FROM; the connection goes back to the pool only
    /// when it succeeded (after a refusal lettre, too, closes the connection).
    fn finish(
        &self,
        mut conn: SmtpConnection,
        envelope: &Envelope,
        content: &[u8],
    ) -> Result<Response, SendError> {
        match transfer(&mut conn, envelope, content) {
            Ok(response) => {
                self.put_back(conn);
                Ok(response)
            }
            Err(e) => {
                close(conn);
                Err(SendError::Smtp(e))
            }
        }
    }

    /// The most recently used kept connection; any kept too long are closed (after the lock
    /// is let go: closing waits for the server's answer).
    fn take_idle(&self) -> Option<SmtpConnection> {
        let (found, expired) = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let (fresh, expired): (Vec<_>, Vec<_>) = idle
                .drain(..)
                .partition(|(_, since)| since.elapsed() < self.idle_timeout);
            *idle = fresh;
            (idle.pop().map(|(conn, _)| conn), expired)
        };
        for (conn, _) in expired {
            close(conn);
        }
        found
    }

    fn put_back(&self, conn: SmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push((conn, Instant::now()));
        } else {
            drop(idle);
            close(conn);
        }
    }
}

impl Drop for Connections {
    fn drop(&mut self) {
        let idle = self.idle.get_mut().unwrap_or_else(PoisonError::into_inner);
        for (conn, _) in idle.drain(..) {
            close(conn);
        }
    }
}

/// Say QUIT and close, waiting at most a second for the answer: a connection a firewall has
/// silently dropped would otherwise hold the sender for the whole timeout.
fn close(mut conn: SmtpConnection) {
    let _ = conn.set_timeout(Some(Duration::from_secs(1)));
    conn.abort();
}

/// The parameters MAIL FROM needs for this message on this connection, as lettre's
/// `SmtpConnection::send` gives them, or why this server cannot take it (before anything is
/// sent, so the connection stays usable).
fn mail_parameters(
    conn: &SmtpConnection,
    envelope: &Envelope,
    content: &[u8],
) -> Result<Vec<MailParameter>, SendError> {
    let mut parameters = Vec::new();
    let info = conn.server_info();
    let mut addresses = envelope.from().into_iter().chain(envelope.to());
    if addresses.any(|a| !AsRef::<str>::as_ref(a).is_ascii()) {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            return Err(SendError::Unsupported("non-ASCII addresses (SMTPUTF8)"));
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !content.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err(SendError::Unsupported("8-bit content (8BITMIME)"));
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(parameters)
}

/// RCPT TO for each recipient, DATA, then the content and its end in one write.
fn transfer(
    conn: &mut SmtpConnection,
    envelope: &Envelope,
    content: &[u8],
) -> Result<Response, SmtpError> {
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), Vec::new()))?;
    }
    conn.command(Data)?;
    match std::str::from_utf8(content) {
        Ok(text) => conn.command(Content(text)),
        // lettre formats text as UTF-8; were the content not, lettre's two writes still work.
        Err(_) => conn.message(content),
    }
}

/// A message's content as DATA sends it: a '.' that begins a line doubled (RFC 5321 4.5.2,
/// as lettre's codec does: a line begins after CRLF), then `<CRLF>.<CRLF>`.
struct Content<'a>(&'a str);

impl fmt::Display for Content<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        if rest.starts_with('.') {
            f.write_str(".")?;
        }
        while let Some(i) = rest.find("\r\n.") {
            // Up to and including the dot, then the dot again.
            f.write_str(&rest[..i + 3])?;
            f.write_str(".")?;
            rest = &rest[i + 3..];
        }
        f.write_str(rest)?;
        f.write_str("\r\n.\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dot_that_begins_a_line_is_doubled_and_the_end_added() {
        let cases = [
            ("", "\r\n.\r\n"),
            ("plain", "plain\r\n.\r\n"),
            (".", "..\r\n.\r\n"),
            ("a\r\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n"),
            ("a\r\n..b\r\n.", "a\r\n...b\r\n..\r\n.\r\n"),
            ("a\r\n.\r\n.\r\n", "a\r\n..\r\n..\r\n\r\n.\r\n"),
            // Only CRLF ends a line, as in lettre's codec.
            ("a\n.b\r.c", "a\n.b\r.c\r\n.\r\n"),
            ("mid.dle\r\n", "mid.dle\r\n\r\n.\r\n"),
        ];
        for (content, sent) in cases {
            assert_eq!(Content(content).to_string(), sent, "{content:?}");
        }
    }

    #[test]
    fn the_url_forms_of_the_settings_are_read() {
        let t = Duration::from_secs(30);
        let r = Relay::from_url("smtp://127.0.0.1:2525", t).unwrap();
        assert_eq!((r.host.as_str(), r.port), ("127.0.0.1", 2525));
        assert!(matches!(r.tls, Tls::None) && r.credentials.is_none());
        let r = Relay::from_url("smtp://mailer:s%40cret@smtp.example.org?tls=required", t).unwrap();
        assert_eq!((r.host.as_str(), r.port), ("smtp.example.org", 587));
        assert!(matches!(r.tls, Tls::Required(_)));
        assert_eq!(
            r.credentials,
            Some(Credentials::new("mailer".into(), "s@cret".into()))
        );
        let r = Relay::from_url("smtps://u:p@smtp.example.org/coherence.example.org", t).unwrap();
        assert_eq!(r.port, 465);
        assert!(matches!(r.tls, Tls::Wrapper(_)));
        assert_eq!(r.hello, ClientId::Domain("coherence.example.org".into()));
        let r = Relay::from_url("smtp://h?tls=opportunistic", t).unwrap();
        assert!(matches!(r.tls, Tls::Opportunistic(_)));
        assert_eq!(r.port, 587);
        let r = Relay::from_url("smtps://h:2465?tls=anything", t).unwrap();
        assert!(matches!(r.tls, Tls::Wrapper(_)));
        assert_eq!(r.port, 2465);
        // A user without a password is no credentials, as in lettre.
        let r = Relay::from_url("smtp://user@h", t).unwrap();
        assert!(r.credentials.is_none());
        let scheme = |url| matches!(Relay::from_url(url, t), Err(RelayUrlError::Scheme { .. }));
        assert!(scheme("http://h") && scheme("smtp://h?tls=maybe"));
        assert!(matches!(
            Relay::from_url("smtp:///path", t),
            Err(RelayUrlError::NoHost)
        ));
        assert!(matches!(
            Relay::from_url("not a url", t),
            Err(RelayUrlError::Url(_))
        ));
        assert!(matches!(
            Relay::from_url("smtp://u:%FF@h", t),
            Err(RelayUrlError::Credentials)
        ));
    }
}
