//! Attachments: file questions answered in a plain multipart form, bad files refused beside
//! the field with the rest of the section kept, downloads only for the country's links and
//! the survey's owners, and the exports. Every test runs on SQLite and PostgreSQL.

use reqwest::multipart::{Form, Part};
use sha2::{Digest, Sha256};

use crate::helpers::{fixtures, Backend, Page, TestApp};
use crate::on_both_backends;

on_both_backends!(
    files_are_attached_replaced_and_removed_in_a_plain_form,
    bad_files_are_refused_beside_the_field_and_the_rest_is_kept,
    files_are_downloaded_only_by_the_country_and_the_owners,
    exports_list_and_carry_the_files,
    a_large_post_to_a_made_up_link_is_refused_before_its_body_is_read,
);

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";
const CSV: &[u8] = b"indicator,value\nremittances,12.5\n";

async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, fixtures().join("evidence")).await
}

/// A Word document as an office suite writes it: a zip with `word/` entries.
fn docx() -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("[Content_Types].xml", options).unwrap();
        zip.write_all(b"<?xml version=\"1.0\"?><Types/>").unwrap();
        zip.start_file("word/document.xml", options).unwrap();
        zip.write_all(b"<w:document/>").unwrap();
        zip.finish().unwrap();
    }
    out.into_inner()
}

/// One field of a multipart section post.
enum Field<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a str, Vec<u8>),
}

/// Post the section form loaded in `form` as a browser does with a file input: multipart,
/// with its CSRF token and version.
async fn post_multipart(app: &TestApp, form: &Page, action: &str, fields: Vec<Field<'_>>) -> Page {
    let mut body = Form::new()
        .text("_csrf", form.hidden("_csrf"))
        .text("_version", form.hidden("_version"));
    for f in fields {
        body = match f {
            Field::Text(k, v) => body.text(k.to_string(), v.to_string()),
            Field::File(k, name, bytes) => body.part(
                k.to_string(),
                Part::bytes(bytes)
                    .file_name(name.to_string())
                    .mime_str("application/octet-stream")
                    .unwrap(),
            ),
        };
    }
    let res = app
        .client
        .post(format!("{}{action}", app.address))
        .multipart(body)
        .send()
        .await
        .expect("POST");
    to_page(res).await
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
        body: res.text().await.unwrap(),
        headers,
    }
}

async fn save_files(app: &TestApp, link: &str, section: &str, fields: Vec<Field<'_>>) -> Page {
    let form = app.get(&format!("{link}/s/{section}")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    post_multipart(app, &form, &format!("{link}/s/{section}"), fields).await
}

/// The ids of the files listed on a section page, in order, with their names.
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

async fn files_are_attached_replaced_and_removed_in_a_plain_form(backend: Backend) {
    let app = spawn(backend).await;
    let link = app.issue_token("evidence", "SWE", "Anna");
    let form = app.get(&format!("{link}/s/policy")).await;
    assert!(form.body.contains("enctype=\"multipart/form-data\""));
    assert!(form
        .body
        .contains("type=\"file\" id=\"q-documents\" name=\"documents\""));
    assert!(form.body.contains("accept=\".pdf,.docx,.csv,.png\""));

    // Attach a PDF alongside the other answers.
    let saved = post_multipart(
        &app,
        &form,
        &format!("{link}/s/policy"),
        vec![
            Field::Text("strategy", "yes"),
            Field::Text("staff", "12"),
            Field::File("documents", "Stratégie nationale.pdf", PDF.to_vec()),
        ],
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = app.get(&format!("{link}/s/policy")).await;
    let files = listed(&page);
    assert_eq!(files.len(), 1, "{}", page.body);
    assert_eq!(files[0].1, "Stratégie nationale.pdf");
    assert_eq!(page.field_value("staff").as_deref(), Some("12"));
    let pdf_id = files[0].0.clone();
    let (status, headers, body) = download(&app, &format!("{link}/files/{pdf_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(body, PDF);
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"Strat_gie nationale.pdf\"; filename*=UTF-8''Strat%C3%A9gie%20nationale.pdf"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; sandbox"
    );

    // Saving the section without touching the file (a url-encoded post too) keeps it.
    let again = app
        .save_section(&link, "policy", &[("strategy", "no"), ("staff", "12")])
        .await;
    assert_eq!(again.status, 303, "{}", again.body);
    let page = app.get(&format!("{link}/s/policy")).await;
    assert_eq!(listed(&page).len(), 1);

    // Replace it: remove the PDF and attach a Word document in one post.
    let replaced = save_files(
        &app,
        &link,
        "policy",
        vec![
            Field::Text("strategy", "yes"),
            Field::Text("documents.remove", &pdf_id),
            Field::File("documents", "annex.docx", docx()),
        ],
    )
    .await;
    assert_eq!(replaced.status, 303, "{}", replaced.body);
    let page = app.get(&format!("{link}/s/policy")).await;
    let files = listed(&page);
    assert_eq!(
        files.iter().map(|f| f.1.as_str()).collect::<Vec<_>>(),
        ["annex.docx"]
    );
    // The removed file was in no version: it is gone.
    let (status, _, _) = download(&app, &format!("{link}/files/{pdf_id}")).await;
    assert_eq!(status, 404);
    let docx_id = files[0].0.clone();
    let (status, headers, _) = download(&app, &format!("{link}/files/{docx_id}")).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .contains("wordprocessingml"));

    // Submitted, the file is in the version; recalled and removed from the draft, it stays
    // stored for that version.
    let submitted = app.submit(&link).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let review = app.get(&format!("{link}/review")).await;
    assert!(
        review.body.contains(&format!(
            "<a href=\"{link}/files/{docx_id}\" download>annex.docx</a>"
        )),
        "{}",
        review.body
    );
    let csrf = crate::cycle::link_csrf(&app, &link).await;
    let print = app.get(&format!("{link}/print?answers=1")).await;
    assert!(print.body.contains("annex.docx"), "{}", print.body);
    let recalled = app
        .post(&format!("{link}/recall"), &[("_csrf", csrf.as_str())])
        .await;
    assert_eq!(recalled.status, 303, "{}", recalled.body);
    // Removed with its box in a url-encoded post (no file chosen): the same.
    let removed = app
        .save_section(
            &link,
            "policy",
            &[("strategy", "yes"), ("documents.remove", docx_id.as_str())],
        )
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    let page = app.get(&format!("{link}/s/policy")).await;
    assert!(listed(&page).is_empty(), "{}", page.body);
    let (status, _, _) = download(&app, &format!("{link}/files/{docx_id}")).await;
    assert_eq!(status, 200, "a version still refers to the file");
}

async fn bad_files_are_refused_beside_the_field_and_the_rest_is_kept(backend: Backend) {
    let app = spawn(backend).await;
    let link = app.issue_token("evidence", "SWE", "Anna");
    let mut big = PDF.to_vec();
    big.resize(1024 * 1024 + 10, b' ');
    let html = b"<!DOCTYPE html><html><script>alert(1)</script></html>".to_vec();
    let exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff".to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "report.pdf",
            big,
            "report.pdf is too large: each file may be at most 1 MB",
        ),
        (
            "decree.pdf",
            html,
            "decree.pdf is not an accepted document (PDF, DOCX, CSV, PNG), or its name does not match its content",
        ),
        (
            "annex.pdf",
            exe,
            "annex.pdf is not an accepted document (PDF, DOCX, CSV, PNG), or its name does not match its content",
        ),
        ("data.csv", Vec::new(), "data.csv is empty"),
        (
            "figures.pdf",
            CSV.to_vec(),
            "figures.pdf is not an accepted document (PDF, DOCX, CSV, PNG), or its name does not match its content",
        ),
    ];
    for (n, (name, bytes, message)) in cases.into_iter().enumerate() {
        let staff = (n + 1).to_string();
        let page = save_files(
            &app,
            &link,
            "policy",
            vec![
                Field::Text("strategy", "yes"),
                Field::Text("staff", &staff),
                Field::File("documents", name, bytes),
            ],
        )
        .await;
        assert_eq!(page.status, 422, "{name}: {}", page.body);
        assert_eq!(page.field_error("documents").as_deref(), Some(message));
        assert!(page
            .body
            .contains("Your other answers in this section were saved."));
        // The other answers of the section were stored.
        let stored = app.get(&format!("{link}/s/policy")).await;
        assert_eq!(stored.field_value("staff").as_deref(), Some(staff.as_str()));
        assert!(listed(&stored).is_empty(), "{name} was not stored");
    }

    // Too many: two are allowed.
    for name in ["a.csv", "b.csv"] {
        let ok = save_files(
            &app,
            &link,
            "policy",
            vec![
                Field::Text("strategy", "yes"),
                Field::File("documents", name, CSV.to_vec()),
            ],
        )
        .await;
        assert_eq!(ok.status, 303, "{}", ok.body);
    }
    let full = app.get(&format!("{link}/s/policy")).await;
    assert!(!full.body.contains("type=\"file\""), "no room: no input");
    let third = save_files(
        &app,
        &link,
        "policy",
        vec![
            Field::Text("strategy", "yes"),
            Field::File("documents", "c.csv", CSV.to_vec()),
        ],
    )
    .await;
    assert_eq!(third.status, 422);
    assert_eq!(
        third.field_error("documents").as_deref(),
        Some("Attach at most 2 files")
    );
    assert_eq!(listed(&third).len(), 2);

    // French messages.
    let fr = app.get(&format!("{link}/s/policy?lang=fr")).await;
    assert_eq!(fr.status, 200);
    let refused = post_multipart(
        &app,
        &fr,
        &format!("{link}/s/policy"),
        vec![Field::File("documents", "vide.csv", Vec::new())],
    )
    .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("vide.csv est vide"),
        "{}",
        refused.body
    );

    // A body past the section's budget (2 files of 1 MB, plus a little) is refused whole.
    let form = app.get(&format!("{link}/s/policy")).await;
    let huge = vec![b'a'; 3 * 1024 * 1024];
    let res = post_multipart(
        &app,
        &form,
        &format!("{link}/s/policy"),
        vec![Field::File("documents", "huge.csv", huge)],
    )
    .await;
    assert_eq!(res.status, 413);
    // An ordinary form keeps its small limit.
    let long = "x".repeat(300 * 1024);
    let res = app
        .post(&format!("{link}/s/policy"), &[("staff", long.as_str())])
        .await;
    assert_eq!(res.status, 413);
    // And a multipart post without the CSRF token is refused.
    let res = app
        .client
        .post(format!("{}{link}/s/policy", app.address))
        .multipart(Form::new().part("documents", Part::bytes(CSV.to_vec()).file_name("x.csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
}

async fn files_are_downloaded_only_by_the_country_and_the_owners(backend: Backend) {
    let app = spawn(backend).await;
    let link = app.issue_token("evidence", "SWE", "Anna");
    let saved = save_files(
        &app,
        &link,
        "policy",
        vec![
            Field::Text("strategy", "yes"),
            Field::File("documents", "plan.pdf", PDF.to_vec()),
        ],
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = app.get(&format!("{link}/s/policy")).await;
    let id = listed(&page)[0].0.clone();

    // A colleague's link of the same country: yes; another country's: an unknown page.
    let colleague = app.issue_token("evidence", "SWE", "Per");
    assert_eq!(
        download(&app, &format!("{colleague}/files/{id}")).await.0,
        200
    );
    let norway = app.issue_token("evidence", "NOR", "Kari");
    let (status, _, body) = download(&app, &format!("{norway}/files/{id}")).await;
    assert_eq!(status, 404);
    assert!(!body.windows(PDF.len()).any(|w| w == PDF));
    // A contributor of the other section: not its section's file.
    let contributor = app.issue_token_with(&[
        "--survey",
        "evidence",
        "--country",
        "SWE",
        "--role",
        "contributor",
        "--section",
        "annex",
    ]);
    assert_eq!(
        download(&app, &format!("{contributor}/files/{id}")).await.0,
        404
    );
    // A made-up id.
    assert_eq!(download(&app, &format!("{link}/files/{id}x")).await.0, 404);

    // Anonymous: sent to sign in, nothing else.
    let admin_path = format!("/admin/surveys/evidence/countries/SWE/files/{id}");
    let anonymous = app.clone_with_new_client();
    let (status, _, body) = download(&anonymous, &admin_path).await;
    assert!(status == 303 || status == 401 || status == 403, "{status}");
    assert!(!body.windows(PDF.len()).any(|w| w == PDF));

    // Another survey's owner: refused.
    app.add_user(
        "other@example.org",
        "a long other passphrase",
        "owner",
        &["other"],
    );
    let other = app.clone_with_new_client();
    assert_eq!(
        other
            .login("other@example.org", "a long other passphrase")
            .await
            .status,
        303
    );
    let (status, _, body) = download(&other, &admin_path).await;
    assert_eq!(status, 403);
    assert!(!body.windows(PDF.len()).any(|w| w == PDF));
    // Nor through their own survey's route.
    let (status, _, _) = download(
        &other,
        &format!("/admin/surveys/other/countries/SWE/files/{id}"),
    )
    .await;
    assert_eq!(status, 404);

    // The survey's owner: yes, as an attachment; under another country's page: no.
    app.add_user(
        "owner@example.org",
        "a long owner passphrase",
        "owner",
        &["evidence"],
    );
    let owner = app.clone_with_new_client();
    assert_eq!(
        owner
            .login("owner@example.org", "a long owner passphrase")
            .await
            .status,
        303
    );
    let (status, headers, body) = download(&owner, &admin_path).await;
    assert_eq!(status, 200);
    assert_eq!(body, PDF);
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    let (status, _, _) = download(
        &owner,
        &format!("/admin/surveys/evidence/countries/NOR/files/{id}"),
    )
    .await;
    assert_eq!(status, 404);
    // The country page names the file, linked for download.
    let country = owner.get("/admin/surveys/evidence/countries/SWE").await;
    assert!(
        country
            .body
            .contains(&format!("<a href=\"{admin_path}\" download>plan.pdf</a>")),
        "{}",
        country.body
    );
}

async fn exports_list_and_carry_the_files(backend: Backend) {
    let app = spawn(backend).await;
    let link = app.issue_token("evidence", "SWE", "Anna");
    let saved = save_files(
        &app,
        &link,
        "policy",
        vec![
            Field::Text("strategy", "yes"),
            Field::File("documents", "plan.pdf", PDF.to_vec()),
            Field::File("documents", "data.csv", CSV.to_vec()),
        ],
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let other_pdf = b"%PDF-1.4\nanother annex\n".to_vec();
    let annexes = save_files(
        &app,
        &link,
        "annex",
        vec![
            Field::File("annex_files", "Annex.pdf", PDF.to_vec()),
            Field::File("annex_files", "annex.pdf", other_pdf.clone()),
        ],
    )
    .await;
    assert_eq!(annexes.status, 303, "{}", annexes.body);
    assert_eq!(app.submit(&link).await.status, 303);
    // A draft attaching a file after the submission is not what counts.
    let norway = app.issue_token("evidence", "NOR", "Kari");
    let draft = save_files(
        &app,
        &norway,
        "policy",
        vec![
            Field::Text("strategy", "no"),
            Field::File("documents", "draft.pdf", PDF.to_vec()),
        ],
    )
    .await;
    assert_eq!(draft.status, 303, "{}", draft.body);

    // The zip export: the CSV, the codebook and every counted file, names kept apart.
    let path = app.dir.path().join("evidence.zip");
    let out = app.cli(
        &[
            "export",
            "evidence",
            "--format",
            "zip",
            "--out",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&path).unwrap();
    let check_zip = |bytes: Vec<u8>| {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut names: Vec<String> = zip.file_names().map(String::from).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "codebook.csv",
                "files/SWE/annex_files/Annex.pdf",
                "files/SWE/annex_files/annex (2).pdf",
                "files/SWE/documents/data.csv",
                "files/SWE/documents/plan.pdf",
                "responses.csv",
            ]
        );
        let read = |zip: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str| {
            use std::io::Read;
            let mut out = Vec::new();
            zip.by_name(name).unwrap().read_to_end(&mut out).unwrap();
            out
        };
        let digest = |b: &[u8]| hex::encode(Sha256::digest(b));
        assert_eq!(
            digest(&read(&mut zip, "files/SWE/documents/plan.pdf")),
            digest(PDF)
        );
        assert_eq!(
            digest(&read(&mut zip, "files/SWE/documents/data.csv")),
            digest(CSV)
        );
        assert_eq!(
            digest(&read(&mut zip, "files/SWE/annex_files/annex (2).pdf")),
            digest(&other_pdf)
        );
        let csv = String::from_utf8(read(&mut zip, "responses.csv")).unwrap();
        assert!(csv.contains("data.csv; plan.pdf"), "{csv}");
        let codebook = String::from_utf8(read(&mut zip, "codebook.csv")).unwrap();
        assert!(
            codebook.contains("names of the attached files"),
            "{codebook}"
        );
    };
    check_zip(bytes);

    // The same from the results page, for the survey's owner, with the evidence counted.
    app.add_user(
        "owner@example.org",
        "a long owner passphrase",
        "owner",
        &["evidence"],
    );
    assert_eq!(
        app.login("owner@example.org", "a long owner passphrase")
            .await
            .status,
        303
    );
    let results = app.get("/admin/surveys/evidence/results").await;
    assert!(
        results.body.contains("/admin/surveys/evidence/export.zip"),
        "{}",
        results.body
    );
    let (status, headers, bytes) = download(&app, "/admin/surveys/evidence/export.zip").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/zip");
    check_zip(bytes);
    let question = app.get("/admin/surveys/evidence/results/q/documents").await;
    assert!(
        question
            .body
            .contains("1 of 1 responses attached evidence (2 files)"),
        "{}",
        question.body
    );
    assert!(
        question.body.contains(
            "<dt>Sweden</dt><dd>data.csv</dd></div><div><dt>Sweden</dt><dd>plan.pdf</dd>"
        ),
        "{}",
        question.body
    );

    let out = app.cli(&["export", "evidence", "--format", "json"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = &json["responses"][0]["answers"]["documents"];
    let mut listed: Vec<(String, u64, String)> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
                f["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![
            (
                "data.csv".to_string(),
                CSV.len() as u64,
                hex::encode(Sha256::digest(CSV))
            ),
            (
                "plan.pdf".to_string(),
                PDF.len() as u64,
                hex::encode(Sha256::digest(PDF))
            ),
        ]
    );
}

/// Bad limits and types of a file question are reported where they are, as for other kinds.
#[test]
fn file_questions_are_checked_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("files.toml");
    std::fs::write(
        &file,
        "id = \"x\"\ntitle = \"X\"\n[[sections]]\nid = \"s\"\ntitle = \"S\"\n\
         [[sections.questions]]\nid = \"q\"\ntype = \"file\"\ntext = \"Q\"\n\
         max_files = 0\nmax_size_mb = 500\naccept = [\"pdf\", \"exe\", \"pdf\"]\n\
         [[sections.questions]]\nid = \"r\"\ntype = \"yes_no\"\ntext = \"R\"\n\
         show_if = \"q == 'x'\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coherence"))
        .arg("check")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "10:1: error: max_files must be from 1 to 20 in question 'q'",
        "11:1: error: max_size_mb must be from 1 to 50 in question 'q'",
        "12:18: error: unknown file type 'exe' in 'accept' of question 'q'",
        "12:25: error: 'pdf' is listed twice in 'accept' of question 'q'",
        "17:12: error: show_if of question 'r': a file question is tested with answered(question) only",
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }
}

/// In a real browser without JavaScript: a file attached through the plain file input beside
/// another answer, listed with its download link and remove box, then removed; axe-core and
/// the accessible names of every control (the file input, the remove box) on each page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_is_attached_and_removed_in_a_real_browser_without_javascript() {
    use crate::browser::{
        browser_without_javascript, check_page_without_js, chromedriver, click, go, wait_for,
    };
    use fantoccini::Locator;
    let app = spawn(Backend::Sqlite).await;
    let link = app.issue_token("evidence", "SWE", "Anna");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Plan d'action.pdf");
    std::fs::write(&path, PDF).unwrap();
    let driver = chromedriver();
    let c = browser_without_javascript(&driver).await;

    go(&app, &c, &format!("{link}/s/policy")).await;
    wait_for(&c, "Attach a file").await;
    check_page_without_js(&c, "section with a file question", "files-01-section").await;
    click(&c, "#q-strategy-yes").await;
    c.find(Locator::Css("#q-documents"))
        .await
        .expect("the file input")
        .send_keys(path.to_str().unwrap())
        .await
        .expect("choose the file");
    click(&c, "form[action$='/s/policy'] button[type=submit]").await;
    let page = wait_for(&c, "Your answers were saved.").await;
    assert!(page.contains("Plan d'action.pdf"), "{page}");
    check_page_without_js(&c, "section with a file attached", "files-02-attached").await;

    // The download link serves the same bytes (fetched outside the browser, with the link).
    let href = page
        .split("<a href=\"../files/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a download link")
        .to_string();
    let res = app
        .client
        .get(format!("{}{link}/files/{href}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.bytes().await.unwrap().as_ref(), PDF);

    // Removed with its box.
    click(&c, "input[name='documents.remove']").await;
    click(&c, "form[action$='/s/policy'] button[type=submit]").await;
    // The page before the click said "saved" too: wait for the file to go.
    let mut gone = false;
    for _ in 0..100 {
        let page = c.source().await.unwrap();
        if page.contains("Your answers were saved.") && !page.contains("Plan d'action.pdf") {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(gone, "{}", c.source().await.unwrap());
}

/// A multipart post may be as large as a section's files allow (or a workbook, 5 MB): its link
/// is looked up before a byte of the body is read, so a made-up link (or a revoked one) cannot
/// make the server hold megabytes. The answer comes while the body has barely started.
async fn a_large_post_to_a_made_up_link_is_refused_before_its_body_is_read(backend: Backend) {
    use std::io::{Read, Write};
    let app = spawn(backend).await;
    let link = app.issue_token("evidence", "SWE", "Anna Berg");
    let revoked = app.issue_token("evidence", "NOR", "Ola");
    let out = app.cli(&["token", "revoke", "--link", &revoked], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made_up = format!("/r/{}", "x".repeat(43));
    let cases = [
        (&made_up, "s/policy", "HTTP/1.1 404"),
        (&revoked, "s/policy", "HTTP/1.1 410"),
        // The spreadsheet upload (5 MB) is guarded the same way.
        (&made_up, "questionnaire", "HTTP/1.1 404"),
        (&revoked, "questionnaire", "HTTP/1.1 410"),
    ];
    for (path, route, expected) in cases {
        let address = app.address.trim_start_matches("http://").to_string();
        let target = format!("{path}/{route}");
        let answer = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let head = format!(
                "POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; \
                 boundary=b\r\nContent-Length: 40000000\r\n\r\n--b\r\nContent-Disposition: \
                 form-data; name=\"documents\"; filename=\"a.pdf\"\r\n\r\n%PDF-"
            );
            stream.write_all(head.as_bytes()).unwrap();
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            String::from_utf8_lossy(&buf[..n]).into_owned()
        })
        .await
        .unwrap();
        assert!(answer.starts_with(expected), "{path}/{route}: {answer}");
    }
    // The live link's post of the same shape is read (and its file judged) as usual.
    let form = app.get(&format!("{link}/s/policy")).await;
    let res = post_multipart(
        &app,
        &form,
        &format!("{link}/s/policy"),
        vec![Field::File("documents", "plan.pdf", PDF.to_vec())],
    )
    .await;
    assert_eq!(res.status, 303, "{}", res.body);
    app.stop().await;
}
