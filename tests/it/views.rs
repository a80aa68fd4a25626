//! Every page rendered from its typed view, in strict handlebars (a key a template names but
//! the view lacks is an error, so a 500 here), for both shipped surveys in en, fr and es.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(every_page_renders_for_the_shipped_surveys_in_every_language);

const LANGS: [&str; 3] = ["en", "fr", "es"];

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("surveys")
}

/// The distinct `href`s of a page that start with `prefix`.
fn links(body: &str, prefix: &str) -> BTreeSet<String> {
    let marker = format!("href=\"{prefix}");
    body.match_indices(&marker)
        .map(|(i, _)| {
            let start = i + "href=\"".len();
            let end = start + body[start..].find('"').unwrap_or(0);
            body[start..end]
                .replace("&amp;", "&")
                .replace("&#x3D;", "=")
        })
        .collect()
}

async fn every_page_renders_for_the_shipped_surveys_in_every_language(backend: Backend) {
    let app = TestApp::spawn_with(backend, shipped()).await;
    app.add_user(
        "admin@gfmd.example.org",
        "a long admin passphrase",
        "admin",
        &[],
    );
    let mut pages = 0;
    for survey in ["coherence-2008", "focal-points"] {
        let out = app.cli(&["demo-data", survey, "--countries", "12"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let link = app.issue_token(survey, "SWE", "Anna <Berg>");
        let overview = app.get(&link).await;
        assert_eq!(overview.status, 200, "{}", overview.body);
        let mut respondent: BTreeSet<String> = links(&overview.body, &format!("{link}/s/"));
        respondent.insert(link.clone());
        respondent.insert(format!("{link}/review"));
        respondent.insert(format!("{link}/print"));
        respondent.insert(format!("{link}/print?answers=1"));
        assert!(respondent.len() > 4, "sections listed: {}", overview.body);
        app.login("admin@gfmd.example.org", "a long admin passphrase")
            .await;
        let base = format!("/admin/surveys/{survey}");
        let status = app.get(&base).await;
        let countries = links(&status.body, &format!("{base}/countries/"));
        assert!(countries.len() >= 12, "{}", status.body);
        let results = app.get(&format!("{base}/results")).await;
        let questions = links(&results.body, &format!("{base}/results/q/"));
        assert!(!questions.is_empty(), "{}", results.body);
        let mut admin: BTreeSet<String> = ["/", "/admin", "/admin/login", "/no-such-page"]
            .into_iter()
            .map(String::from)
            .collect();
        admin.insert(base.clone());
        admin.insert(format!("{base}?stage=submitted&region=150&sort=-progress"));
        admin.extend(countries.into_iter().take(3));
        admin.insert(format!("{base}/countries/SWE"));
        admin.insert(format!("{base}/results"));
        admin.insert(format!("{base}/results/compendium"));
        admin.insert(format!("{base}/results/needs"));
        for q in questions {
            admin.insert(format!("{q}?by=region"));
            admin.insert(q);
        }
        for lang in LANGS {
            for path in respondent.iter().chain(admin.iter()) {
                let sep = if path.contains('?') { '&' } else { '?' };
                let page = app.get(&format!("{path}{sep}lang={lang}")).await;
                // A section hidden by a condition on the answers is not found, like any page.
                let hidden_section = path.contains("/s/") && page.status == 404;
                let expected = if path == "/no-such-page" || hidden_section {
                    404
                } else {
                    200
                };
                assert_eq!(page.status, expected, "{path} in {lang}: {}", page.body);
                assert!(
                    page.body.contains(&format!("<html lang=\"{lang}\">")),
                    "{path} in {lang}"
                );
                pages += 1;
            }
        }
        // Signed out again, so the next survey's respondent pages are seen as a focal point's.
        let dashboard = app.get("/admin").await;
        app.post("/admin/logout", &[("_csrf", &dashboard.hidden("_csrf"))])
            .await;
    }
    assert!(pages > 100, "{pages} pages rendered");
    app.stop().await;
}
