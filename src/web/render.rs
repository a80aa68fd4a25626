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
    /// Fields of section pages, rendered once per question, language and shape (see
    /// [`Templates::render_fragment`]).
    fragments: FragmentCache,
    /// Whether `respond/section` is the fast one: the field partial taken out, each question
    /// coming as `field_html` (false when a customised section template does not name the
    /// partial as `{{> respond/field}}`: then it is `respond/section/plain` itself).
    fast_section: bool,
}

/// The field partial as the section template names it.
const FIELD_PARTIAL: &str = "{{> respond/field}}";
/// The section template with the field partial pasted in: what handlebars alone renders, and
/// what the fast path must match byte for byte.
pub const SECTION_PLAIN: &str = "respond/section/plain";
/// Checks every fast render against plain handlebars (a mismatch is an error): on in debug
/// builds, so that the whole test suite compares the two on every section page it opens.
const VERIFY_ALWAYS: bool = cfg!(debug_assertions);

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
        let fast_section = TEMPLATES
            .iter()
            .any(|(n, text)| *n == "respond/section" && text.contains(FIELD_PARTIAL));
        Ok(Templates {
            strict,
            css_version,
            fragments: FragmentCache::default(),
            fast_section,
        })
    }

    /// Whether section pages take their fields as `field_html` (see [`Templates::fast_section`]).
    pub fn fast_section(&self) -> bool {
        self.fast_section
    }

    /// Whether every fast render is also rendered plainly and compared (debug builds).
    pub fn verify_always(&self) -> bool {
        VERIFY_ALWAYS
    }

    fn strict_registry() -> Result<Handlebars<'static>, handlebars::TemplateError> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        for (name, text) in TEMPLATES {
            if *name == "respond/section" && text.contains(FIELD_PARTIAL) {
                // Section pages get each field already rendered (from the field template,
                // by `render_fragment`); the plain form stays for comparison.
                registry.register_template_string(
                    name,
                    text.replace(FIELD_PARTIAL, "{{{field_html}}}"),
                )?;
                registry.register_template_string(
                    SECTION_PLAIN,
                    text.replace(FIELD_PARTIAL, FIELD_TEMPLATE),
                )?;
                continue;
            }
            // The field partial is pasted into the section template at start: a runtime
            // partial makes handlebars copy each question's data and every option inside it.
            let text = text.replace(FIELD_PARTIAL, FIELD_TEMPLATE);
            if *name == "respond/section" {
                registry.register_template_string(SECTION_PLAIN, text.clone())?;
            }
            registry.register_template_string(name, text)?;
        }
        registry.register_helper("t", Box::new(TranslateHelper { escape: true }));
        Ok(registry)
    }

    /// Render the body of a page (without the layout) from its typed view, `lang` added.
    pub fn render_body<T: Serialize>(
        &self,
        name: &str,
        lang: &str,
        view: &T,
    ) -> Result<String, handlebars::RenderError> {
        let mut data = serde_json::to_value(view).map_err(RenderErrorReason::SerdeError)?;
        let Json::Object(map) = &mut data else {
            return Err(
                RenderErrorReason::Other(format!("the view of {name} is not a struct")).into(),
            );
        };
        map.insert("lang".into(), Json::String(lang.to_string()));
        self.strict
            .render_with_context(name, &handlebars::Context::from(data))
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
        let content = self.render_body(name, lang, view)?;
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

/// A view rendered often with the same template, whose strings split into those fixed by its
/// key (a question's texts in a language, in one version of the survey) and those that change
/// per request (answers, errors). See [`Templates::render_fragment`].
pub trait Fragment: Serialize {
    /// Appends to `shape` everything besides the key that may steer the template: flags,
    /// whether each option is present, lengths of lists. ([`Templates::render_fragment`] adds
    /// whether each per-request string is empty.) Two views with the same key and shape differ
    /// in their per-request strings alone.
    fn shape(&self, shape: &mut Vec<u8>);
    /// The per-request strings, always in the same order for one key and shape.
    fn per_request(&mut self) -> Vec<&mut String>;
}

/// Start of a stand-in for a per-request string while a fragment's skeleton is rendered: a
/// private-use character, then the string's number, then `=`, which the template's escaping
/// turns into `&#x3D;`, so the skeleton also tells whether the string is escaped there.
const HOLE: char = '\u{10FFFD}';
const HOLE_END_RAW: &str = "=";
const HOLE_END_ESCAPED: &str = "&#x3D;";
/// Skeletons kept at most (about a kilobyte each): past that, fragments of shapes not yet
/// seen are rendered by handlebars each time.
const MAX_SKELETONS: usize = 4096;

/// A fragment rendered once: text, with the per-request strings' places.
#[derive(Debug)]
enum Skeleton {
    Holes {
        text: String,
        /// (offset in `text`, string number, escaped)
        holes: Vec<(usize, usize, bool)>,
    },
    /// The template does more with a per-request string than write it out (or a text of the
    /// question holds the stand-in's character): always rendered by handlebars.
    Plain,
}

#[derive(Default)]
struct FragmentCache {
    skeletons: std::sync::RwLock<std::collections::HashMap<Vec<u8>, std::sync::Arc<Skeleton>>>,
}

impl Skeleton {
    /// Split a rendering whose per-request strings were stand-ins; None if a stand-in was
    /// altered or a string number is out of range.
    fn parse(rendered: &str, count: usize) -> Option<Skeleton> {
        let mut text = String::with_capacity(rendered.len());
        let mut holes = Vec::new();
        let mut rest = rendered;
        while let Some(at) = rest.find(HOLE) {
            text.push_str(&rest[..at]);
            rest = &rest[at + HOLE.len_utf8()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let index: usize = rest[..digits].parse().ok()?;
            rest = &rest[digits..];
            let escaped = if let Some(r) = rest.strip_prefix(HOLE_END_ESCAPED) {
                rest = r;
                true
            } else {
                rest = rest.strip_prefix(HOLE_END_RAW)?;
                false
            };
            if index >= count {
                return None;
            }
            holes.push((text.len(), index, escaped));
        }
        text.push_str(rest);
        Some(Skeleton::Holes { text, holes })
    }

    /// The skeleton with `strings` in their places, appended to `out`; false for `Plain`.
    fn fill(&self, strings: &[&mut String], out: &mut String) -> bool {
        let Skeleton::Holes { text, holes } = self else {
            return false;
        };
        let mut from = 0;
        for &(at, index, escaped) in holes {
            out.push_str(&text[from..at]);
            from = at;
            let value = strings.get(index).map(|s| s.as_str()).unwrap_or("");
            if escaped {
                escape_into(value, out);
            } else {
                out.push_str(value);
            }
        }
        out.push_str(&text[from..]);
        true
    }
}

/// handlebars' HTML escaping ([`handlebars::html_escape`]), appended to `out`.
pub fn escape_into(s: &str, out: &mut String) {
    let mut from = 0;
    for (i, b) in s.bytes().enumerate() {
        let entity = match b {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'&' => "&amp;",
            b'\'' => "&#x27;",
            b'`' => "&#x60;",
            b'=' => "&#x3D;",
            _ => continue,
        };
        out.push_str(&s[from..i]);
        out.push_str(entity);
        from = i + 1;
    }
    out.push_str(&s[from..]);
}

impl Templates {
    /// Render `view` with the template `name` (and `lang`), appending to `out`, as handlebars
    /// would, from a skeleton kept per `key` and shape: the first view of a key and shape is
    /// rendered by handlebars with stand-ins for its per-request strings, and the result,
    /// checked against handlebars' own rendering of the view, is kept; later ones only fill
    /// in their strings. The template stays the only source of the markup: a changed template
    /// changes the skeletons.
    ///
    /// `key` must identify everything of the view that is not per-request or in its shape
    /// (the survey's version, the question, the language).
    pub fn render_fragment<T: Fragment>(
        &self,
        name: &str,
        lang: &str,
        mut key: Vec<u8>,
        view: &mut T,
        out: &mut String,
    ) -> Result<(), handlebars::RenderError> {
        key.push(0);
        key.extend_from_slice(name.as_bytes());
        key.push(0);
        view.shape(&mut key);
        // Whether each per-request string is empty: a template may test it.
        key.push(b'|');
        key.extend(view.per_request().iter().map(|s| u8::from(s.is_empty())));
        let found = self
            .fragments
            .skeletons
            .read()
            .ok()
            .and_then(|map| map.get(&key).cloned());
        if let Some(skeleton) = found {
            let start = out.len();
            if !skeleton.fill(&view.per_request(), out) {
                out.push_str(&self.render_body(name, lang, view)?);
            } else if VERIFY_ALWAYS {
                let plain = self.render_body(name, lang, view)?;
                if out[start..] != plain {
                    return Err(mismatch(name, &plain, &out[start..]));
                }
            }
            return Ok(());
        }
        let plain = self.render_body(name, lang, view)?;
        let skeleton = self.skeleton(name, lang, view)?;
        let start = out.len();
        let skeleton = match skeleton.fill(&view.per_request(), out) && out[start..] == plain {
            true => skeleton,
            false => {
                out.truncate(start);
                out.push_str(&plain);
                Skeleton::Plain
            }
        };
        if let Ok(mut map) = self.fragments.skeletons.write() {
            if map.len() < MAX_SKELETONS {
                map.insert(key, std::sync::Arc::new(skeleton));
            }
        }
        Ok(())
    }

    /// `view` rendered with stand-ins for its non-empty per-request strings, split.
    fn skeleton<T: Fragment>(
        &self,
        name: &str,
        lang: &str,
        view: &mut T,
    ) -> Result<Skeleton, handlebars::RenderError> {
        let mut taken = Vec::new();
        for (i, s) in view.per_request().into_iter().enumerate() {
            let stand_in = match s.is_empty() {
                true => String::new(),
                false => format!("{HOLE}{i}{HOLE_END_RAW}"),
            };
            taken.push(std::mem::replace(s, stand_in));
        }
        let count = taken.len();
        let rendered = self.render_body(name, lang, view);
        for (s, original) in view.per_request().into_iter().zip(taken) {
            *s = original;
        }
        Ok(Skeleton::parse(&rendered?, count).unwrap_or(Skeleton::Plain))
    }
}

pub(crate) fn mismatch(name: &str, plain: &str, fast: &str) -> handlebars::RenderError {
    let at = plain
        .bytes()
        .zip(fast.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let context = |s: &str| {
        s.get(at.saturating_sub(40)..(at + 80).min(s.len()))
            .unwrap_or("")
            .to_string()
    };
    RenderErrorReason::Other(format!(
        "the fast rendering of {name} differs from handlebars' at byte {at}: {:?} instead of {:?}",
        context(fast),
        context(plain)
    ))
    .into()
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

    #[test]
    fn escaping_matches_handlebars() {
        for s in ["", "plain", "a<b>&\"c\"='d'`e`", "é – ü <", "&&&", "x="] {
            let mut out = String::from("pre:");
            escape_into(s, &mut out);
            assert_eq!(out, format!("pre:{}", handlebars::html_escape(s)));
        }
    }

    #[test]
    fn skeletons_keep_where_each_string_goes_and_whether_it_is_escaped() {
        let rendered = format!("<p>{HOLE}1&#x3D;</p><div>{HOLE}0=</div>{HOLE}1&#x3D;");
        let skeleton = Skeleton::parse(&rendered, 2).unwrap();
        let (mut a, mut b) = ("<b>raw</b>".to_string(), "x < y".to_string());
        let mut out = String::new();
        assert!(skeleton.fill(&[&mut a, &mut b], &mut out));
        assert_eq!(out, "<p>x &lt; y</p><div><b>raw</b></div>x &lt; y");
        // A stand-in a template changed, or one out of range: no skeleton.
        assert!(Skeleton::parse(&format!("{HOLE}0!"), 1).is_none());
        assert!(Skeleton::parse(&format!("{HOLE}3="), 2).is_none());
    }
}
