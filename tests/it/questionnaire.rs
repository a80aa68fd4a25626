//! The questionnaire as a spreadsheet, out and back: the workbook downloaded from the overview
//! (read back with calamine), filled by another program (openpyxl, and re-saved by LibreOffice
//! headless), uploaded back as one save; bad cells, conflicts with answers changed online and
//! foreign files refused with nothing saved. Every test runs on SQLite and PostgreSQL.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use calamine::{Data, Reader, Xlsx};

use crate::helpers::{fixtures, Backend, Page, TestApp};
use crate::on_both_backends;

on_both_backends!(
    the_questionnaire_goes_out_and_comes_back,
    bad_cells_are_all_listed_and_nothing_is_saved,
    answers_changed_online_since_the_export_are_conflicts,
    foreign_files_are_refused_and_change_nothing,
    the_command_line_exports_and_imports,
    the_shipped_surveys_go_out_and_back_unchanged,
    not_known_and_not_applicable_go_out_and_come_back,
);

const BASICS: &str = "1. Basics";
const PLANS: &str = "2. Plans";

async fn download(app: &TestApp, link: &str, lang: &str) -> Vec<u8> {
    let res = app
        .client
        .get(format!(
            "{}{link}/questionnaire.xlsx?lang={lang}",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let headers = res.headers().clone();
    assert_eq!(
        headers["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    res.bytes().await.unwrap().to_vec()
}

async fn upload(app: &TestApp, link: &str, bytes: Vec<u8>, lang: &str) -> Page {
    let overview = app.get(link).await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(
        overview.body.contains("/questionnaire.xlsx\""),
        "{}",
        overview.body
    );
    let form = reqwest::multipart::Form::new()
        .text("_csrf", overview.hidden("_csrf"))
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes)
                .file_name("questionnaire.xlsx")
                .mime_str("application/octet-stream")
                .unwrap(),
        );
    let res = app
        .client
        .post(format!("{}{link}/questionnaire?lang={lang}", app.address))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    Page {
        status,
        location: None,
        body: res.text().await.unwrap(),
        headers: Default::default(),
    }
}

fn book(bytes: &[u8]) -> Xlsx<Cursor<Vec<u8>>> {
    Xlsx::new(Cursor::new(bytes.to_vec())).expect("a workbook")
}

fn text(d: Option<&Data>) -> String {
    match d {
        Some(Data::String(s)) => s.clone(),
        Some(Data::Float(f)) => f.to_string(),
        Some(Data::Int(i)) => i.to_string(),
        Some(Data::DateTime(d)) => format!("date:{}", d.as_f64()),
        _ => String::new(),
    }
}

/// The A1 name of a question row's cell in `col` ("D"), found by the hidden id columns.
fn cell(bytes: &[u8], sheet: &str, question: &str, key: &str, col: &str) -> String {
    let range = book(bytes).worksheet_range(sheet).expect("the sheet");
    let (end, _) = range.end().unwrap();
    for r in 0..=end {
        if text(range.get_value((r, 0))) == question && text(range.get_value((r, 1))) == key {
            return format!("{col}{}", r + 1);
        }
    }
    panic!("no row {question}/{key} in {sheet}");
}

fn value(bytes: &[u8], sheet: &str, question: &str, key: &str) -> String {
    let range = book(bytes).worksheet_range(sheet).expect("the sheet");
    let (end, _) = range.end().unwrap();
    (0..=end)
        .find(|r| {
            text(range.get_value((*r, 0))) == question && text(range.get_value((*r, 1))) == key
        })
        .map(|r| text(range.get_value((r, 3))))
        .unwrap_or_else(|| panic!("no row {question}/{key}"))
}

/// One edit a person makes: a sheet, a cell, and a text, a number or a date.
enum V<'a> {
    S(&'a str),
    N(f64),
    D(&'a str),
}

/// Fill the workbook as another program would: openpyxl from the test venv.
fn fill(bytes: &[u8], edits: &[(&str, String, V)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.xlsx");
    std::fs::write(&path, bytes).unwrap();
    let list: Vec<serde_json::Value> = edits
        .iter()
        .map(|(sheet, cell, v)| match v {
            V::S(s) => serde_json::json!([sheet, cell, "s", s]),
            V::N(n) => serde_json::json!([sheet, cell, "n", n]),
            V::D(d) => serde_json::json!([sheet, cell, "d", d]),
        })
        .collect();
    let script = r#"
import sys, json, datetime, openpyxl
path, edits = sys.argv[1], json.loads(sys.argv[2])
wb = openpyxl.load_workbook(path)
for sheet, cell, kind, value in edits:
    if kind == "d":
        value = datetime.datetime.strptime(value, "%Y-%m-%d")
    wb[sheet][cell].value = value
    if kind == "d":
        wb[sheet][cell].number_format = "yyyy-mm-dd"
wb.save(path)
"#;
    let python = std::env::var("COHERENCE_TEST_PYTHON")
        .expect("COHERENCE_TEST_PYTHON: the test venv with openpyxl (`.ci/run` makes it)");
    let out = Command::new(python)
        .args(["-c", script, path.to_str().unwrap()])
        .arg(serde_json::Value::Array(list).to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openpyxl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&path).unwrap()
}

/// Re-save the workbook through LibreOffice headless, as an office suite would.
///
/// LibreOffice itself sometimes aborts while it starts with a new profile ("Unspecified
/// Application Error", signal 6, seen once in CI right after the package was installed, with
/// the machine busy): such a run writes nothing, and is tried again with a fresh profile, up to
/// three times. A run that writes a file is never retried: what it wrote is what is tested.
fn libreoffice_resave(bytes: &[u8]) -> Vec<u8> {
    let soffice = std::env::var("COHERENCE_TEST_SOFFICE").unwrap_or_else(|_| "soffice".into());
    let mut failures = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("filled.xlsx");
        std::fs::write(&input, bytes).unwrap();
        let out_dir = dir.path().join("out");
        let profile = format!("file://{}", dir.path().join("profile").display());
        let out = Command::new(&soffice)
            .arg(format!("-env:UserInstallation={profile}"))
            .args([
                "--headless",
                "--norestore",
                "--convert-to",
                "xlsx",
                "--outdir",
            ])
            .arg(&out_dir)
            .arg(&input)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "LibreOffice ({soffice}) is needed: apt-get install libreoffice-calc-nogui: {e}"
                )
            });
        let saved = out_dir.join("filled.xlsx");
        if saved.exists() {
            return std::fs::read(saved).unwrap();
        }
        failures.push(format!(
            "{}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    panic!(
        "soffice wrote nothing, three times:\n{}",
        failures.join("\n---\n")
    )
}

fn zip_entry(bytes: &[u8], name: &str) -> String {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut s = String::new();
    zip.by_name(name).unwrap().read_to_string(&mut s).unwrap();
    s
}

fn saved_count(app: &TestApp) -> usize {
    saved_count_of(app, "fixture")
}

fn saved_count_of(app: &TestApp, survey: &str) -> usize {
    let out = app.cli(&["audit", "export", survey], None);
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"kind\":\"saved\""))
        .count()
}

async fn the_questionnaire_goes_out_and_comes_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna Berg");
    let saved = app
        .save_section(
            &link,
            "basics",
            &[
                ("name", "Anna"),
                ("colour", "red"),
                ("tools", "a"),
                ("staff", "7"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);

    // Out: the sheets, the current answers by their labels, the validation and protection.
    let xlsx = download(&app, &link, "en").await;
    let names = book(&xlsx).sheet_names();
    assert_eq!(
        names,
        [
            "Instructions",
            BASICS,
            PLANS,
            "3. Extra",
            "lists",
            "coherence"
        ]
    );
    assert_eq!(value(&xlsx, BASICS, "name", ""), "Anna");
    assert_eq!(value(&xlsx, BASICS, "colour", ""), "Red");
    assert_eq!(value(&xlsx, BASICS, "tools", "a"), "Yes");
    assert_eq!(value(&xlsx, BASICS, "tools", "b"), "No");
    assert_eq!(value(&xlsx, BASICS, "staff", ""), "7");
    let basics = zip_entry(&xlsx, "xl/worksheets/sheet2.xml");
    assert!(basics.contains("<sheetProtection"), "protected");
    assert!(basics.contains("type=\"list\""), "drop-downs");
    assert!(basics.contains("type=\"whole\""), "number validation");
    assert!(basics.contains("type=\"date\""), "date validation");
    assert!(basics.contains("lists!$"), "lists on the hidden sheet");
    let workbook = zip_entry(&xlsx, "xl/workbook.xml");
    assert!(
        workbook.contains("<workbookProtection lockStructure=\"1\"/><bookViews"),
        "{workbook}"
    );
    assert!(
        workbook.contains("name=\"coherence\" sheetId=\"6\" state=\"hidden\""),
        "{workbook}"
    );
    let instructions = book(&xlsx).worksheet_range("Instructions").unwrap();
    assert!(text(instructions.get_value((2, 0))).contains("Sweden"));

    // Filled by another program, every kind of cell.
    let at = |q: &str, k: &str| cell(&xlsx, BASICS, q, k, "D");
    let filled = fill(
        &xlsx,
        &[
            (BASICS, at("name", ""), V::S("Bo")),
            (BASICS, at("notes", ""), V::S("Long enough notes")),
            (BASICS, at("colour", ""), V::S("Blue")),
            (BASICS, at("tools", "a"), V::S("No")),
            (BASICS, at("tools", "b"), V::S("Yes")),
            (BASICS, at("tools", "c"), V::S("Yes")),
            (BASICS, at("active", ""), V::S("Yes")),
            (BASICS, at("staff", ""), V::N(12.0)),
            (BASICS, at("share", ""), V::N(0.5)),
            (BASICS, at("since", ""), V::D("2020-05-17")),
            (BASICS, at("partner", ""), V::S("France")),
            (BASICS, at("contact", ""), V::S("bo@gov.se")),
            (BASICS, at("site", ""), V::S("https://gov.se/plan")),
            (BASICS, at("grid", "r1"), V::S("Good")),
            (BASICS, at("grid", "r2"), V::S("Bad")),
            (PLANS, cell(&xlsx, PLANS, "has_plan", "", "D"), V::S("Yes")),
            (
                PLANS,
                cell(&xlsx, PLANS, "plan_year", "", "D"),
                V::N(2024.0),
            ),
        ],
    );
    let before = saved_count(&app);
    let done = upload(&app, &link, filled.clone(), "en").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body
            .contains("The questionnaire was saved: 14 answers changed in 2 sections."),
        "{}",
        done.body
    );
    // One save per section, in the audit like any save, by the link.
    assert_eq!(saved_count(&app), before + 2);
    let page = app.get(&format!("{link}/s/basics")).await;
    assert_eq!(page.field_value("name").as_deref(), Some("Bo"));
    assert!(page.is_checked("colour", "blue"));
    assert!(page.is_checked("tools", "b") && page.is_checked("tools", "c"));
    assert!(!page.is_checked("tools", "a"));
    assert_eq!(page.field_value("staff").as_deref(), Some("12"));
    assert_eq!(page.field_value("share").as_deref(), Some("0.5"));
    assert_eq!(page.field_value("since").as_deref(), Some("2020-05-17"));
    assert!(page.body.contains("value=\"FRA\" selected"));
    let plans = app.get(&format!("{link}/s/plans")).await;
    assert_eq!(plans.field_value("plan_year").as_deref(), Some("2024"));

    // The same file again: nothing to change, and no conflict with its own save.
    let again = upload(&app, &link, filled, "en").await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body.contains("nothing changed"), "{}", again.body);
    assert_eq!(saved_count(&app), before + 2);

    // Through an office suite: LibreOffice re-saves what openpyxl filled.
    let xlsx = download(&app, &link, "en").await;
    assert_eq!(value(&xlsx, BASICS, "since", ""), "date:43968");
    let filled = fill(
        &xlsx,
        &[(BASICS, cell(&xlsx, BASICS, "name", "", "D"), V::S("Cy"))],
    );
    let resaved = libreoffice_resave(&filled);
    assert_ne!(resaved, filled);
    let done = upload(&app, &link, resaved, "en").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("1 answers changed in 1 sections"),
        "{}",
        done.body
    );
    let page = app.get(&format!("{link}/s/basics")).await;
    assert_eq!(page.field_value("name").as_deref(), Some("Cy"));
    assert_eq!(page.field_value("since").as_deref(), Some("2020-05-17"));

    // A contributor's workbook holds its own sections only.
    let contributor = app.issue_token_with(&[
        "--survey",
        "fixture",
        "--country",
        "SWE",
        "--role",
        "contributor",
        "--section",
        "plans",
    ]);
    let theirs = download(&app, &contributor, "en").await;
    assert_eq!(
        book(&theirs).sheet_names(),
        ["Instructions", PLANS, "lists", "coherence"]
    );
    // And a coordinator's workbook is not the contributor's to upload.
    let refused = upload(&app, &contributor, download(&app, &link, "en").await, "en").await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("sections your link does not answer"),
        "{}",
        refused.body
    );
}

async fn bad_cells_are_all_listed_and_nothing_is_saved(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna Berg");
    app.save_section(&link, "basics", &[("name", "Anna")]).await;
    let xlsx = download(&app, &link, "fr").await;
    let sheet = "1. Généralités";
    assert_eq!(value(&xlsx, sheet, "active", ""), "");
    let at = |q: &str, k: &str| cell(&xlsx, sheet, q, k, "D");
    // A number out of its range, a label not in the list, a date that is not one, and an
    // address that is not one; a good cell beside them.
    let filled = fill(
        &xlsx,
        &[
            (sheet, at("name", ""), V::S("Bo")),
            (sheet, at("staff", ""), V::N(500.0)),
            (sheet, at("colour", ""), V::S("Violet")),
            (sheet, at("since", ""), V::S("31/12/2020")),
            (sheet, at("contact", ""), V::S("pas une adresse")),
            (sheet, at("tools", "a"), V::S("Peut-être")),
        ],
    );
    let res = upload(&app, &link, filled, "fr").await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert!(
        res.body.contains("Rien n&#x27;a été enregistré")
            || res.body.contains("Rien n'a été enregistré"),
        "{}",
        res.body
    );
    for (q, k, message) in [
        ("colour", "", "Choisissez l&#x27;une des options proposées"),
        ("tools", "a", "Choisissez oui ou non"),
        ("staff", "", "Saisissez un nombre d&#x27;au plus 100"),
        (
            "since",
            "",
            "Saisissez une date sous la forme année-mois-jour",
        ),
        ("contact", "", "Saisissez une adresse électronique"),
    ] {
        let place = format!("<strong>{sheet}!{}</strong>: ", at(q, k));
        let i = res
            .body
            .find(&place)
            .unwrap_or_else(|| panic!("{place} in {}", res.body));
        let line = &res.body[i..i + res.body[i..].find("</li>").unwrap()];
        assert!(
            line.contains(message) || line.contains(&message.replace("&#x27;", "'")),
            "{line}"
        );
    }
    assert_eq!(res.body.matches("<li><strong>").count(), 5, "{}", res.body);
    // Nothing saved, not even the good cell.
    let page = app.get(&format!("{link}/s/basics")).await;
    assert_eq!(page.field_value("name").as_deref(), Some("Anna"));
    assert_eq!(page.field_value("staff").as_deref(), Some(""));
}

async fn answers_changed_online_since_the_export_are_conflicts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna Berg");
    app.save_section(&link, "basics", &[("name", "Anna"), ("staff", "3")])
        .await;
    let xlsx = download(&app, &link, "en").await;
    // A colleague changes the name online after the download.
    let other = app.clone_with_new_client();
    let saved = other
        .save_section(&link, "basics", &[("name", "Web"), ("staff", "3")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let at = |q: &str| cell(&xlsx, BASICS, q, "", "D");
    let filled = fill(
        &xlsx,
        &[
            (BASICS, at("name"), V::S("Sheet")),
            (BASICS, at("staff"), V::N(9.0)),
        ],
    );
    let res = upload(&app, &link, filled, "en").await;
    assert_eq!(res.status, 409, "{}", res.body);
    assert!(res.body.contains("changed online"), "{}", res.body);
    let row = res
        .body
        .find(&format!("{BASICS}!{}", at("name")))
        .expect("the conflict's cell");
    let row = &res.body[row..row + res.body[row..].find("</tr>").unwrap()];
    assert!(row.contains("<td>Web</td><td>Sheet</td>"), "{row}");
    // The staff count, unchanged online, is no conflict, but nothing at all was written.
    assert!(!res.body.contains(&format!("{BASICS}!{}", at("staff"))));
    let page = app.get(&format!("{link}/s/basics")).await;
    assert_eq!(page.field_value("name").as_deref(), Some("Web"));
    assert_eq!(page.field_value("staff").as_deref(), Some("3"));

    // The same old file, changing only what nobody changed online, goes in.
    let filled = fill(&xlsx, &[(BASICS, at("staff"), V::N(9.0))]);
    let res = upload(&app, &link, filled, "en").await;
    assert_eq!(res.status, 200, "{}", res.body);
    let page = app.get(&format!("{link}/s/basics")).await;
    assert_eq!(page.field_value("name").as_deref(), Some("Web"));
    assert_eq!(page.field_value("staff").as_deref(), Some("9"));

    // Once submitted, the response takes no file: refused, nothing written.
    let xlsx = download(&app, &link, "en").await;
    let filled = fill(
        &xlsx,
        &[
            (BASICS, at("active"), V::S("No")),
            (PLANS, cell(&xlsx, PLANS, "has_plan", "", "D"), V::S("No")),
        ],
    );
    let res = upload(&app, &link, filled.clone(), "en").await;
    assert_eq!(res.status, 200, "{}", res.body);
    let submitted = app.submit(&link).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let before = saved_count(&app);
    let changed = fill(&filled, &[(BASICS, at("staff"), V::N(1.0))]);
    let res = upload(&app, &link, changed, "en").await;
    assert_eq!(res.status, 409, "{}", res.body);
    assert_eq!(saved_count(&app), before);
    let page = app.get(&format!("{link}/s/basics")).await;
    assert_eq!(page.field_value("staff").as_deref(), Some("9"));
}

/// Every answer of the shipped surveys' demo responses survives the workbook: written out in
/// each language and read back, nothing differs.
async fn the_shipped_surveys_go_out_and_back_unchanged(backend: Backend) {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("surveys");
    let app = TestApp::spawn_with(backend, shipped).await;
    for survey in ["coherence-2008", "focal-points"] {
        let out = app.cli(&["demo-data", survey, "--countries", "40"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The drafts the demo wrote, with the most answers first.
        let out = app.cli(&["export", survey, "--format", "json", "--drafts"], None);
        assert!(out.status.success());
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut drafts: Vec<(usize, String)> = json["responses"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == "draft")
            .map(|r| {
                let answered = r["answers"].as_object().map_or(0, |a| a.len());
                (answered, r["iso3"].as_str().unwrap().to_string())
            })
            .collect();
        drafts.sort();
        let (answered, iso3) = drafts.pop().expect("a draft among the demo responses");
        assert!(answered > 5, "{answered} answers");
        let link = app.issue_token(survey, &iso3, "Anna Berg");
        let saves = saved_count_of(&app, survey);
        for lang in ["en", "fr", "es"] {
            let xlsx = download(&app, &link, lang).await;
            let names = book(&xlsx).sheet_names();
            assert!(names.len() > 3, "{names:?}");
            assert!(names.iter().all(|n| n.chars().count() <= 31), "{names:?}");
            let res = upload(&app, &link, xlsx, lang).await;
            assert_eq!(res.status, 200, "{survey} {iso3} in {lang}: {}", res.body);
            assert!(
                res.body.contains("<div class=\"notice\" role=\"status\">"),
                "{survey} {iso3} in {lang}: {}",
                res.body
            );
            // Nothing changed: the same message in every language, checked by its count.
            assert_eq!(saved_count_of(&app, survey), saves, "{survey} in {lang}");
        }
    }
}

/// A zip whose one entry inflates to 50 MB of zeros.
fn zip_bomb() -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("xl/workbook.xml", options).unwrap();
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..50 {
            zip.write_all(&zeros).unwrap();
        }
        zip.finish().unwrap();
    }
    out.into_inner()
}

async fn foreign_files_are_refused_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna Berg");
    app.save_section(&link, "basics", &[("name", "Anna")]).await;
    let before = saved_count(&app);
    let ours = download(&app, &link, "en").await;
    let name = cell(&ours, BASICS, "name", "", "D");

    let france = app.issue_token("fixture", "FRA", "Jean");
    let theirs = fill(
        &download(&app, &france, "en").await,
        &[(BASICS, name.clone(), V::S("Jean"))],
    );
    let org = app.issue_unit_token("institutions", "SWE", "Ministry");
    let other_survey = download(&app, &org, "en").await;
    // The hidden id of the first question changed to another question's.
    let tampered = fill(
        &ours,
        &[
            (BASICS, "A2".into(), V::S("notes")),
            (BASICS, name.clone(), V::S("Bo")),
        ],
    );
    let bomb = zip_bomb();
    assert!(bomb.len() < 200 * 1024, "{}", bomb.len());

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"name,email\nAnna,anna@gov.se\n".to_vec(),
            "is not an Excel workbook",
        ),
        (theirs, "another country or organisation"),
        (other_survey, "another survey"),
        (tampered, "hidden identifiers of this workbook were changed"),
        (bomb, "too large once unpacked"),
    ];
    for (file, message) in cases {
        let started = std::time::Instant::now();
        let res = upload(&app, &link, file, "en").await;
        assert_eq!(res.status, 422, "{message}: {}", res.body);
        assert!(res.body.contains(message), "{message}: {}", res.body);
        assert!(
            started.elapsed().as_secs() < 10,
            "{message}: {:?}",
            started.elapsed()
        );
    }
    // Not a workbook at all but a zip (an .ods renamed .xlsx, say): refused the same way.
    let mut plain = Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut plain);
        zip.start_file("content.xml", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"<office:document/>").unwrap();
        zip.finish().unwrap();
    }
    let res = upload(&app, &link, plain.into_inner(), "en").await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert!(
        res.body.contains("is not an Excel workbook"),
        "{}",
        res.body
    );

    // Larger than any questionnaire: refused before it is read to the end.
    let huge = upload(&app, &link, vec![b'x'; 6 * 1024 * 1024], "en").await;
    assert_eq!(huge.status, 413, "{}", huge.body);

    let page = app.get(&format!("{link}/s/basics")).await;
    assert_eq!(page.field_value("name").as_deref(), Some("Anna"));
    assert_eq!(saved_count(&app), before);
    // Without the form's token, nothing is read.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(ours).file_name("q.xlsx"),
    );
    let res = app
        .client
        .post(format!("{}{link}/questionnaire", app.address))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
}

fn temp_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

async fn the_command_line_exports_and_imports(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let out = temp_file(dir.path(), "swe.xlsx");
    let out_s = out.to_str().unwrap();
    // No link yet: the command says how to get one.
    let none = app.cli(
        &[
            "questionnaire",
            "export",
            "fixture",
            "--country",
            "SWE",
            "--out",
            out_s,
        ],
        None,
    );
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("token issue"));

    let link = app.issue_token("fixture", "SWE", "Anna Berg");
    app.save_section(&link, "basics", &[("name", "Anna")]).await;
    // The shape without `export`: `questionnaire SURVEY --country ... --out ...`.
    let res = app.cli(
        &[
            "questionnaire",
            "fixture",
            "--country",
            "swe",
            "--lang",
            "es",
            "--out",
            out_s,
        ],
        None,
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let xlsx = std::fs::read(&out).unwrap();
    let sheet = "1. Generalidades";
    assert_eq!(book(&xlsx).sheet_names()[0], "Instrucciones");
    assert_eq!(value(&xlsx, sheet, "name", ""), "Anna");

    let bad = fill(
        &xlsx,
        &[(sheet, cell(&xlsx, sheet, "staff", "", "D"), V::N(-1.0))],
    );
    std::fs::write(&out, &bad).unwrap();
    let res = app.cli(
        &[
            "questionnaire",
            "import",
            "fixture",
            "--country",
            "SWE",
            out_s,
        ],
        None,
    );
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        stderr.contains(&format!(
            "{sheet}!{}: ",
            cell(&xlsx, sheet, "staff", "", "D")
        )),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was saved"), "{stderr}");

    let good = fill(
        &xlsx,
        &[(sheet, cell(&xlsx, sheet, "name", "", "D"), V::S("Eva"))],
    );
    std::fs::write(&out, &good).unwrap();
    let res = app.cli(
        &[
            "questionnaire",
            "import",
            "fixture",
            "--country",
            "SWE",
            out_s,
        ],
        None,
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(String::from_utf8_lossy(&res.stdout).contains("1 answer(s) saved in 1 section(s)"));
    let page = app.get(&format!("{link}/s/basics")).await;
    assert_eq!(page.field_value("name").as_deref(), Some("Eva"));

    // Another country's file is refused by the command line too.
    app.issue_token("fixture", "FRA", "Jean");
    let res = app.cli(
        &[
            "questionnaire",
            "import",
            "fixture",
            "--country",
            "FRA",
            out_s,
        ],
        None,
    );
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("another country"), "{stderr}");
}

/// "Not known" and "not applicable" through the workbook: their drop-down cells and reasons
/// (tests/fixtures/escapes), a missing required reason listed with nothing saved, then a clean
/// import stored as non-answers and written back into the next export.
async fn not_known_and_not_applicable_go_out_and_come_back(backend: Backend) {
    let app = TestApp::spawn_with(backend, fixtures().join("escapes")).await;
    let link = app.issue_token("escapes", "SWE", "Anna Berg");
    let sheet = "1. Figures";
    let xlsx = download(&app, &link, "en").await;
    let escape = |q: &str| cell(&xlsx, sheet, q, "", "E");
    let reason = |q: &str| cell(&xlsx, sheet, q, "", "F");
    // `budget` requires a reason: without one, the cell is named and nothing is stored.
    let missing = fill(
        &xlsx,
        &[
            (sheet, escape("staff"), V::S("Not known")),
            (sheet, escape("budget"), V::S("Not applicable")),
        ],
    );
    let res = upload(&app, &link, missing, "en").await;
    assert_eq!(res.status, 422, "{}", res.body);
    let place = format!("<strong>{sheet}!{}</strong>: ", escape("budget"));
    assert!(res.body.contains(&place), "{place} in {}", res.body);
    assert_eq!(res.body.matches("<li><strong>").count(), 1, "{}", res.body);
    let page = app.get(&format!("{link}/s/figures")).await;
    assert!(!page.escape_checked("staff", "not_known"), "nothing saved");

    let filled = fill(
        &xlsx,
        &[
            (sheet, escape("staff"), V::S("Not known")),
            (sheet, reason("staff"), V::S("Not collected yet")),
            (sheet, escape("budget"), V::S("Not applicable")),
            (sheet, reason("budget"), V::S("No budget line")),
            (sheet, cell(&xlsx, sheet, "name", "", "D"), V::S("Ministry")),
        ],
    );
    let done = upload(&app, &link, filled, "en").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("3 answers changed in 1 sections"),
        "{}",
        done.body
    );
    let page = app.get(&format!("{link}/s/figures")).await;
    assert!(page.escape_checked("staff", "not_known"));
    assert_eq!(
        page.field_value("staff.reason").as_deref(),
        Some("Not collected yet")
    );
    assert!(page.escape_checked("budget", "not_applicable"));
    assert_eq!(
        page.field_value("budget.reason").as_deref(),
        Some("No budget line")
    );
    assert_eq!(page.field_value("name").as_deref(), Some("Ministry"));
    // The next export shows them as given; `name` allows neither, so it has no escape cell.
    let again = download(&app, &link, "en").await;
    let range = book(&again).worksheet_range(sheet).unwrap();
    let row_of = |q: &str| cell(&again, sheet, q, "", "A")[1..].parse::<u32>().unwrap() - 1;
    assert_eq!(text(range.get_value((row_of("staff"), 4))), "Not known");
    assert_eq!(
        text(range.get_value((row_of("staff"), 5))),
        "Not collected yet"
    );
    assert_eq!(
        text(range.get_value((row_of("budget"), 4))),
        "Not applicable"
    );
    assert_eq!(text(range.get_value((row_of("name"), 4))), "");
}
