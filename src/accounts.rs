//! Administrators and survey owners: accounts, passwords (argon2id), one-time setup links,
//! login sessions. Focal points never have accounts: they use personal links.

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{Duration, NaiveDateTime};

use crate::access::hash_token;
use crate::db::{is_unique_violation, new_id, sessions, users, DbConn, DbError, QueryError};

pub use crate::db::users::{Role, User};

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 1024;
const SESSION_HOURS: i64 = 12;
const SETUP_LINK_HOURS: i64 = 72;

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("the password is too long")]
    PasswordTooLong,
    #[error("'{0}' is not an email address")]
    BadEmail(String),
    #[error("an account for {0} already exists")]
    Exists(String),
    #[error("password hashing failed")]
    Hash(#[source] argon2::password_hash::Error),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<QueryError> for AccountError {
    fn from(e: QueryError) -> Self {
        AccountError::Db(DbError::Query(e))
    }
}

/// Argon2id with explicit parameters (OWASP: 19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn check_password_rules(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(AccountError::PasswordTooShort);
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(AccountError::PasswordTooLong);
    }
    Ok(())
}

pub fn hash_password(password: &str) -> Result<String, AccountError> {
    check_password_rules(password)?;
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(AccountError::Hash)?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(AccountError::Hash)
}

/// The threads that run argon2 (sign-ins and new passwords), and a bounded queue before them.
///
/// Each run allocates 19 MiB. On the general blocking pool every thread that ever ran one keeps
/// that memory in its allocator arena, so a flood of sign-ins grew the process by gigabytes;
/// two dedicated threads bound it to two arenas, and a full queue answers at once instead of
/// piling requests up.
pub struct PasswordPool {
    jobs: std::sync::mpsc::SyncSender<Box<dyn FnOnce() + Send>>,
}

impl PasswordPool {
    pub fn new(threads: usize, queue: usize) -> PasswordPool {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Box<dyn FnOnce() + Send>>(queue);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("passwords-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        // Every sender is gone: the server is stopping.
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password thread");
            }
        }
        PasswordPool { jobs }
    }

    /// Run `work` on a password thread; None when the queue is full (the caller says "busy").
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Box::new(move || {
            let _ = tx.send(work());
        });
        self.jobs.try_send(job).ok()?;
        rx.await.ok()
    }
}

/// A hash to verify against when the email is unknown, so both cases take the same time.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0p4N0m4xOaVeCmk7SZ9H7Yl9xXKh2sVhGdyFqvYmqAA";

fn verify(hash: &str, password: &str) -> bool {
    verify_parsed(hash, password).unwrap_or(false)
}

/// Largest argon2 memory a stored hash may ask for (ours ask 19 MiB).
const MAX_VERIFY_BLOCKS: usize = 64 * 1024;

thread_local! {
    /// The argon2 working memory of this thread, allocated once and reused: allocating 19 MiB
    /// per check left the allocator holding hundreds of MiB after a burst of sign-ins.
    static ARGON2_MEMORY: std::cell::RefCell<Vec<argon2::Block>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn verify_parsed(hash: &str, password: &str) -> Option<bool> {
    let parsed = PasswordHash::new(hash).ok()?;
    let params = Params::try_from(&parsed).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::V0x13,
    };
    let expected = parsed.hash?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let blocks = params.block_count();
    if blocks > MAX_VERIFY_BLOCKS {
        return None;
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    ARGON2_MEMORY.with(|memory| {
        let mut memory = memory.try_borrow_mut().ok()?;
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::default());
        }
        argon
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt,
                &mut out,
                &mut memory[..blocks],
            )
            .ok()
    })?;
    // Constant time: the comparison must not tell how many bytes matched.
    let same = out.len() == expected.as_bytes().len()
        && out
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    Some(same)
}

pub struct NewAccount {
    pub user: User,
    /// The one-time setup token, when no password was given.
    pub setup_token: Option<String>,
}

pub fn create_user(
    conn: &mut DbConn,
    email: &str,
    role: Role,
    password: Option<&str>,
    surveys: &[String],
    now: NaiveDateTime,
) -> Result<NewAccount, AccountError> {
    use validator::ValidateEmail;
    let email = email.trim().to_lowercase();
    if !email.validate_email() {
        return Err(AccountError::BadEmail(email));
    }
    let password_hash = password.map(hash_password).transpose()?;
    let setup_token = password.is_none().then(crate::access::new_token);
    let id = new_id();
    let setup_hash = setup_token.as_deref().map(hash_token);
    let inserted = users::insert_user(
        conn,
        &users::NewUser {
            id: &id,
            email: &email,
            role,
            password_hash: password_hash.as_deref(),
            setup_token_hash: setup_hash.as_deref(),
            setup_expires_at: setup_token
                .as_ref()
                .map(|_| now + Duration::hours(SETUP_LINK_HOURS)),
            now,
        },
        surveys,
    );
    match inserted {
        Err(e) if is_unique_violation(&e) => return Err(AccountError::Exists(email)),
        other => other?,
    }
    let user = find_user(conn, &id)?.ok_or(QueryError::NotFound)?;
    Ok(NewAccount { user, setup_token })
}

pub fn find_user(conn: &mut DbConn, id: &str) -> Result<Option<User>, QueryError> {
    users::find_user(conn, id)
}

/// The account signing in, if the email is known (emails are stored lower-case).
pub fn find_by_email(conn: &mut DbConn, email: &str) -> Result<Option<User>, QueryError> {
    users::find_by_email(conn, &email.trim().to_lowercase())
}

/// Whether `password` is the account's. Pure computation (argon2, about 19 MiB and tens of
/// milliseconds): run it without holding a database connection. An unknown account or one
/// without a password is checked against a dummy hash, so both take the same time.
pub fn password_matches(user: Option<&User>, password: &str) -> bool {
    let hash = user.and_then(|u| u.password_hash.as_deref());
    let ok = verify(hash.unwrap_or(DUMMY_HASH), password);
    ok && hash.is_some()
}

/// The account a browser signed in to before, from its device cookie.
pub fn device_owner(conn: &mut DbConn, device: &str) -> Result<Option<String>, QueryError> {
    sessions::device_owner(conn, &hash_token(device))
}

/// Remember the browser that just signed in: its existing device cookie if it is this
/// account's, else a new one. Returns the cookie value (only its hash is stored).
pub fn remember_device(
    conn: &mut DbConn,
    user_id: &str,
    existing: Option<&str>,
    now: NaiveDateTime,
) -> Result<String, QueryError> {
    if let Some(device) = existing {
        if sessions::touch_device(conn, &hash_token(device), user_id, now)? {
            return Ok(device.to_string());
        }
    }
    let device = hex::encode(rand::random::<[u8; 32]>());
    sessions::insert_device(conn, &hash_token(&device), user_id, now)?;
    // Browsers not seen for a year are forgotten.
    sessions::delete_devices_unused_since(conn, now - Duration::days(365))?;
    Ok(device)
}

/// Who is trying to sign in, as the limits see it.
pub struct SignInAttempt<'a> {
    pub email: &'a str,
    /// The client's address as [`crate::access::address_subject`] gives it.
    pub address: &'a str,
    /// The browser's device cookie, if it has one.
    pub device: Option<&'a str>,
}

/// The outcome of counting an attempt before its password is checked.
pub enum Admission {
    /// Over a limit: the password is not checked.
    Refused,
    /// Within the limits: check the password against this account (None: unknown email).
    Check(Option<User>, Counted),
}

/// The counters an admitted attempt was counted on: a success gives back these and no others.
pub struct Counted(Vec<String>);

/// Count the attempt against every limit that applies, before any password is checked, so
/// that concurrent attempts cannot all pass a limit they would only exceed together. A browser
/// that signed in to this account before counts against its own budget instead of the
/// account's and the address's, so an attacker cannot lock the account's owner out. An
/// address over its limit is refused before the account is counted, so a flood of made-up
/// emails from it adds no rows.
pub fn admit_sign_in(
    conn: &mut DbConn,
    attempt: &SignInAttempt,
    now: NaiveDateTime,
) -> Result<Admission, QueryError> {
    use crate::access::{Limit, LOGINS_PER_ACCOUNT, LOGINS_PER_ADDRESS, LOGINS_PER_DEVICE};
    let user = find_by_email(conn, attempt.email)?;
    let device_owner = match attempt.device {
        Some(d) => device_owner(conn, d)?,
        None => None,
    };
    let known_device = match (&user, &device_owner, attempt.device) {
        (Some(u), Some(owner), Some(d)) if *owner == u.id => Some(d),
        _ => None,
    };
    let limits: Vec<(Limit, String)> = match known_device {
        Some(device) => vec![(LOGINS_PER_DEVICE, device.to_string())],
        None => vec![
            (LOGINS_PER_ADDRESS, attempt.address.to_string()),
            (LOGINS_PER_ACCOUNT, account_key(attempt.email)),
        ],
    };
    let mut counted = Vec::new();
    for (limit, subject) in limits {
        let counter = limit.counter(&subject);
        if crate::db::attempts::hit(conn, &counter, limit.window(), now)? > limit.max {
            return Ok(Admission::Refused);
        }
        counted.push(counter);
    }
    Ok(Admission::Check(user, Counted(counted)))
}

fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A signed-in session and the browser's device cookie to set.
pub struct SignedIn {
    pub session: String,
    pub device: String,
}

/// After the right password: open a session, remember the browser, and give back the
/// attempt where it was counted (a success is not a failure).
pub fn complete_sign_in(
    conn: &mut DbConn,
    user: &User,
    device: Option<&str>,
    counted: &Counted,
    now: NaiveDateTime,
) -> Result<SignedIn, QueryError> {
    for counter in &counted.0 {
        crate::db::attempts::refund(conn, counter)?;
    }
    crate::db::transaction(conn, |conn| {
        let session = open_session(conn, &user.id, now)?;
        let device = remember_device(conn, &user.id, device, now)?;
        record_sign_in(conn, Some(user), crate::audit::AuditKind::SignedIn, now)?;
        Ok(SignedIn { session, device })
    })
}

/// Record an admitted sign-in attempt whose password did not match, in the log of what
/// concerns no survey: the account's id when the email is one, never what was typed (a
/// password typed into the email field would be kept).
pub fn record_failed_sign_in(
    conn: &mut DbConn,
    user: Option<&User>,
    now: NaiveDateTime,
) -> Result<(), QueryError> {
    crate::db::transaction(conn, |conn| {
        record_sign_in(conn, user, crate::audit::AuditKind::SignInFailed, now)
    })
}

fn record_sign_in(
    conn: &mut DbConn,
    user: Option<&User>,
    kind: crate::audit::AuditKind,
    now: NaiveDateTime,
) -> Result<(), QueryError> {
    let actor = match user {
        Some(u) => crate::audit::Actor::User(&u.id),
        None => crate::audit::Actor::System,
    };
    let event = crate::audit::Event {
        survey_id: "",
        country_iso3: "",
        actor,
        kind,
        detail: serde_json::json!({ "known_account": user.is_some() }),
    };
    crate::audit::record(conn, &event, now)
}

/// The account a setup link belongs to, if the link is still valid.
pub fn find_by_setup_token(
    conn: &mut DbConn,
    token: &str,
    now: NaiveDateTime,
) -> Result<Option<User>, QueryError> {
    Ok(users::find_by_setup_hash(conn, &hash_token(token))?
        .filter(|u| u.setup_expires_at.is_some_and(|e| e > now)))
}

/// Set the password and spend the setup link.
pub fn set_password(conn: &mut DbConn, user_id: &str, password: &str) -> Result<(), AccountError> {
    let hash = hash_password(password)?;
    Ok(set_password_hash(conn, user_id, &hash)?)
}

/// Store a password hash made by [`hash_password`] and spend the setup link.
pub fn set_password_hash(conn: &mut DbConn, user_id: &str, hash: &str) -> Result<(), QueryError> {
    users::set_password_hash(conn, user_id, hash)?;
    // Any session opened before the password changed ends.
    sessions::delete_user_sessions(conn, user_id)
}

/// Open a session; returns the cookie value (only its hash is stored).
pub fn open_session(
    conn: &mut DbConn,
    user_id: &str,
    now: NaiveDateTime,
) -> Result<String, QueryError> {
    let token = hex::encode(rand::random::<[u8; 32]>());
    sessions::insert_session(
        conn,
        &hash_token(&token),
        user_id,
        now,
        now + Duration::hours(SESSION_HOURS),
    )?;
    users::set_last_login(conn, user_id, now)?;
    // Expired sessions of everyone are cleared while we are here.
    sessions::delete_expired(conn, now)?;
    Ok(token)
}

pub fn session_user(
    conn: &mut DbConn,
    token: &str,
    now: NaiveDateTime,
) -> Result<Option<User>, QueryError> {
    sessions::session_user(conn, &hash_token(token), now)
}

pub fn close_session(conn: &mut DbConn, token: &str) -> Result<(), QueryError> {
    sessions::delete_session(conn, &hash_token(token))
}

/// Surveys a user may see: all for administrators, their own for owners.
pub fn may_see_survey(conn: &mut DbConn, user: &User, survey_id: &str) -> Result<bool, QueryError> {
    if user.is_admin() {
        return Ok(true);
    }
    users::owns_survey(conn, &user.id, survey_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hashed_and_checked() {
        assert!(matches!(
            hash_password("short"),
            Err(AccountError::PasswordTooShort)
        ));
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, "correct horse battery"));
        assert!(!verify(&h, "wrong horse battery"));
        assert!(
            PasswordHash::new(DUMMY_HASH).is_ok(),
            "the dummy hash parses"
        );
    }
}
