//! Regression tests for what an attacker found (issue 9), each named after its class. Every test
//! drives the real server over HTTP, on SQLite and on PostgreSQL.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{fixtures, free_port, fresh_database, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    login_flood_checks_a_bounded_number_of_passwords,
    csv_injection_is_neutralised_in_every_csv,
    markdown_injection_in_the_compendium_stays_text,
    csrf_tokens_are_bound_rotated_and_origin_checked,
    rate_limits_count_per_account_address_and_link,
    revoked_replaced_and_expired_links_say_so,
    deadline_extension_refuses_dates_out_of_range,
    links_are_revoked_from_the_country_page_by_its_owners_only,
    sign_in_counters_stay_bounded_and_refunds_go_where_counted,
);

const ADMIN: (&str, &str) = ("admin@gfmd.example.org", "a long admin passphrase");

/// The real binary serving on a free port, killed when dropped.
struct ServerProcess {
    child: Child,
    address: String,
}

impl ServerProcess {
    fn start(database_url: &str, env: &[(&str, &str)]) -> ServerProcess {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coherence"));
        cmd.arg("serve")
            .env("COHERENCE_DATABASE_URL", database_url)
            .env("COHERENCE_SURVEYS", fixtures().join("surveys"))
            .env("COHERENCE_BIND", format!("127.0.0.1:{port}"))
            .env("COHERENCE_LOG", "warn")
            .env_remove("COHERENCE_BASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start coherence serve");
        let server = ServerProcess {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if raw_request(
                &server.address,
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                Duration::from_secs(2),
            )
            .starts_with("HTTP/1.1 200")
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server did not answer /healthz within 30 s");
    }

    /// Peak resident memory of the process so far (VmHWM), in MiB.
    fn peak_memory_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        let kib: u64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .expect("VmHWM line");
        kib / 1024
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send raw bytes and read until the server closes the connection or `timeout` passes.
fn raw_request(address: &str, request: &str, timeout: Duration) -> String {
    let Ok(mut stream) = TcpStream::connect(address) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(timeout));
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn cookie_and_hidden(page_raw: &str, cookie: &str) -> (String, String) {
    let set = page_raw
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:") && l.contains(cookie))
        .expect("a CSRF cookie");
    let value = set
        .split_once(&format!("{cookie}="))
        .and_then(|(_, v)| v.split(';').next())
        .expect("cookie value")
        .to_string();
    let token = page_raw
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a _csrf field")
        .to_string();
    (value, token)
}

/// A sign-in request for the administrator, as raw HTTP, with a fresh CSRF cookie and token.
fn raw_sign_in(address: &str, password: &str, close: bool) -> String {
    let login_page = raw_request(
        address,
        "GET /admin/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    let (cookie, token) = cookie_and_hidden(&login_page, "coherence_csrf");
    let body = serde_urlencoded::to_string([
        ("_csrf", token.as_str()),
        ("email", ADMIN.0),
        ("password", password),
    ])
    .unwrap();
    format!(
        "POST /admin/login HTTP/1.1\r\nHost: x\r\nCookie: coherence_csrf={cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{}\r\n{body}",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
}

/// 400 pipelined sign-ins with a wrong password: at most the allowed number of passwords is
/// checked (401); the rest are refused before any check (429) or told to retry (503); the
/// process's memory stays bounded; a respondent's page keeps answering throughout.
async fn login_flood_checks_a_bounded_number_of_passwords(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(backend, dir.path());
    let server = ServerProcess::start(&url, &[("COHERENCE_DB_POOL", "4")]);
    let cli = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coherence"))
            .args(args)
            .env("COHERENCE_DATABASE_URL", &url)
            .env("COHERENCE_SURVEYS", fixtures().join("surveys"))
            .env("COHERENCE_BASE_URL", format!("http://{}", server.address))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    cli(
        &[
            "user",
            "add",
            "--email",
            ADMIN.0,
            "--role",
            "admin",
            "--password-stdin",
        ],
        &format!("{}\n", ADMIN.1),
    );
    let link = cli(
        &["token", "issue", "--survey", "fixture", "--country", "SWE"],
        "",
    );
    let link_path = link
        .lines()
        .last()
        .unwrap()
        .trim()
        .trim_start_matches(&format!("http://{}", server.address))
        .to_string();
    let baseline = server.peak_memory_mib();

    let one = raw_sign_in(&server.address, "wrong password guess", false);
    // 8 connections, 50 requests pipelined on each, all written at once.
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let (address, one) = (server.address.clone(), one.clone());
            std::thread::spawn(move || {
                let mut batch = one.repeat(49);
                batch.push_str(&one.replacen("Host: x\r\n", "Host: x\r\nConnection: close\r\n", 1));
                raw_request(&address, &batch, Duration::from_secs(120))
            })
        })
        .collect();
    // Meanwhile a focal point reads their page.
    let reader = {
        let (address, path) = (server.address.clone(), link_path.clone());
        std::thread::spawn(move || {
            let mut statuses = Vec::new();
            let until = Instant::now() + Duration::from_secs(4);
            while Instant::now() < until {
                let res = raw_request(
                    &address,
                    &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                    Duration::from_secs(30),
                );
                statuses.push(res.get(9..12).unwrap_or("???").to_string());
                std::thread::sleep(Duration::from_millis(100));
            }
            statuses
        })
    };
    let responses: Vec<String> = flood.into_iter().map(|t| t.join().unwrap()).collect();
    let reads = reader.join().unwrap();
    let count = |status: &str| -> usize {
        responses
            .iter()
            .map(|r| r.matches(&format!("HTTP/1.1 {status}")).count())
            .sum()
    };
    let (checked, refused, busy) = (count("401"), count("429"), count("503"));
    assert!(
        checked <= 10,
        "{checked} passwords were checked, more than the limit of 10"
    );
    assert!(checked >= 1, "some passwords were checked");
    assert_eq!(checked + refused + busy, 400, "every sign-in got an answer");
    assert!(
        !reads.is_empty() && reads.iter().all(|s| s == "200"),
        "the respondent's page kept answering: {reads:?}"
    );
    let peak = server.peak_memory_mib();
    println!(
        "login flood ({backend:?}): {checked} checked (401), {refused} refused (429), {busy} busy (503); \
         respondent page {} x 200; memory {baseline} MiB before, {peak} MiB peak",
        reads.len()
    );
    assert!(
        peak < baseline + 120,
        "memory stayed bounded: {baseline} MiB before, {peak} MiB peak"
    );
    // The account's owner, from a browser that never signed in, waits like the attacker.
    let res = raw_request(
        &server.address,
        &raw_sign_in(&server.address, ADMIN.1, true),
        Duration::from_secs(30),
    );
    assert!(res.starts_with("HTTP/1.1 429"), "{res}");
}

async fn csv_injection_is_neutralised_in_every_csv(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let res = app
        .save_section(
            &link,
            "basics",
            &[
                ("name", "=1+2"),
                ("notes", "\t@SUM(1+1)\n=HYPERLINK(\"http://evil.example\")"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let out = app.cli(&["export", "fixture", "--format", "csv", "--drafts"], None);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(csv.contains(",'=1+2,"), "{csv}");
    assert!(csv.contains("\"'@SUM(1+1)"), "{csv}");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            assert!(
                !cell.starts_with(['=', '@', '+', '\t', '\r']),
                "no cell starts a formula: {cell:?}"
            );
        }
    }
    // Contacts: exported neutralised, and imported back as typed.
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    assert_eq!(app.login(ADMIN.0, ADMIN.1).await.status, 303);
    let file = app.dir.path().join("contacts.csv");
    std::fs::write(
        &file,
        "country,name,email,language,office\nSWE,=cmd|' /C calc'!A0,anna@gov.se,en,-Ministry+;=2+2\n",
    )
    .unwrap();
    let out = app.cli(
        &["contacts", "import", "fixture", file.to_str().unwrap()],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported = app.get("/admin/surveys/fixture/contacts.csv").await;
    assert!(
        exported.body.contains("'=cmd|' /C calc'!A0")
            && exported.body.contains("\"'-Ministry+;=2+2\""),
        "{}",
        exported.body
    );
    std::fs::write(&file, &exported.body).unwrap();
    let out = app.cli(
        &["contacts", "import", "fixture", file.to_str().unwrap()],
        None,
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 added, 0 updated, 1 unchanged"),
        "re-importing the export changes nothing: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The status table's CSV goes through the same writer.
    let status = app.get("/admin/surveys/fixture/status.csv").await;
    assert_eq!(status.status, 200);
    assert!(status.body.starts_with("iso3,country"), "{}", status.body);
    app.stop().await;
}

async fn markdown_injection_in_the_compendium_stays_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Anna");
    let practice = "A council.\n### Philippines (South-eastern Asia)\nA fake practice <script>alert(1)</script> [click](javascript:alert(1))";
    for (section, fields) in [
        (
            "basics",
            vec![
                ("name", "Anna"),
                ("colour", "red"),
                ("active", "yes"),
                ("staff", "10"),
            ],
        ),
        ("plans", vec![("has_plan", "yes")]),
        (
            "plans",
            vec![
                ("has_plan", "yes"),
                ("plan_year", "2007"),
                ("plan_text", practice),
            ],
        ),
    ] {
        let res = app.save_section(&link, section, &fields).await;
        assert_eq!(res.status, 303, "{section}: {}", res.body);
    }
    assert_eq!(app.submit(&link).await.status, 303);
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    app.login(ADMIN.0, ADMIN.1).await;
    let md = app
        .get("/admin/surveys/fixture/results/compendium.md")
        .await;
    assert_eq!(md.status, 200);
    let headings: Vec<&str> = md.body.lines().filter(|l| l.starts_with("### ")).collect();
    assert_eq!(headings.len(), 1, "one practice, one heading: {}", md.body);
    assert!(headings[0].contains("Northern Europe"), "{}", md.body);
    assert!(!md.body.contains("<script"), "{}", md.body);
    assert!(!md.body.contains("](javascript"), "{}", md.body);
    assert!(md.body.contains("\\#\\#\\# Philippines"), "{}", md.body);
    app.stop().await;
}

async fn csrf_tokens_are_bound_rotated_and_origin_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anna = app.issue_token("fixture", "SWE", "Anna");
    let maria = app.issue_token("fixture", "PHL", "Maria");
    // A made-up cookie and field that are equal are not a token.
    let forged = "ab".repeat(32);
    let res = app
        .client
        .post(format!("{}{anna}/s/basics", app.address))
        .header("cookie", format!("coherence_csrf={forged}"))
        .form(&[("_csrf", forged.as_str()), ("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    // A token from one link's page does not work for another link.
    let form = app.get(&format!("{anna}/s/basics")).await;
    let res = app
        .post(
            &format!("{maria}/s/basics"),
            &[("_csrf", &form.hidden("_csrf")), ("name", "x")],
        )
        .await;
    assert_eq!(res.status, 403);
    // Origin: another host, even if a forwarded header claims ours, or another scheme.
    for (origin, forwarded_host) in [
        (
            "http://evil.example",
            Some(app.address.trim_start_matches("http://")),
        ),
        (&*app.address.replace("http://", "https://"), None),
        ("null", None),
    ] {
        let mut req = app
            .client
            .post(format!("{}{anna}/s/basics", app.address))
            .header("origin", origin)
            .form(&[("_csrf", form.hidden("_csrf").as_str()), ("name", "x")]);
        if let Some(h) = forwarded_host {
            req = req
                .header("x-forwarded-host", h)
                .header("forwarded", format!("host={h}"));
        }
        assert_eq!(req.send().await.unwrap().status().as_u16(), 403, "{origin}");
    }
    let ok = app
        .client
        .post(format!("{}{anna}/s/basics", app.address))
        .header("origin", &app.address)
        .form(&[
            ("_csrf", form.hidden("_csrf").as_str()),
            ("_version", "0"),
            ("name", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 303, "our own origin is accepted");
    // Sign-in replaces the secret: a token from before no longer works after.
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    let before = app.get("/admin/login").await.hidden("_csrf");
    assert_eq!(app.login(ADMIN.0, ADMIN.1).await.status, 303);
    let res = app.post("/admin/logout", &[("_csrf", &before)]).await;
    assert_eq!(res.status, 403, "a token from before sign-in is refused");
    let dashboard = app.get("/admin").await;
    let res = app
        .post("/admin/logout", &[("_csrf", &dashboard.hidden("_csrf"))])
        .await;
    assert_eq!(res.status, 303);
    // Under https: __Host- cookies, Secure, and HSTS.
    let https_dir = tempfile::tempdir().unwrap();
    let https = TestApp::start_with(
        fresh_database(backend, https_dir.path()),
        fixtures().join("surveys"),
        std::sync::Arc::new(tempfile::tempdir().unwrap()),
        vec![("COHERENCE_BASE_URL", "https://survey.example.org".into())],
    )
    .await;
    let res = https
        .client
        .get(format!("{}/admin/login", https.address))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-coherence_csrf=")
                && c.contains("Secure")
                && c.contains("Path=/")),
        "{cookies:?}"
    );
    assert_eq!(
        res.headers().get("strict-transport-security").unwrap(),
        "max-age=31536000; includeSubDomains"
    );
    // A post from the configured origin passes the origin check (and fails on the token only
    // because this client holds no Secure cookie over plain http).
    https.stop().await;
    app.stop().await;
}

/// The real server trusting a proxy on loopback, so a test can speak for many addresses
/// through X-Forwarded-For.
async fn app_behind_a_local_proxy(backend: Backend) -> TestApp {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = fresh_database(backend, dir.path());
    let proxies = vec![("COHERENCE_TRUSTED_PROXIES", "127.0.0.1".into())];
    TestApp::start_with(url, fixtures().join("surveys"), dir, proxies).await
}

async fn rate_limits_count_per_account_address_and_link(backend: Backend) {
    let app = app_behind_a_local_proxy(backend).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    app.add_user(
        "owner@gfmd.example.org",
        "a long owner passphrase",
        "owner",
        &["fixture"],
    );
    // The owner signs in once from this browser: it becomes a known browser of the account.
    let owner = app.clone_with_new_client();
    assert_eq!(
        owner
            .login("owner@gfmd.example.org", "a long owner passphrase")
            .await
            .status,
        303
    );
    // An attacker behind the proxy guesses the owner's password from changing addresses.
    let mut statuses = Vec::new();
    for i in 0..12 {
        let page = app.get("/admin/login").await;
        let res = app
            .client
            .post(format!("{}/admin/login", app.address))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .form(&[
                ("_csrf", page.hidden("_csrf").as_str()),
                ("email", "owner@gfmd.example.org"),
                ("password", "not the password at all"),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(
        &statuses[10..],
        &[429; 2],
        "per account, whatever the address"
    );
    // The owner's known browser still gets in; a new browser with the right password waits.
    assert_eq!(
        owner
            .login("owner@gfmd.example.org", "a long owner passphrase")
            .await
            .status,
        303
    );
    let stranger = app.clone_with_new_client();
    assert_eq!(
        stranger
            .login("owner@gfmd.example.org", "a long owner passphrase")
            .await
            .status,
        429
    );
    // Another account is not affected; the address limit is separate from the account's.
    assert_eq!(stranger.login(ADMIN.0, ADMIN.1).await.status, 303);
    // Unknown links: counted per address as the proxy reports it.
    let fake = format!("/r/{}", "cd".repeat(24));
    let mut limited_at = None;
    for i in 0..25 {
        let res = app
            .client
            .get(format!("{}{fake}", app.address))
            .header("x-forwarded-for", "198.51.100.9")
            .send()
            .await
            .unwrap();
        if res.status().as_u16() == 429 {
            limited_at = Some(i);
            break;
        }
    }
    assert_eq!(limited_at, Some(20), "the 21st unknown link is refused");
    let other = app
        .client
        .get(format!("{}{fake}", app.address))
        .header("x-forwarded-for", "198.51.100.10")
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status().as_u16(),
        404,
        "another client behind the proxy is not blocked"
    );
    // A valid link from the blocked address works.
    let link = app.issue_token("fixture", "SWE", "Anna");
    let res = app
        .client
        .get(format!("{}{link}", app.address))
        .header("x-forwarded-for", "198.51.100.9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // Per link: more saves in a minute than a person makes are refused.
    let form = app.get(&format!("{link}/s/basics")).await;
    let mut last = 0;
    for i in 0..61 {
        let version = app
            .get(&format!("{link}/s/basics"))
            .await
            .hidden("_version");
        last = app
            .post(
                &format!("{link}/s/basics"),
                &[
                    ("_csrf", &form.hidden("_csrf")),
                    ("_version", &version),
                    ("name", &format!("Anna {i}")),
                ],
            )
            .await
            .status;
        if last == 429 {
            assert_eq!(i, 60, "the 61st save in a minute is refused");
            break;
        }
    }
    assert_eq!(last, 429);
    app.stop().await;
}

async fn revoked_replaced_and_expired_links_say_so(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = app.issue_token("fixture", "SWE", "Anna");
    let b = app.issue_token_with(&[
        "--survey",
        "fixture",
        "--country",
        "SWE",
        "--name",
        "Berit",
        "--email",
        "Berit@Gov.se",
    ]);
    assert_eq!(
        app.save_section(&a, "basics", &[("name", "Anna")])
            .await
            .status,
        303
    );
    // Revoke one link by itself.
    let out = app.cli(
        &[
            "token",
            "revoke",
            "--link",
            &format!("https://survey.example.org{a}"),
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 link(s) revoked"));
    let page = app.get(&a).await;
    assert_eq!(page.status, 410);
    assert!(
        page.body.contains("This link no longer works"),
        "{}",
        page.body
    );
    assert_eq!(app.get(&format!("{a}/s/basics")).await.status, 410);
    // The other official's link still works, and sees the saved answer.
    let form = app.get(&format!("{b}/s/basics")).await;
    assert_eq!(form.status, 200);
    assert_eq!(form.field_value("name").as_deref(), Some("Anna"));
    // Revoke by country and email; the listing shows both revoked.
    let out = app.cli(
        &[
            "token",
            "revoke",
            "--survey",
            "fixture",
            "--country",
            "SWE",
            "--email",
            "BERIT@gov.se",
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 link(s) revoked"));
    assert_eq!(app.get(&b).await.status, 410);
    let list = app.cli(
        &["token", "list", "--survey", "fixture", "--country", "SWE"],
        None,
    );
    let list = String::from_utf8_lossy(&list.stdout);
    assert_eq!(list.matches("revoked").count(), 2, "{list}");
    // Expiry: a link with an end date works until then; a date in the past is refused.
    let today = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    let c = app.issue_token_with(&[
        "--survey",
        "fixture",
        "--country",
        "SWE",
        "--expires",
        &today,
    ]);
    assert_eq!(app.get(&c).await.status, 200);
    let out = app.cli(
        &[
            "token",
            "issue",
            "--survey",
            "fixture",
            "--country",
            "SWE",
            "--expires",
            "2001-01-01",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--expires"));
    {
        use coherence::db::schema::access_tokens;
        use diesel::prelude::*;
        // Moves the links' expiry into the past by hand.
        let mut conn = crate::helpers::writable_conn(&app.database_url);
        diesel::update(access_tokens::table.filter(access_tokens::expires_at.is_not_null()))
            .set(
                access_tokens::expires_at
                    .eq(chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1)),
            )
            .execute(&mut conn)
            .unwrap();
    }
    let page = app.get(&c).await;
    assert_eq!(page.status, 410);
    assert!(page.body.contains("expired"), "{}", page.body);
    app.stop().await;
}

async fn deadline_extension_refuses_dates_out_of_range(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    app.login(ADMIN.0, ADMIN.1).await;
    let page = app.get("/admin/surveys/fixture").await;
    let csrf = page.hidden("_csrf");
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    for bad in [
        "+99999-01-01",
        "0000-01-01",
        "2200-01-01",
        yesterday.as_str(),
        "soon",
    ] {
        let res = app
            .post(
                "/admin/surveys/fixture/countries/SWE/deadline",
                &[("_csrf", &csrf), ("closes", bad)],
            )
            .await;
        assert_eq!(res.status, 422, "{bad}");
        assert!(
            res.body.contains("from today to 2 years ahead"),
            "{bad}: {}",
            res.body
        );
    }
    let soon = (chrono::Utc::now().date_naive() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let res = app
        .post(
            "/admin/surveys/fixture/countries/SWE/deadline",
            &[("_csrf", &csrf), ("closes", &soon)],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    app.stop().await;
}

/// The real server with a body timeout of one second, so the slow-body tests run quickly.
async fn app_with_one_second_body_timeout() -> TestApp {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = fresh_database(Backend::Sqlite, dir.path());
    let timeout = vec![("COHERENCE_BODY_TIMEOUT_SECS", "1".into())];
    TestApp::start_with(url, fixtures().join("surveys"), dir, timeout).await
}

/// A request whose body never arrives is dropped after the body timeout, not held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_body_is_dropped() {
    let app = app_with_one_second_body_timeout().await;
    let address = app.address.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let answer = tokio::task::spawn_blocking(move || {
        raw_request(
            &address,
            "POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n_csrf=",
            Duration::from_secs(15),
        )
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    app.stop().await;
}

/// The contacts form reads a few parts at most, each bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_import_bounds_extra_multipart_fields() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    app.login(ADMIN.0, ADMIN.1).await;
    let page = app.get("/admin/surveys/fixture").await;
    let mut form = reqwest::multipart::Form::new().text("_csrf", page.hidden("_csrf"));
    for i in 0..50 {
        form = form.text(format!("extra{i}"), "x".repeat(100));
    }
    let res = app
        .client
        .post(format!("{}/admin/surveys/fixture/contacts", app.address))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let big = reqwest::multipart::Form::new()
        .text("_csrf", page.hidden("_csrf"))
        .text("note", "x".repeat(10_000));
    let res = app
        .client
        .post(format!("{}/admin/surveys/fixture/contacts", app.address))
        .multipart(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    app.stop().await;
}

async fn links_are_revoked_from_the_country_page_by_its_owners_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anna = app.issue_token_with(&[
        "--survey",
        "fixture",
        "--country",
        "SWE",
        "--name",
        "Anna <b>Svensson</b>",
    ]);
    let berit = app.issue_token("fixture", "SWE", "Berit");
    assert_eq!(app.get(&anna).await.status, 200);
    // Focal points and anonymous users are sent to sign in; another survey's owner is refused.
    let path = "/admin/surveys/fixture/countries/SWE";
    let res = app.get(path).await;
    assert_eq!(res.status, 303);
    app.add_user(
        "other@gfmd.example.org",
        "a long owner passphrase",
        "owner",
        &["closed"],
    );
    let other = app.clone_with_new_client();
    other
        .login("other@gfmd.example.org", "a long owner passphrase")
        .await;
    assert_eq!(other.get(path).await.status, 403);
    app.add_user(
        "owner@gfmd.example.org",
        "a long owner passphrase",
        "owner",
        &["fixture"],
    );
    assert_eq!(
        app.login("owner@gfmd.example.org", "a long owner passphrase")
            .await
            .status,
        303
    );
    let page = app.get(path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Anna &lt;b&gt;Svensson&lt;/b&gt;"),
        "holder escaped: {}",
        page.body
    );
    assert_eq!(
        page.body.matches("/revoke\"").count(),
        2,
        "a revoke form per live link"
    );
    let status = app.get("/admin/surveys/fixture").await;
    assert!(
        status
            .body
            .contains("href=\"/admin/surveys/fixture/countries/SWE\""),
        "the status table links to it"
    );
    // Revoke Anna's link: the form names the link by its id, never by the secret.
    let action = page
        .body
        .split("<tr>")
        .find(|row| row.contains("Anna &lt;b&gt;"))
        .and_then(|row| row.split("action=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    assert!(!action.contains(anna.trim_start_matches("/r/")));
    // Another owner cannot use it, even with a form of their own.
    let theirs = other.get("/admin").await.hidden("_csrf");
    assert_eq!(other.post(&action, &[("_csrf", &theirs)]).await.status, 403);
    let res = app.post(&action, &[("_csrf", &page.hidden("_csrf"))]).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.contains("was revoked"), "{}", res.body);
    assert!(
        res.body.contains("Revoked") && res.body.contains("owner@gfmd.example.org"),
        "{}",
        res.body
    );
    let anna_status = app.get(&anna).await.status;
    let berit_status = app.get(&berit).await.status;
    assert_eq!((anna_status, berit_status), (410, 200));
    // Revoking it again changes nothing and says so; a link of another country is not found.
    let again = app.post(&action, &[("_csrf", &page.hidden("_csrf"))]).await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("had already ended"), "{}", again.body);
    let elsewhere = action.replace("/countries/SWE/", "/countries/PHL/");
    assert_eq!(
        app.post(&elsewhere, &[("_csrf", &page.hidden("_csrf"))])
            .await
            .status,
        404
    );
    app.stop().await;
}

async fn sign_in_counters_stay_bounded_and_refunds_go_where_counted(backend: Backend) {
    use coherence::db::schema::attempt_counters;
    use diesel::prelude::*;
    let app = app_behind_a_local_proxy(backend).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    // The administrator's own browser signs in once: a known browser from now on.
    let own = app.clone_with_new_client();
    assert_eq!(own.login(ADMIN.0, ADMIN.1).await.status, 303);
    let attempt = |email: String, password: &'static str, from: &'static str, client: TestApp| async move {
        let page = client.get("/admin/login").await;
        client
            .client
            .post(format!("{}/admin/login", client.address))
            .header("x-forwarded-for", from)
            .form(&[
                ("_csrf", page.hidden("_csrf").as_str()),
                ("email", email.as_str()),
                ("password", password),
            ])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    // One address spends its budget on made-up accounts.
    for i in 0..30 {
        let status = attempt(
            format!("nobody{i}@x.org"),
            "a wrong password",
            "203.0.113.50",
            app.clone_handle(),
        )
        .await;
        assert_eq!(status, 401, "attempt {i}");
    }
    let url = coherence::db::DbUrl::parse(&app.database_url).unwrap();
    let pool = coherence::db::connect(&url, 1).unwrap();
    let rows = |pool: &coherence::db::Pool| -> i64 {
        attempt_counters::table
            .count()
            .get_result(&mut pool.get().unwrap())
            .unwrap()
    };
    let before = rows(&pool);
    // Past the address's limit, more made-up accounts add no counters.
    for i in 30..80 {
        let status = attempt(
            format!("nobody{i}@x.org"),
            "a wrong password",
            "203.0.113.50",
            app.clone_handle(),
        )
        .await;
        assert_eq!(status, 429);
    }
    assert_eq!(rows(&pool), before, "a refused address adds no rows");
    // Signing in from a known browser at that address gives back only the browser's attempt:
    // the address stays blocked for the made-up accounts.
    for _ in 0..3 {
        assert_eq!(
            attempt(
                ADMIN.0.to_string(),
                ADMIN.1,
                "203.0.113.50",
                own.clone_handle()
            )
            .await,
            303
        );
    }
    assert_eq!(
        attempt(
            "nobody99@x.org".to_string(),
            "a wrong password",
            "203.0.113.50",
            app.clone_handle()
        )
        .await,
        429
    );
    app.stop().await;
}

/// A body trickling one byte at a time is dropped after six idle timeouts in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_request_body_is_dropped_at_its_deadline() {
    let app = app_with_one_second_body_timeout().await;
    let address = app.address.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
        stream
            .write_all(b"POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            // One byte every 0.4 s: never idle for the 1 s timeout.
            if stream.write_all(b"a").is_err() {
                break;
            }
            let mut buf = [0u8; 4096];
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    break;
                }
                Err(_) => {}
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(12),
        "{took:?}"
    );
    app.stop().await;
}
