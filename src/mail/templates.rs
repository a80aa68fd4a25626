//! Email bodies: (subject, text, html) template sets per kind of message, in the recipient's
//! language. HTML parts escape every value; the subject and text parts are plain text.

use handlebars::Handlebars;
use serde::Serialize;

use crate::db::outbox::MailKind;

use crate::web::render::TranslateHelper;

const KINDS: &[(&str, [&str; 3])] = &[
    (
        "invite",
        [
            include_str!("../../templates/email/invite/subject.hbs"),
            include_str!("../../templates/email/invite/text.hbs"),
            include_str!("../../templates/email/invite/html.hbs"),
        ],
    ),
    (
        "reminder",
        [
            include_str!("../../templates/email/reminder/subject.hbs"),
            include_str!("../../templates/email/reminder/text.hbs"),
            include_str!("../../templates/email/reminder/html.hbs"),
        ],
    ),
    (
        "deadline",
        [
            include_str!("../../templates/email/deadline/subject.hbs"),
            include_str!("../../templates/email/deadline/text.hbs"),
            include_str!("../../templates/email/deadline/html.hbs"),
        ],
    ),
    (
        "reopened",
        [
            include_str!("../../templates/email/reopened/subject.hbs"),
            include_str!("../../templates/email/reopened/text.hbs"),
            include_str!("../../templates/email/reopened/html.hbs"),
        ],
    ),
    (
        "receipt",
        [
            include_str!("../../templates/email/receipt/subject.hbs"),
            include_str!("../../templates/email/receipt/text.hbs"),
            include_str!("../../templates/email/receipt/html.hbs"),
        ],
    ),
    (
        "sign_off_requested",
        [
            include_str!("../../templates/email/sign_off_requested/subject.hbs"),
            include_str!("../../templates/email/sign_off_requested/text.hbs"),
            include_str!("../../templates/email/sign_off_requested/html.hbs"),
        ],
    ),
    (
        "returned",
        [
            include_str!("../../templates/email/returned/subject.hbs"),
            include_str!("../../templates/email/returned/text.hbs"),
            include_str!("../../templates/email/returned/html.hbs"),
        ],
    ),
    (
        "assignment",
        [
            include_str!("../../templates/email/assignment/subject.hbs"),
            include_str!("../../templates/email/assignment/text.hbs"),
            include_str!("../../templates/email/assignment/html.hbs"),
        ],
    ),
];

pub struct EmailTemplates {
    plain: Handlebars<'static>,
    html: Handlebars<'static>,
}

#[derive(Debug)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What one kind of email says beyond the parts every email has.
#[derive(Debug, Clone)]
pub enum Message {
    Invite {
        link: String,
    },
    Reminder {
        link: String,
        remaining: String,
    },
    Deadline,
    Reopened,
    /// A contributor link for some sections, sent by a coordinator (`sender`, by name);
    /// `sections` are their titles, joined.
    Assignment {
        link: String,
        sender: String,
        sections: String,
    },
    /// A submission's receipt: what was submitted, when, signed off by whom, and its digest.
    Receipt(Receipt),
    /// A response waits for the approver's sign-off.
    SignOffRequested,
    /// The secretariat returned the response: the questions it asks about.
    Returned {
        queries: Vec<String>,
    },
}

/// What a receipt says about a submitted version.
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    pub version: i32,
    /// When it was submitted, in the recipient's language.
    pub at: String,
    /// "Name, title" of the approver who signed it off, if the country signed off.
    pub signed_off: Option<String>,
    /// How it reached the secretariat, in words, when an owner entered it.
    pub entered: Option<String>,
    /// SHA-256 of the version's canonical content.
    pub digest: String,
}

impl Message {
    pub fn kind(&self) -> MailKind {
        match self {
            Message::Invite { .. } => MailKind::Invite,
            Message::Reminder { .. } => MailKind::Reminder,
            Message::Deadline => MailKind::Deadline,
            Message::Reopened => MailKind::Reopened,
            Message::Receipt(_) => MailKind::Receipt,
            Message::SignOffRequested => MailKind::SignOffRequested,
            Message::Returned { .. } => MailKind::Returned,
            Message::Assignment { .. } => MailKind::Assignment,
        }
    }
}

/// The parts every email has, in the recipient's language.
#[derive(Debug, Clone, Serialize)]
pub struct Letter {
    pub name: String,
    pub survey: String,
    /// The country, or "organisation, country" in a survey of organisations.
    pub country: String,
    /// The recipient's deadline, if the survey has one.
    pub deadline: Option<String>,
    /// Where to write for help.
    pub help: String,
}

/// What an email template reads: the letter, its message's own parts, and the language.
#[derive(Serialize)]
struct EmailView<'a> {
    lang: &'a str,
    #[serde(flatten)]
    letter: &'a Letter,
    link: Option<&'a str>,
    remaining: Option<&'a str>,
    receipt: Option<&'a Receipt>,
    /// The questions of a returned response's open queries (empty for other kinds).
    queries: &'a [String],
    sender: Option<&'a str>,
    sections: Option<&'a str>,
}

impl EmailTemplates {
    pub fn new() -> Result<EmailTemplates, handlebars::TemplateError> {
        let mut plain = Handlebars::new();
        // Strict: a key a template names but the view lacks is an error, not a blank.
        plain.set_strict_mode(true);
        plain.register_escape_fn(handlebars::no_escape);
        plain.register_helper("t", Box::new(TranslateHelper { escape: false }));
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        html.register_helper("t", Box::new(TranslateHelper { escape: true }));
        for (kind, [subject, text, body]) in KINDS {
            plain.register_template_string(&format!("{kind}/subject"), subject)?;
            plain.register_template_string(&format!("{kind}/text"), text)?;
            html.register_template_string(&format!("{kind}/html"), body)?;
        }
        Ok(EmailTemplates { plain, html })
    }

    /// The email of `message` to the person of `letter`, in `lang`.
    pub fn render(
        &self,
        message: &Message,
        letter: &Letter,
        lang: &str,
    ) -> Result<RenderedEmail, handlebars::RenderError> {
        let queries: &[String] = match message {
            Message::Returned { queries } => queries,
            _ => &[],
        };
        let mut view = EmailView {
            lang,
            letter,
            link: None,
            remaining: None,
            sender: None,
            sections: None,
            receipt: None,
            queries,
        };
        match message {
            Message::Invite { link } => view.link = Some(link),
            Message::Reminder { link, remaining } => {
                view.link = Some(link);
                view.remaining = Some(remaining);
            }
            Message::Deadline
            | Message::Reopened
            | Message::SignOffRequested
            | Message::Returned { .. } => {}
            Message::Receipt(receipt) => view.receipt = Some(receipt),
            Message::Assignment {
                link,
                sender,
                sections,
            } => {
                view.link = Some(link);
                view.sender = Some(sender);
                view.sections = Some(sections);
            }
        }
        let kind = message.kind().as_str();
        let subject = self.plain.render(&format!("{kind}/subject"), &view)?;
        Ok(RenderedEmail {
            // A subject is one line, whatever a name or title held.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: self.plain.render(&format!("{kind}/text"), &view)?,
            html: self.html.render(&format!("{kind}/html"), &view)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped_in_html_and_kept_in_text() {
        let t = EmailTemplates::new().unwrap();
        let letter = Letter {
            name: "<script>x</script> & Co".into(),
            survey: "Survey \"A\"".into(),
            country: "Côte d'Ivoire".into(),
            help: "help@example.org".into(),
            deadline: Some("2027-06-30 23:59".into()),
        };
        let link = "https://s.example.org/r/abc".to_string();
        let messages = [
            Message::Invite { link: link.clone() },
            Message::Reminder {
                link,
                remaining: "<b>Plans</b>".into(),
            },
            Message::Deadline,
            Message::Reopened,
            Message::Assignment {
                link: "https://s.example.org/r/def".into(),
                sender: "<script>x</script> & Co".into(),
                sections: "<b>Plans</b>".into(),
            },
            Message::Receipt(Receipt {
                version: 2,
                at: "2027-01-02 10:00".into(),
                signed_off: Some("<i>Ana</i>, Director".into()),
                entered: Some("paper".into()),
                digest: "ab".repeat(32),
            }),
            Message::SignOffRequested,
            Message::Returned {
                queries: vec!["<b>Plans</b>".into()],
            },
        ];
        for message in &messages {
            for lang in ["en", "fr", "es"] {
                let e = t.render(message, &letter, lang).unwrap();
                let kind = message.kind();
                assert!(!e.html.contains("<script>"), "{kind}");
                assert!(!e.html.contains("<b>"), "{kind}");
                assert!(
                    e.html.contains("&lt;script&gt;x&lt;/script&gt; &amp; Co"),
                    "{kind}: {}",
                    e.html
                );
                assert!(e.text.contains("<script>x</script> & Co"), "{kind}");
                assert!(e.subject.contains("Côte d'Ivoire") && !e.subject.contains('\n'));
            }
        }
        // Without a deadline, every kind still renders (strict templates, no missing key).
        let open_ended = Letter {
            deadline: None,
            ..letter
        };
        for message in &messages {
            t.render(message, &open_ended, "en").unwrap();
        }
    }
}
