//! Pages: handlebars templates compiled once at start, with a `t` helper for translations.

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use serde::Serialize;
use serde_json::Value as Json;

pub use crate::i18n::translate;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout", include_str!("../../templates/layout.hbs")),
    ("message", include_str!("../../templates/message.hbs")),
    ("landing", include_str!("../../templates/landing.hbs")),
    (
        "respond/overview",
        include_str!("../../templates/respond/overview.hbs"),
    ),
    (
        "respond/section",
        include_str!("../../templates/respond/section.hbs"),
    ),
    (
        "respond/field",
        include_str!("../../templates/respond/field.hbs"),
    ),
    (
        "respond/review",
        include_str!("../../templates/respond/review.hbs"),
    ),
    (
        "respond/receipt",
        include_str!("../../templates/respond/receipt.hbs"),
    ),
    (
        "respond/colleagues",
        include_str!("../../templates/respond/colleagues.hbs"),
    ),
    (
        "respond/print",
        include_str!("../../templates/respond/print.hbs"),
    ),
    (
        "respond/query",
        include_str!("../../templates/respond/query.hbs"),
    ),
    (
        "respond/questionnaire",
        include_str!("../../templates/respond/questionnaire.hbs"),
    ),
    (
        "admin/login",
        include_str!("../../templates/admin/login.hbs"),
    ),
    (
        "admin/setup",
        include_str!("../../templates/admin/setup.hbs"),
    ),
    (
        "admin/dashboard",
        include_str!("../../templates/admin/dashboard.hbs"),
    ),
    (
        "admin/survey",
        include_str!("../../templates/admin/survey.hbs"),
    ),
    (
        "admin/country",
        include_str!("../../templates/admin/country.hbs"),
    ),
    (
        "results/filters",
        include_str!("../../templates/results/filters.hbs"),
    ),
    (
        "results/chart",
        include_str!("../../templates/results/chart.hbs"),
    ),
    (
        "results/stacked",
        include_str!("../../templates/results/stacked.hbs"),
    ),
    (
        "results/dashboard",
        include_str!("../../templates/results/dashboard.hbs"),
    ),
    (
        "results/question",
        include_str!("../../templates/results/question.hbs"),
    ),
    (
        "results/compendium",
        include_str!("../../templates/results/compendium.hbs"),
    ),
    (
        "results/needs",
        include_str!("../../templates/results/needs.hbs"),
    ),
    (
        "admin/changes",
        include_str!("../../templates/admin/changes.hbs"),
    ),
    (
        "results/changes",
        include_str!("../../templates/results/changes.hbs"),
    ),
];

const FIELD_TEMPLATE: &str = include_str!("../../templates/respond/field.hbs");

pub const CSS: &str = include_str!("../../templates/static/app.css");

pub struct Templates {
    /// Strict: a key a template names but its view lacks is an error, so a misspelt name
    /// fails the test suite instead of leaving a blank on a page.
    strict: Handlebars<'static>,
    pub css_version: String,
}

/// What the layout around every page shows besides the page itself.
#[derive(Debug, Default, Serialize)]
pub struct Layout {
    pub page_title: Option<String>,
    pub survey_title: Option<String>,
    /// Links to this page in the other languages offered (empty when one is offered).
    pub languages: Vec<LanguageLink>,
    /// Tables of every country: the page may use the window's width (up to about 1250 px).
    pub wide: bool,
}

impl Layout {
    pub fn titled(page_title: String) -> Layout {
        Layout {
            page_title: Some(page_title),
            ..Layout::default()
        }
    }

    pub fn wide(page_title: String) -> Layout {
        Layout {
            page_title: Some(page_title),
            wide: true,
            ..Layout::default()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LanguageLink {
    pub code: &'static str,
    pub name: &'static str,
    pub href: String,
    pub current: bool,
}

impl Templates {
    pub fn new() -> Result<Templates, handlebars::TemplateError> {
        let strict = Self::strict_registry()?;
        use sha2::Digest;
        let css_version = hex::encode(&sha2::Sha256::digest(CSS.as_bytes())[..6]);
        Ok(Templates {
            strict,
            css_version,
        })
    }

    fn strict_registry() -> Result<Handlebars<'static>, handlebars::TemplateError> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        for (name, text) in TEMPLATES {
            // The field partial is pasted into the section template at start: a runtime
            // partial makes handlebars copy each question's data and every option inside it.
            let text = text.replace("{{> respond/field}}", FIELD_TEMPLATE);
            registry.register_template_string(name, text)?;
        }
        registry.register_helper("t", Box::new(TranslateHelper { escape: true }));
        Ok(registry)
    }

    /// Render a page from its typed view: the template `name` with `view` (a struct, which
    /// gets `lang`), then the layout around it, both in strict mode.
    pub fn render_view<T: Serialize>(
        &self,
        name: &str,
        lang: &str,
        layout: &Layout,
        view: &T,
    ) -> Result<String, handlebars::RenderError> {
        let mut data = serde_json::to_value(view).map_err(RenderErrorReason::SerdeError)?;
        let Json::Object(map) = &mut data else {
            return Err(
                RenderErrorReason::Other(format!("the view of {name} is not a struct")).into(),
            );
        };
        map.insert("lang".into(), Json::String(lang.to_string()));
        let content = self
            .strict
            .render_with_context(name, &handlebars::Context::from(data))?;
        let page = LayoutPage {
            lang,
            css_version: &self.css_version,
            layout,
        };
        let mut data = serde_json::to_value(&page).map_err(RenderErrorReason::SerdeError)?;
        // The body is moved in, not serialised again: it is most of the page's bytes.
        if let Json::Object(map) = &mut data {
            map.insert("content".into(), Json::String(content));
        }
        self.strict
            .render_with_context("layout", &handlebars::Context::from(data))
    }
}

/// The layout's data, besides `content`: the page's body, inserted raw (it comes from the
/// escaping templates).
#[derive(Serialize)]
struct LayoutPage<'a> {
    lang: &'a str,
    css_version: &'a str,
    #[serde(flatten)]
    layout: &'a Layout,
}

/// `{{t "message-id" name=value ...}}`: the message in the page's language (`lang` at the root).
/// `escape` is false only for plain-text email, whose registry does not escape either.
pub struct TranslateHelper {
    pub escape: bool,
}

impl handlebars::HelperDef for TranslateHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let id = h
            .param(0)
            .and_then(|p| p.value().as_str())
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("t", 0))?;
        let lang = ctx
            .data()
            .get("lang")
            .and_then(Json::as_str)
            .unwrap_or("en");
        let args: Vec<(&str, String)> = h
            .hash()
            .iter()
            .map(|(k, v)| {
                let text = match v.value() {
                    Json::String(s) => s.clone(),
                    Json::Null => String::new(),
                    other => other.to_string(),
                };
                (*k, text)
            })
            .collect();
        let text = translate(lang, id, &args);
        if self.escape {
            out.write(&handlebars::html_escape(&text))?;
        } else {
            out.write(&text)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_with_arguments() {
        assert_eq!(
            translate("en", "error-too-long", &[("max", "5".into())]),
            "Use at most 5 characters"
        );
        let t = Templates::new().unwrap();
        let view = crate::web::MessagePage {
            title: "<b>x</b>".into(),
            body: "y".into(),
            back: None,
        };
        let html = t
            .render_view("message", "en", &Layout::default(), &view)
            .unwrap();
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(html.contains("Skip to main content"), "{html}");
    }
}
