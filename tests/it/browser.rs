//! The respondent's flow in a real browser (Debian's headless Chromium over chromedriver),
//! with and without JavaScript, checked by axe-core at WCAG 2.2 A and AA on every page.
//! Screenshots of every page visited go to test-artifacts/screenshots/.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{free_port, Backend, TestApp};

struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Driver {
    let path = std::env::var("COHERENCE_TEST_CHROMEDRIVER").unwrap_or_else(|_| {
        panic!("COHERENCE_TEST_CHROMEDRIVER is not set: the browser tests need chromedriver and Chromium. `.ci/run` installs them.")
    });
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    Driver { child, port }
}

async fn browser(driver: &Driver, javascript: bool) -> Client {
    let profile = tempfile::tempdir().unwrap().keep();
    let mut args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--window-size=1100,1400".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    if !javascript {
        args.push("--blink-settings=scriptEnabled=false".into());
    }
    let chrome =
        std::env::var("COHERENCE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let caps = json!({"goog:chromeOptions": {"binary": chrome, "args": args}});
    let caps = caps.as_object().unwrap().clone();
    for _ in 0..50 {
        if let Ok(c) = ClientBuilder::native()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to chromedriver");
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn snap(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Run axe-core on the current page; fail on any WCAG 2.2 A or AA violation.
async fn axe(c: &Client, page: &str) {
    let source = std::env::var("COHERENCE_TEST_AXE")
        .expect("COHERENCE_TEST_AXE (path of axe.min.js) is set by .ci/run");
    let script = std::fs::read_to_string(source).expect("axe.min.js");
    c.execute(&script, vec![]).await.expect("inject axe-core");
    let result = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa']}})
               .then(r => done(JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.html)})))))
               .catch(e => done('error: ' + e));",
            vec![],
        )
        .await
        .expect("run axe-core");
    let text = result.as_str().unwrap_or("").to_string();
    assert_eq!(text, "[]", "axe-core violations on {page}: {text}");
}

async fn fill(c: &Client, name: &str, value: &str) {
    let field = c
        .find(Locator::Css(&format!("[name='{name}']")))
        .await
        .unwrap_or_else(|_| panic!("field {name}"));
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("{css}"))
        .click()
        .await
        .unwrap();
}

async fn body(c: &Client) -> String {
    c.source().await.unwrap()
}

/// The page source once it contains `text` (a click may return before the next page loads).
async fn wait_for(c: &Client, text: &str) -> String {
    for _ in 0..100 {
        let page = body(c).await;
        if page.contains(text) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("'{text}' never appeared in:\n{}", body(c).await);
}

/// The focal point's whole flow: French, two sections, an error corrected, reload, submit.
async fn respondent_flow(app: &TestApp, c: &Client, link: &str, prefix: &str, check: bool) {
    c.goto(&format!("{}{link}", app.address)).await.unwrap();
    snap(c, &format!("{prefix}-01-overview")).await;
    if check {
        axe(c, "overview").await;
    }
    c.find(Locator::LinkText("Français"))
        .await
        .expect("language link")
        .click()
        .await
        .unwrap();
    wait_for(c, "<html lang=\"fr\">").await;
    c.find(Locator::LinkText("Généralités"))
        .await
        .expect("section link")
        .click()
        .await
        .unwrap();
    snap(c, &format!("{prefix}-02-section-fr")).await;
    if check {
        axe(c, "section").await;
    }
    fill(c, "name", "Amina").await;
    fill(c, "staff", "douze").await;
    click(c, "#q-colour-red").await;
    click(c, "#q-tools-a").await;
    click(c, "#q-active-no").await;
    click(c, "button[type=submit]").await;
    wait_for(c, "Il y a un problème").await;
    wait_for(c, "Saisissez un nombre entier").await;
    snap(c, &format!("{prefix}-03-error")).await;
    if check {
        axe(c, "section with an error").await;
    }
    // The error summary links to the field.
    click(c, ".error-summary a").await;
    fill(c, "staff", "12").await;
    click(c, "button[type=submit]").await;
    wait_for(c, "Vos réponses ont été enregistrées.").await;
    c.goto(&format!("{}{link}/s/plans", app.address))
        .await
        .unwrap();
    click(c, "#q-has_plan-no").await;
    click(c, "button[type=submit]").await;
    wait_for(c, "Vos réponses ont été enregistrées.").await;
    // Reload the first section: the draft is there.
    c.goto(&format!("{}{link}/s/basics", app.address))
        .await
        .unwrap();
    let name = c
        .find(Locator::Css("[name='name']"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(name.as_deref(), Some("Amina"));
    c.goto(&format!("{}{link}/review", app.address))
        .await
        .unwrap();
    snap(c, &format!("{prefix}-04-review")).await;
    if check {
        axe(c, "review").await;
    }
    if check {
        // A link copied incompletely: the page a respondent meets then.
        c.goto(&format!("{}/r/{}", app.address, "0".repeat(48)))
            .await
            .unwrap();
        wait_for(c, "Page introuvable").await;
        axe(c, "page not found").await;
    }
    c.goto(&format!("{}{link}/print?answers=1", app.address))
        .await
        .unwrap();
    wait_for(c, "☒").await;
    snap(c, &format!("{prefix}-05-print")).await;
    if check {
        axe(c, "print view").await;
    }
    c.goto(&format!("{}{link}/review", app.address))
        .await
        .unwrap();
    click(c, "form[action$='/submit'] button").await;
    wait_for(c, "Envoyée le").await;
    snap(c, &format!("{prefix}-06-submitted")).await;
    if check {
        axe(c, "submitted overview").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_focal_point_answers_in_a_real_browser_with_and_without_javascript() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let driver = chromedriver();
    let with_js = browser(&driver, true).await;
    let link = app.issue_token("fixture", "SEN", "Amina");
    respondent_flow(&app, &with_js, &link, "js", true).await;
    // The results dashboard, as the survey owner sees it.
    app.add_user(
        "owner@fixture.example",
        "a long owner passphrase",
        "owner",
        &["fixture"],
    );
    with_js
        .goto(&format!("{}/admin/login", app.address))
        .await
        .unwrap();
    fill(&with_js, "email", "owner@fixture.example").await;
    fill(&with_js, "password", "a long owner passphrase").await;
    click(&with_js, "button[type=submit]").await;
    wait_for(&with_js, "owner@fixture.example").await;
    with_js
        .goto(&format!("{}/admin/surveys/fixture/results", app.address))
        .await
        .unwrap();
    assert!(body(&with_js).await.contains("<svg"));
    snap(&with_js, "js-07-results-dashboard").await;
    axe(&with_js, "results dashboard").await;
    // One question broken down by region: the stacked chart, its legend and cross-table.
    with_js
        .goto(&format!(
            "{}/admin/surveys/fixture/results/q/colour?by=region",
            app.address
        ))
        .await
        .unwrap();
    assert!(body(&with_js).await.contains("chart-stacked-title"));
    snap(&with_js, "js-08-results-breakdown").await;
    axe(&with_js, "question broken down by region").await;
    with_js.close().await.unwrap();

    let without_js = browser(&driver, false).await;
    let link = app.issue_token("fixture", "NPL", "Sita");
    respondent_flow(&app, &without_js, &link, "nojs", false).await;
    without_js.close().await.unwrap();
    app.stop().await;
}

/// The page fits the window's width: nothing to scroll sideways.
async fn fits_width(c: &Client, page: &str) {
    let widths = c
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .expect("measure the page");
    let (scroll, inner) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
    assert!(
        scroll <= inner,
        "{page} scrolls sideways: {scroll} px wide in a {inner} px window"
    );
}

/// A secretariat's pages for a whole round: 190 countries of demo data, in a 1280 x 800 window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secretariat_pages_hold_190_countries_at_1280_px() {
    let surveys = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("surveys");
    let app = TestApp::spawn_with(Backend::Sqlite, surveys).await;
    let out = app.cli(&["demo-data", "coherence-2008", "--countries", "190"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.add_user(
        "admin@gfmd.example.org",
        "a long admin passphrase",
        "admin",
        &[],
    );
    let driver = chromedriver();
    let c = browser(&driver, true).await;
    c.set_window_size(1280, 800).await.unwrap();
    c.goto(&format!("{}/admin/login", app.address))
        .await
        .unwrap();
    fill(&c, "email", "admin@gfmd.example.org").await;
    fill(&c, "password", "a long admin passphrase").await;
    click(&c, "button[type=submit]").await;
    wait_for(&c, "admin@gfmd.example.org").await;

    c.goto(&format!("{}/admin/surveys/coherence-2008", app.address))
        .await
        .unwrap();
    let table = body(&c).await;
    let rows = table.matches("<tr><th scope=\"row\">").count();
    assert_eq!(rows, 193, "one line per Member State");
    fits_width(&c, "the status table").await;
    snap(&c, "admin-01-status-table").await;
    axe(&c, "status table").await;
    // Every row is one line high: the table is 190 lines, not 190 blocks.
    let heights = c
        .execute(
            "const r = [...document.querySelectorAll('table.status tbody tr')].map(t => t.getBoundingClientRect().height); return [Math.min(...r), Math.max(...r)];",
            vec![],
        )
        .await
        .unwrap();
    let max = heights[1].as_f64().unwrap();
    assert!(max < 40.0, "rows up to {max} px high");

    // Filtered: submitted countries of Africa, through the form (no JavaScript needed).
    c.goto(&format!(
        "{}/admin/surveys/coherence-2008?region=002&stage=submitted",
        app.address
    ))
    .await
    .unwrap();
    let filtered = body(&c).await;
    assert!(filtered.contains(" shown."));
    fits_width(&c, "the filtered status table").await;
    snap(&c, "admin-02-status-filtered").await;

    // One country's whole file.
    let start = table
        .find("/admin/surveys/coherence-2008/countries/")
        .unwrap();
    let href = &table[start..start + table[start..].find('"').unwrap()];
    c.goto(&format!("{}{href}", app.address)).await.unwrap();
    let page = body(&c).await;
    assert!(page.contains("<h2 id=\"answers\">"));
    assert!(page.contains("<dl class=\"review\">"));
    fits_width(&c, "the country page").await;
    snap(&c, "admin-03-country-page").await;
    axe(&c, "country page").await;
    c.close().await.unwrap();
    app.stop().await;
}
