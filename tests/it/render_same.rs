//! Section pages are rendered by a fast path: each field from a skeleton kept per question,
//! language and shape, filled in with the answer, error and marks of the request. In debug
//! builds (the tests') the server also renders every section page and every field through
//! plain handlebars and answers 500 when a single byte differs. This test opens every section
//! of every shipped and fixture survey in en, fr and es, in the states a page can be in: blank,
//! with answers of every kind, with field errors and the posted values kept, beside a
//! conflicting save, with answers carried from the previous round, and read-only (submitted or
//! closed). Pages with attached files are covered the same way by tests/it/files.rs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::helpers::{fixtures, Backend, Page, TestApp};
use crate::on_both_backends;

on_both_backends!(section_pages_render_the_same_bytes_as_plain_handlebars);

const LANGS: [&str; 3] = ["en", "fr", "es"];

/// `(survey id, answered per organisation, the round it follows)` of every survey file in
/// `dir`.
fn surveys_in(dir: &Path) -> Vec<(String, bool, Option<String>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("id = \""))
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_string();
        let per_unit = text.contains("respondent_unit = \"organisation\"");
        let previous = text
            .lines()
            .find_map(|l| l.strip_prefix("previous = \""))
            .and_then(|rest| rest.split('"').next())
            .map(String::from);
        out.push((id, per_unit, previous));
    }
    out.sort();
    out
}

/// Every `attr="..."` value of the page's elements named `tag`, as (name, element text).
fn controls(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for tag in ["<input ", "<textarea ", "<select "] {
        for (i, _) in body.match_indices(tag) {
            let end = body[i..].find('>').map(|e| i + e).unwrap_or(body.len());
            let element = &body[i..end];
            if let Some(name) = attr(element, "name") {
                out.push((name, element.to_string()));
            }
        }
    }
    out
}

fn attr(element: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = element.find(&marker)? + marker.len();
    let end = element[start..].find('"')? + start;
    Some(element[start..end].to_string())
}

/// A plausible answer to every control of a section form (`junk`: values that fail
/// validation wherever a field checks its value, with characters to escape).
fn answers(body: &str, junk: bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut radios = BTreeSet::new();
    let mut boxes: std::collections::BTreeMap<String, usize> = Default::default();
    for (name, element) in controls(body) {
        if name.starts_with('_') || name.ends_with(".confirm") || name.ends_with(".remove") {
            continue;
        }
        let kind = attr(&element, "type").unwrap_or_default();
        let value = attr(&element, "value").unwrap_or_default();
        let pick = match kind.as_str() {
            "hidden" | "file" => None,
            "radio" if name.ends_with(".escape") => None,
            // The first option of a radio group; the first two boxes of a checkbox group.
            "radio" => radios.insert(name.clone()).then_some(value),
            "checkbox" => {
                let n = boxes.entry(name.clone()).or_insert(0);
                *n += 1;
                (*n <= 2).then_some(value)
            }
            _ if element.starts_with("<select") => Some(if junk { "ZZZ" } else { "PHL" }.into()),
            _ if junk => Some("x < y & \"z\" = 'w'".into()),
            "date" => Some("2008-10-27".into()),
            "email" => Some("focal.point@example.org".into()),
            "url" => Some("https://example.org/plan?a=1&b=2".into()),
            _ if element.contains("inputmode=\"numeric\"") => Some("12".into()),
            _ if element.contains("inputmode=\"decimal\"") => Some("12.5".into()),
            _ if name.ends_with(".reason") => Some(String::new()),
            _ => Some("A <committee> & \"working groups\" meet".into()),
        };
        if let Some(v) = pick {
            out.push((name, v));
        }
    }
    out
}

/// The sections of a response, from its overview.
fn sections(overview: &Page, link: &str) -> Vec<String> {
    let marker = format!("href=\"{link}/s/");
    let mut out: Vec<String> = Vec::new();
    for (i, _) in overview.body.match_indices(&marker) {
        let start = i + marker.len();
        let end = overview.body[start..].find(['"', '?', '/']).unwrap() + start;
        let id = overview.body[start..end].to_string();
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Open every section of `link` in every language; each must render (200).
async fn open_all(app: &TestApp, link: &str, seen: &mut Seen) {
    let overview = app.get(link).await;
    assert_eq!(overview.status, 200, "{link}: {}", overview.body);
    for section in sections(&overview, link) {
        for lang in LANGS {
            let page = app.get(&format!("{link}/s/{section}?lang={lang}")).await;
            // Listed on the overview, hidden by a condition: no page.
            if page.status == 404 {
                continue;
            }
            assert_eq!(
                page.status, 200,
                "{link}/s/{section} in {lang}: {}",
                page.body
            );
            seen.note(&page);
        }
    }
    // Back to English for the forms that follow.
    app.get(&format!("{link}?lang=en")).await;
}

/// Which page states the test went through, so that it cannot pass by seeing none.
#[derive(Default, Debug)]
struct Seen {
    pages: usize,
    errors: usize,
    conflicts: usize,
    carried: usize,
    read_only: usize,
    escapes: usize,
}

impl Seen {
    fn note(&mut self, page: &Page) {
        self.pages += 1;
        self.errors += usize::from(page.body.contains("class=\"error-message\""));
        self.conflicts += usize::from(page.body.contains("class=\"conflict\""));
        self.carried += usize::from(page.body.contains("class=\"carried-mark\""));
        self.escapes += usize::from(page.body.contains("class=\"escape\""));
        self.read_only += usize::from(
            page.body.contains("<form") && !page.body.contains("<button type=\"submit\">"),
        );
    }
}

/// Answer every section of `link` (twice: conditions reveal more), showing each form with
/// errors and beside a conflicting save on the way; then submit.
async fn answer_all(app: &TestApp, link: &str, seen: &mut Seen) -> bool {
    for _ in 0..2 {
        let overview = app.get(link).await;
        for section in sections(&overview, link) {
            let action = format!("{link}/s/{section}");
            let form = app.get(&action).await;
            if form.status == 404 {
                continue;
            }
            assert_eq!(form.status, 200, "{action}: {}", form.body);
            let all = answers(&form.body, false);
            let pairs: Vec<(&str, &str)> =
                all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let saved = app.post_form_from(&form, &action, &pairs).await;
            // 409: refused, the response may not change (submitted, closed).
            assert!(
                [303, 409, 422].contains(&saved.status),
                "{action}: {}",
                saved.body
            );
            if saved.status != 303 {
                seen.note(&saved);
            }
            // Invalid values: shown again with their errors, as typed.
            let junk = answers(&app.get(&action).await.body, true);
            let pairs: Vec<(&str, &str)> =
                junk.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let refused = app.post_form_from(&form, &action, &pairs).await;
            // `form` is from before the save: a stale version, so a conflict where the
            // valid values differ from the stored ones.
            assert!(
                [303, 409, 422].contains(&refused.status),
                "{action}: {}",
                refused.body
            );
            seen.note(&refused);
        }
    }
    app.submit(link).await.status == 303
}

async fn section_pages_render_the_same_bytes_as_plain_handlebars(backend: Backend) {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("surveys");
    let mut seen = Seen::default();
    for dir in [
        shipped,
        fixtures().join("surveys"),
        fixtures().join("rounds"),
    ] {
        let app = TestApp::spawn_with(backend, dir.clone()).await;
        for (survey, per_unit, _) in surveys_in(&dir) {
            let link = match per_unit {
                true => app.issue_unit_token(&survey, "SWE", "Statistics Sweden"),
                false => app.issue_token(&survey, "SWE", "Anna <Berg>"),
            };
            // Blank, then answered (errors and conflicts on the way), then read-only once
            // submitted.
            open_all(&app, &link, &mut seen).await;
            let submitted = answer_all(&app, &link, &mut seen).await;
            open_all(&app, &link, &mut seen).await;
            if !submitted {
                continue;
            }
            // A round that follows this one starts from these answers: carried marks.
            for (next, _, previous) in surveys_in(&dir) {
                if previous.as_deref() == Some(survey.as_str()) {
                    let next_link = app.issue_token(&next, "SWE", "Anna");
                    open_all(&app, &next_link, &mut seen).await;
                    answer_all(&app, &next_link, &mut seen).await;
                    open_all(&app, &next_link, &mut seen).await;
                }
            }
        }
    }
    assert!(seen.pages > 100, "{seen:?}");
    for (what, n) in [
        ("errors", seen.errors),
        ("conflicts", seen.conflicts),
        ("read-only forms", seen.read_only),
        ("escapes", seen.escapes),
        ("carried marks", seen.carried),
    ] {
        assert!(n > 0, "no page with {what}: {seen:?}");
    }
}
