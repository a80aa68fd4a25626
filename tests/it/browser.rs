//! The respondent's flow in a real browser (Debian's headless Chromium over chromedriver),
//! with and without JavaScript, checked by axe-core at WCAG 2.2 A and AA, and every form
//! control's accessible name read from Chromium's accessibility tree, on every page; then the
//! results pages of a 190-country round at 1280 x 800, which must not scroll sideways.
//! Screenshots of every page visited go to test-artifacts/screenshots/.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value as Json};

use crate::helpers::{free_port, fresh_database, Backend, TestApp};

/// chromedriver on a free port, in a process group of its own with the browsers it starts, and
/// the browsers' profile directories. Dropping it ends the whole group (a test that fails before
/// closing its session would otherwise leave Chromium running) and removes the profiles.
pub(crate) struct Driver {
    child: Child,
    port: u16,
    profiles: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory is
            // touched. The group is chromedriver's own (process_group(0) below).
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn chromedriver() -> Driver {
    use std::os::unix::process::CommandExt;
    let path = std::env::var("COHERENCE_TEST_CHROMEDRIVER").unwrap_or_else(|_| {
        panic!("COHERENCE_TEST_CHROMEDRIVER is not set: the browser tests need chromedriver and Chromium. `.ci/run` installs them.")
    });
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start chromedriver");
    let profiles = tempfile::tempdir().expect("a directory for browser profiles");
    Driver {
        child,
        port,
        profiles,
    }
}

/// A headless Chromium with a fresh profile, with or without JavaScript.
pub(crate) async fn browser(driver: &Driver, javascript: bool) -> Client {
    let profile = tempfile::tempdir_in(driver.profiles.path()).unwrap().keep();
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
pub(crate) async fn axe(c: &Client, page: &str) {
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

/// A DevTools protocol method run in the session's page, through the endpoint chromedriver
/// adds to WebDriver (`POST /session/{id}/goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    method: &'static str,
    params: Json,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/goog/cdp/execute"))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": self.method, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}

async fn cdp(c: &Client, method: &'static str, params: Json) -> Json {
    c.issue_cmd(Cdp { method, params })
        .await
        .unwrap_or_else(|e| panic!("DevTools {method}: {e}"))
}

/// The roles of form controls, as Chromium's accessibility tree names them.
const CONTROL_ROLES: [&str; 9] = [
    "textbox",
    "combobox",
    "checkbox",
    "radio",
    "button",
    "searchbox",
    "spinbutton",
    "listbox",
    "slider",
];

/// Every form control on the page, as a screen reader gets it from Chromium's accessibility
/// tree, must have a non-empty name of its own; the offenders are listed. Returns how many
/// controls of each role the page has.
async fn accessible_names(c: &Client, page: &str) -> BTreeMap<String, usize> {
    let tree = cdp(c, "Accessibility.getFullAXTree", json!({})).await;
    let nodes = tree["nodes"].as_array().expect("the tree's nodes");
    assert!(!nodes.is_empty(), "an empty accessibility tree on {page}");
    let mut roles = BTreeMap::new();
    let mut offenders = Vec::new();
    for node in nodes {
        let role = node["role"]["value"].as_str().unwrap_or_default();
        if node["ignored"].as_bool() == Some(true) || !CONTROL_ROLES.contains(&role) {
            continue;
        }
        *roles.entry(role.to_string()).or_insert(0) += 1;
        let name = node["name"]["value"].as_str().unwrap_or_default();
        if name.trim().is_empty() {
            let element = match node["backendDOMNodeId"].as_i64() {
                Some(id) => {
                    let d = cdp(c, "DOM.describeNode", json!({"backendNodeId": id})).await;
                    format!("<{} {}>", d["node"]["localName"], d["node"]["attributes"])
                }
                None => "(no DOM node)".into(),
            };
            offenders.push(format!("{role} {element}"));
        }
    }
    assert!(
        offenders.is_empty(),
        "form controls without an accessible name on {page}:\n{}",
        offenders.join("\n")
    );
    roles
}

/// The page fits the window's width: it never scrolls sideways.
async fn fits_the_width(c: &Client, page: &str) {
    let widths = c
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .expect("page widths");
    let (scroll, inner) = (widths[0].as_i64(), widths[1].as_i64());
    assert!(
        matches!((scroll, inner), (Some(s), Some(i)) if s <= i),
        "{page} scrolls sideways: scrollWidth {scroll:?} > innerWidth {inner:?}"
    );
}

/// Every check on the page the browser shows: axe-core (when `axe_too`), accessible names,
/// and a screenshot named `name`.
async fn check_page(c: &Client, page: &str, name: &str, axe_too: bool) -> BTreeMap<String, usize> {
    snap(c, name).await;
    if axe_too {
        axe(c, page).await;
    }
    accessible_names(c, page).await
}

pub(crate) async fn fill(c: &Client, name: &str, value: &str) {
    let field = c
        .find(Locator::Css(&format!("[name='{name}']")))
        .await
        .unwrap_or_else(|_| panic!("field {name}"));
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

pub(crate) async fn click(c: &Client, css: &str) {
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
pub(crate) async fn wait_for(c: &Client, text: &str) -> String {
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
/// `check`: run axe-core too (accessible names are checked on every page either way).
async fn respondent_flow(app: &TestApp, c: &Client, link: &str, prefix: &str, check: bool) {
    c.goto(&format!("{}{link}", app.address)).await.unwrap();
    check_page(c, "overview", &format!("{prefix}-01-overview"), check).await;
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
    let roles = check_page(c, "section", &format!("{prefix}-02-section-fr"), check).await;
    // The tree was read: the section's text boxes, choices, country list and button are in it.
    for role in ["textbox", "radio", "checkbox", "combobox", "button"] {
        assert!(roles.contains_key(role), "no {role} in {roles:?}");
    }
    fill(c, "name", "Amina").await;
    fill(c, "staff", "douze").await;
    click(c, "#q-colour-red").await;
    click(c, "#q-tools-a").await;
    click(c, "#q-active-no").await;
    click(c, "button[type=submit]").await;
    wait_for(c, "Il y a un problème").await;
    wait_for(c, "Saisissez un nombre entier").await;
    check_page(
        c,
        "section with an error",
        &format!("{prefix}-03-error"),
        check,
    )
    .await;
    // The error summary links to the field.
    click(c, ".error-summary a").await;
    fill(c, "staff", "12").await;
    click(c, "button[type=submit]").await;
    wait_for(c, "Vos réponses ont été enregistrées.").await;
    c.goto(&format!("{}{link}/s/plans", app.address))
        .await
        .unwrap();
    accessible_names(c, "second section").await;
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
    check_page(c, "review", &format!("{prefix}-04-review"), check).await;
    if check {
        // A link copied incompletely: the page a respondent meets then.
        c.goto(&format!("{}/r/{}", app.address, "0".repeat(48)))
            .await
            .unwrap();
        wait_for(c, "Page introuvable").await;
        axe(c, "page not found").await;
        accessible_names(c, "page not found").await;
    }
    c.goto(&format!("{}{link}/print?answers=1", app.address))
        .await
        .unwrap();
    wait_for(c, "☒").await;
    check_page(c, "print view", &format!("{prefix}-05-print"), check).await;
    c.goto(&format!("{}{link}/review", app.address))
        .await
        .unwrap();
    click(c, "form[action$='/submit'] button").await;
    wait_for(c, "Empreinte SHA-256").await;
    check_page(c, "receipt", &format!("{prefix}-06-receipt"), check).await;
    c.goto(&format!("{}{link}", app.address)).await.unwrap();
    wait_for(c, "Envoyée le").await;
    check_page(
        c,
        "submitted overview",
        &format!("{prefix}-07-submitted"),
        check,
    )
    .await;
}

/// Sign in on the admin login page (checked on the way).
async fn sign_in(app: &TestApp, c: &Client, email: &str, password: &str, shot: &str) {
    c.goto(&format!("{}/admin/login", app.address))
        .await
        .unwrap();
    check_page(c, "sign-in page", shot, true).await;
    fill(c, "email", email).await;
    fill(c, "password", password).await;
    click(c, "button[type=submit]").await;
    wait_for(c, email).await;
}

/// An admin page at the browser's size: no sideways scrolling, axe-core, accessible names and
/// a screenshot. Returns the page's source.
async fn admin_page(app: &TestApp, c: &Client, path: &str, page: &str, shot: &str) -> String {
    c.goto(&format!("{}{path}", app.address)).await.unwrap();
    let source = body(c).await;
    assert!(!source.contains("Something went wrong"), "{page}: {source}");
    fits_the_width(c, page).await;
    check_page(c, page, shot, true).await;
    source
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
    sign_in(
        &app,
        &with_js,
        "owner@fixture.example",
        "a long owner passphrase",
        "js-07-sign-in",
    )
    .await;
    accessible_names(&with_js, "admin dashboard").await;
    let dashboard = admin_page(
        &app,
        &with_js,
        "/admin/surveys/fixture/results",
        "results dashboard",
        "js-07-results-dashboard",
    )
    .await;
    assert!(dashboard.contains("<svg"));
    // One question broken down by region: the stacked chart, its legend and cross-table.
    let question = admin_page(
        &app,
        &with_js,
        "/admin/surveys/fixture/results/q/colour?by=region",
        "question broken down by region",
        "js-08-results-breakdown",
    )
    .await;
    assert!(question.contains("chart-stacked-title"));
    with_js.close().await.unwrap();

    let without_js = browser(&driver, false).await;
    let link = app.issue_token("fixture", "NPL", "Sita");
    respondent_flow(&app, &without_js, &link, "nojs", false).await;
    without_js.close().await.unwrap();
    app.stop().await;
}

/// Size the window so that the page gets `width` x `height` CSS pixels, as on a screen of
/// that size (the window's own frame comes on top).
async fn viewport(c: &Client, width: u32, height: u32) {
    c.set_window_size(width, height).await.unwrap();
    let frame = c
        .execute(
            "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];",
            vec![],
        )
        .await
        .unwrap();
    let extra = |i: usize| {
        frame[i]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    };
    c.set_window_size(width + extra(0), height + extra(1))
        .await
        .unwrap();
    let inner = c
        .execute("return [window.innerWidth, window.innerHeight];", vec![])
        .await
        .unwrap();
    assert_eq!(inner, json!([width, height]), "the page's viewport");
}

/// The fills of a stacked chart's legend, in order.
fn legend_fills(page: &str) -> Vec<String> {
    page.split("class=\"legend-key\"")
        .skip(1)
        .filter_map(|rest| {
            let start = rest.find("fill=\"")? + 6;
            let len = rest[start..].find('"')?;
            Some(rest[start..start + len].to_string())
        })
        .collect()
}

/// A secretariat reads the results of a full round (190 countries of demo data) in a
/// 1280 x 800 window: no page scrolls sideways, wide tables scroll in their own box, a stacked
/// chart gives every option its own colour and calls the "other" option "Other".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secretariat_reads_a_full_round_at_1280_by_800() {
    let surveys = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("surveys");
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = fresh_database(Backend::Sqlite, dir.path());
    let app = TestApp::start(url, surveys, dir).await;
    let out = app.cli(&["demo-data", "coherence-2008", "--countries", "190"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.add_user(
        "secretariat@example.org",
        "a long secretariat passphrase",
        "owner",
        &["coherence-2008"],
    );
    let driver = chromedriver();
    let c = browser(&driver, true).await;
    viewport(&c, 1280, 800).await;
    sign_in(
        &app,
        &c,
        "secretariat@example.org",
        "a long secretariat passphrase",
        "round-01-sign-in",
    )
    .await;
    // The status table: one line per Member State asked, counts that filter, all in the width.
    let table = admin_page(
        &app,
        &c,
        "/admin/surveys/coherence-2008",
        "status table",
        "round-02-status-table",
    )
    .await;
    let rows = table.matches("<tr><th scope=\"row\">").count();
    assert_eq!(rows, 193, "one line per Member State");
    let heights = c
        .execute(
            "const r = [...document.querySelectorAll('table.status tbody tr')].map(t => t.getBoundingClientRect().height); return Math.max(...r);",
            vec![],
        )
        .await
        .unwrap();
    let tallest = heights.as_f64().unwrap();
    assert!(
        tallest < 40.0,
        "a row {tallest} px high: one line per country"
    );
    let filtered = admin_page(
        &app,
        &c,
        "/admin/surveys/coherence-2008?region=002&stage=submitted",
        "status table filtered",
        "round-02-status-table-filtered",
    )
    .await;
    assert!(filtered.contains(" shown."));
    // One country's whole file.
    let start = table
        .find("/admin/surveys/coherence-2008/countries/")
        .unwrap();
    let href = &table[start..start + table[start..].find('"').unwrap()];
    let file = admin_page(&app, &c, href, "country page", "round-02-country-page").await;
    assert!(file.contains("<h2 id=\"answers\">"));
    assert!(file.contains("<dl class=\"review\">"));
    let base = "/admin/surveys/coherence-2008/results";
    admin_page(
        &app,
        &c,
        base,
        "results dashboard",
        "round-02-results-dashboard",
    )
    .await;
    // The lead ministry broken down by region: nine options, "Other" among them.
    let page = admin_page(
        &app,
        &c,
        &format!("{base}/q/lead_ministry?by=region"),
        "lead ministry by region",
        "round-03-results-question-stacked",
    )
    .await;
    let fills = legend_fills(&page);
    assert_eq!(fills.len(), 9, "{page}");
    let distinct: std::collections::BTreeSet<&String> = fills.iter().collect();
    assert_eq!(
        distinct.len(),
        fills.len(),
        "a colour used twice: {fills:?}"
    );
    assert!(page.contains(">Other</tspan>"), "{page}");
    assert!(!page.contains("Please specify"));
    // The cross-table is wider than the page: it scrolls in its own box, its first column
    // staying in view.
    let scroll = c
        .execute(
            "const box = document.querySelector('section .table-scroll');
             box.scrollIntoView();
             const cell = box.querySelector('tbody th');
             const before = cell.getBoundingClientRect().left;
             box.scrollLeft = box.scrollWidth;
             return [box.scrollWidth > box.clientWidth, box.scrollLeft > 0,
                     Math.abs(cell.getBoundingClientRect().left - before) < 1];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(scroll, json!([true, true, true]), "the cross-table's box");
    snap(&c, "round-04-results-question-scrolled-table").await;
    let fr = admin_page(
        &app,
        &c,
        &format!("{base}/q/lead_ministry?by=income&lang=fr"),
        "lead ministry by income, in French",
        "round-05-results-question-fr",
    )
    .await;
    assert!(fr.contains(">Autre</tspan>"), "{fr}");
    admin_page(
        &app,
        &c,
        &format!("{base}/q/mechanisms_present?by=development&lang=en"),
        "mechanisms by development",
        "round-06-results-mechanisms",
    )
    .await;
    admin_page(
        &app,
        &c,
        &format!("{base}/needs"),
        "needs",
        "round-07-needs",
    )
    .await;
    admin_page(
        &app,
        &c,
        &format!("{base}/compendium"),
        "compendium",
        "round-08-compendium",
    )
    .await;
    c.close().await.unwrap();
    app.stop().await;
}

/// Let pages run scripts, or not (DevTools' `Emulation.setScriptExecutionDisabled`, which
/// holds across navigations). Scripts are let on only while axe-core runs.
async fn page_scripts(c: &Client, on: bool) {
    cdp(
        c,
        "Emulation.setScriptExecutionDisabled",
        json!({"value": !on}),
    )
    .await;
}

/// A browser whose pages run no JavaScript, as the country side is tested; proven on a page
/// whose script would rename it.
pub(crate) async fn browser_without_javascript(driver: &Driver) -> Client {
    let c = browser(driver, true).await;
    page_scripts(&c, false).await;
    c.goto("data:text/html,<title>off</title><script>document.title='on'</script>")
        .await
        .unwrap();
    assert_eq!(c.title().await.unwrap(), "off", "JavaScript is off");
    c
}

/// `check_page` on a page loaded without JavaScript: axe-core runs with scripts let on for
/// it, then off again for the pages that follow.
pub(crate) async fn check_page_without_js(c: &Client, page: &str, name: &str) {
    snap(c, name).await;
    page_scripts(c, true).await;
    axe(c, page).await;
    page_scripts(c, false).await;
    accessible_names(c, page).await;
}

/// Open `path` of the app in the browser.
pub(crate) async fn go(app: &TestApp, c: &Client, path: &str) {
    c.goto(&format!("{}{path}", app.address)).await.unwrap();
}

/// Send the response for sign-off from the coordinator's review page.
async fn send_for_sign_off(app: &TestApp, c: &Client, link: &str) {
    go(app, c, &format!("{link}/review")).await;
    click(c, "form[action$='/send-for-sign-off'] button").await;
    wait_for(c, "Awaiting national sign-off").await;
}

/// The approver signs off from the review page: the receipt of `version`.
async fn sign_off(app: &TestApp, c: &Client, link: &str, version: u32) -> String {
    go(app, c, &format!("{link}/review")).await;
    fill(c, "name", "Kofi Mensah").await;
    fill(c, "title", "Chief of Staff").await;
    click(c, "form.sign-off button").await;
    wait_for(c, &format!("Ghana submitted version {version}")).await
}

/// The country's side of the report cycle without JavaScript, on a survey with national
/// sign-off and email off: the coordinator hands a section to a colleague (the link shown
/// once), the colleague saves it and marks it ready, the coordinator sends for sign-off, the
/// approver refuses an empty name, sends back, then signs off; the owner (another browser, with
/// JavaScript) raises a query and returns the response; the coordinator reads and answers it,
/// changes the answer and resubmits through sign-off (version 2); the owner reads the change.
/// axe-core, accessible names and a screenshot on every page of the cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_cycle_in_a_real_browser_without_javascript() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = fresh_database(Backend::Sqlite, dir.path());
    let app = TestApp::start(url, crate::cycle::cycle_surveys(), dir).await;
    let country = ["--survey", "national", "--country", "GHA"];
    let coordinator = app.issue_token_with(&[&country[..], &["--name", "Ama"]].concat());
    let approver =
        app.issue_token_with(&[&country[..], &["--name", "Kofi", "--role", "approver"]].concat());
    let owner = ("owner@secretariat.example.org", "a long owner passphrase");
    app.add_user(owner.0, owner.1, "owner", &["national"]);
    let driver = chromedriver();
    let c = browser_without_javascript(&driver).await;

    // 1. The coordinator's overview, with who answers each section.
    go(&app, &c, &coordinator).await;
    let page = wait_for(&c, "Who answers each section").await;
    assert!(page.contains("The coordinator"), "{page}");
    check_page_without_js(&c, "coordinator's overview", "cycle-01-overview").await;
    click(&c, &format!("a[href='{coordinator}/colleagues']")).await;
    wait_for(&c, "Hand sections to a colleague").await;
    check_page_without_js(&c, "colleagues page", "cycle-02-colleagues").await;
    fill(&c, "name", "Yaw Boateng").await;
    fill(&c, "email", "yaw@labour.example.gh").await;
    click(&c, "#c-section-labour").await;
    click(&c, "form[action$='/colleagues'] button").await;
    wait_for(&c, "it is shown only once").await;
    check_page_without_js(&c, "colleagues page, link shown", "cycle-03-link-once").await;
    let shown = c
        .find(Locator::Css("#new-link"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .expect("the link");
    let contributor = shown[shown.find("/r/").expect("a link")..].to_string();
    go(&app, &c, &coordinator).await;
    let page = wait_for(&c, "Yaw Boateng").await;
    assert!(page.contains("yaw@labour.example.gh"), "{page}");
    check_page_without_js(
        &c,
        "overview with a colleague",
        "cycle-04-overview-assigned",
    )
    .await;

    // The colleague's overview and section: only Labour migration; saved and marked ready.
    go(&app, &c, &contributor).await;
    let page = wait_for(&c, "Who answers each section").await;
    assert!(!page.contains("/s/policy\""), "{page}");
    check_page_without_js(
        &c,
        "contributor's overview",
        "cycle-05-contributor-overview",
    )
    .await;
    go(&app, &c, &format!("{contributor}/s/labour")).await;
    wait_for(&c, "Workers abroad").await;
    check_page_without_js(&c, "contributor's section", "cycle-06-contributor-section").await;
    fill(&c, "workers_abroad", "250").await;
    click(&c, "form[action$='/s/labour'] button[type=submit]").await;
    wait_for(&c, "Your answers were saved.").await;
    go(&app, &c, &contributor).await;
    wait_for(&c, "Mark ready").await;
    click(&c, "form[action$='/s/labour/ready'] button").await;
    let page = wait_for(&c, "tag-ready").await;
    assert!(!page.contains("/s/labour/ready"), "{page}");
    check_page_without_js(
        &c,
        "contributor's overview, ready",
        "cycle-07-contributor-ready",
    )
    .await;

    // The coordinator completes the rest and sends for sign-off.
    go(&app, &c, &format!("{coordinator}/s/policy")).await;
    click(&c, "#q-has_strategy-yes").await;
    fill(&c, "strategy_year", "2018").await;
    click(&c, "form[action$='/s/policy'] button[type=submit]").await;
    wait_for(&c, "Your answers were saved.").await;
    go(&app, &c, &format!("{coordinator}/s/remittances")).await;
    click(&c, "#q-remit_programme-no").await;
    click(&c, "form[action$='/s/remittances'] button[type=submit]").await;
    wait_for(&c, "Your answers were saved.").await;

    // 2. The coordinator's review with "Send for sign-off", then the awaiting notice.
    go(&app, &c, &format!("{coordinator}/review")).await;
    wait_for(&c, "Send for sign-off").await;
    check_page_without_js(&c, "coordinator's review", "cycle-08-review-send").await;
    send_for_sign_off(&app, &c, &coordinator).await;
    wait_for(&c, "It cannot be changed until the approver").await;
    check_page_without_js(&c, "review awaiting sign-off", "cycle-09-awaiting").await;

    // The approver's review: both forms; an empty name is refused next to the field.
    go(&app, &c, &format!("{approver}/review")).await;
    let page = wait_for(&c, "Send back for changes").await;
    assert!(page.contains("<dd>250</dd>"), "{page}");
    check_page_without_js(&c, "approver's review", "cycle-10-approver-review").await;
    fill(&c, "title", "Chief of Staff").await;
    click(&c, "form.sign-off button").await;
    wait_for(&c, "id=\"sign-off-name-error\"").await;
    // The page comes back scrolled to the form, where the error is.
    let at = c.current_url().await.unwrap();
    assert_eq!(at.fragment(), Some("sign-off"), "{at}");
    check_page_without_js(&c, "sign-off with an error", "cycle-11-sign-off-error").await;
    fill(&c, "message", "Please check the number of workers.").await;
    click(&c, "form.send-back button").await;
    wait_for(&c, "Draft").await;

    // The coordinator sees the message and sends again; the approver signs off: version 1.
    go(&app, &c, &format!("{coordinator}/review")).await;
    wait_for(&c, "Please check the number of workers.").await;
    check_page_without_js(&c, "review sent back", "cycle-12-sent-back").await;
    send_for_sign_off(&app, &c, &coordinator).await;
    let receipt = sign_off(&app, &c, &approver, 1).await;
    assert!(receipt.contains("Kofi Mensah, Chief of Staff"), "{receipt}");
    check_page_without_js(&c, "receipt", "cycle-13-receipt").await;

    // 3. The owner, in another browser with JavaScript, raises a query and returns it.
    let admin = browser(&driver, true).await;
    sign_in(&app, &admin, owner.0, owner.1, "cycle-14-sign-in").await;
    let file = "/admin/surveys/national/countries/GHA";
    go(&app, &admin, file).await;
    wait_for(&admin, "Begin the review").await;
    admin
        .find(Locator::Css("#raise-question"))
        .await
        .unwrap()
        .select_by_value("strategy_year")
        .await
        .unwrap();
    fill(&admin, "body", "Your 2019 reply gave 2017.").await;
    click(&admin, "form[action$='/queries'] button").await;
    wait_for(&admin, "Your 2019 reply gave 2017.").await;
    click(&admin, "form[action$='/return'] button").await;
    wait_for(&admin, "Returned to the country").await;
    let page = admin_page(
        &app,
        &admin,
        file,
        "country page, returned",
        "cycle-15-country-page",
    )
    .await;
    // Its queries, versions and record of events, each in view.
    for part in ["queries", "versions", "audit"] {
        assert!(page.contains(&format!("id=\"{part}\"")), "{part}: {page}");
        go(&app, &admin, &format!("{file}#{part}")).await;
        snap(&admin, &format!("cycle-15-country-page-{part}")).await;
    }

    // The coordinator reads the query on the overview, beside its question, and replies.
    go(&app, &c, &coordinator).await;
    let page = wait_for(&c, "Questions from the secretariat").await;
    check_page_without_js(&c, "overview with a query", "cycle-16-overview-query").await;
    go(&app, &c, &format!("{coordinator}/s/policy")).await;
    wait_for(&c, "Your 2019 reply gave 2017.").await;
    check_page_without_js(&c, "section with a query", "cycle-17-section-query").await;
    let start = page
        .find(&format!("href=\"{coordinator}/queries/"))
        .expect("a query link")
        + 6;
    let query = &page[start..start + page[start..].find('"').unwrap()];
    go(&app, &c, query).await;
    wait_for(&c, "Your reply").await;
    check_page_without_js(&c, "query page", "cycle-18-query").await;
    fill(&c, "body", "It was adopted in 2017; corrected.").await;
    click(&c, "form[action*='/queries/'] button").await;
    wait_for(&c, "Your reply was sent.").await;
    check_page_without_js(&c, "query page, replied", "cycle-19-query-replied").await;

    // The answer changed and resubmitted through sign-off: version 2.
    go(&app, &c, &format!("{coordinator}/s/policy")).await;
    fill(&c, "strategy_year", "2017").await;
    click(&c, "form[action$='/s/policy'] button[type=submit]").await;
    wait_for(&c, "Your answers were saved.").await;
    send_for_sign_off(&app, &c, &coordinator).await;
    sign_off(&app, &c, &approver, 2).await;
    check_page_without_js(&c, "receipt of version 2", "cycle-20-receipt-v2").await;
    c.close().await.unwrap();

    // The owner reads the difference: exactly that answer.
    let diff = admin_page(
        &app,
        &admin,
        &format!("{file}?from=1&to=2#diff"),
        "difference v1 -> v2",
        "cycle-21-diff",
    )
    .await;
    assert!(
        diff.contains("Changes from version 1 to version 2"),
        "{diff}"
    );
    assert_eq!(diff.matches("<td class=\"old\">").count(), 1, "{diff}");
    assert!(
        diff.contains("<td class=\"old\">2018</td><td class=\"new\">2017</td>"),
        "{diff}"
    );
    admin.close().await.unwrap();
    app.stop().await;
}
