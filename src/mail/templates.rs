//! Email bodies: (subject, text, html) template sets per kind of message, in the recipient's
//! language. HTML parts escape every value; the subject and text parts are plain text.

use handlebars::Handlebars;
use serde_json::Value as Json;

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

impl EmailTemplates {
    pub fn new() -> Result<EmailTemplates, handlebars::TemplateError> {
        let mut plain = Handlebars::new();
        plain.register_escape_fn(handlebars::no_escape);
        plain.register_helper("t", Box::new(TranslateHelper { escape: false }));
        let mut html = Handlebars::new();
        html.register_helper("t", Box::new(TranslateHelper { escape: true }));
        for (kind, [subject, text, body]) in KINDS {
            plain.register_template_string(&format!("{kind}/subject"), subject)?;
            plain.register_template_string(&format!("{kind}/text"), text)?;
            html.register_template_string(&format!("{kind}/html"), body)?;
        }
        Ok(EmailTemplates { plain, html })
    }

    /// `data` must be a JSON object; `lang` is added.
    pub fn render(
        &self,
        kind: &str,
        lang: &str,
        mut data: Json,
    ) -> Result<RenderedEmail, handlebars::RenderError> {
        if let Json::Object(map) = &mut data {
            map.insert("lang".into(), Json::String(lang.into()));
        }
        let subject = self.plain.render(&format!("{kind}/subject"), &data)?;
        Ok(RenderedEmail {
            // A subject is one line, whatever a name or title held.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: self.plain.render(&format!("{kind}/text"), &data)?,
            html: self.html.render(&format!("{kind}/html"), &data)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped_in_html_and_kept_in_text() {
        let t = EmailTemplates::new().unwrap();
        let data = serde_json::json!({
            "name": "<script>x</script> & Co",
            "survey": "Survey \"A\"",
            "country": "Côte d'Ivoire",
            "link": "https://s.example.org/r/abc",
            "help": "help@example.org",
            "deadline": "2027-06-30 23:59",
        });
        for kind in ["invite", "reminder", "deadline", "reopened"] {
            let e = t.render(kind, "en", data.clone()).unwrap();
            assert!(!e.html.contains("<script>"), "{kind}");
            assert!(
                e.html.contains("&lt;script&gt;x&lt;/script&gt; &amp; Co"),
                "{kind}: {}",
                e.html
            );
            assert!(e.text.contains("<script>x</script> & Co"), "{kind}");
            assert!(e.subject.contains("Côte d'Ivoire") && !e.subject.contains('\n'));
        }
    }
}
