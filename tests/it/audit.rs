//! The audit log: what a realistic sequence over HTTP records, `audit verify` and `audit
//! export` through the real binary, each kind of tampering found at the right entry, and one
//! unbroken chain under concurrent saves. Every test runs on SQLite and PostgreSQL.

use chrono::Duration;
use coherence::audit::{self, Break, BreakReason};
use coherence::db::audit::{entries, entry_hash, AuditRow};
use coherence::db::schema::{audit_heads, audit_log};
use coherence::db::{self, DbConn, DbUrl};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::helpers::{fresh_database, writable_conn, Backend, SmtpServer, TestApp};
use crate::on_both_backends;

on_both_backends!(
    the_log_records_the_cycle_and_finds_each_tampering,
    concurrent_saves_make_one_unbroken_chain,
    long_chains_are_read_a_page_at_a_time,
    the_service_seals_what_it_records_by_itself,
    sealers_side_by_side_chain_each_entry_once,
    a_stopped_sealer_chains_what_was_left_and_ends_at_once,
);

const ADMIN: (&str, &str) = ("admin@gfmd.example.org", "a long admin passphrase");

/// A connection of our own to the app's database.
fn direct(app: &TestApp) -> db::Pool {
    db::connect(&DbUrl::parse(&app.database_url).unwrap(), 1).unwrap()
}

fn chain(conn: &mut DbConn) -> Vec<AuditRow> {
    entries(conn, Some("fixture")).unwrap()
}

/// (kind, who: link/user/cli/system) of each entry, in order.
fn shape(rows: &[AuditRow]) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| {
            let who = r.actor.split(':').next().unwrap_or_default();
            (r.kind.clone(), who.to_string())
        })
        .collect()
}

fn detail(row: &AuditRow) -> serde_json::Value {
    serde_json::from_str(&row.detail).unwrap()
}

/// The append-only triggers, dropped before tampering: a change is never quiet.
fn drop_triggers(conn: &mut DbConn, backend: Backend) {
    let sql = match backend {
        Backend::Sqlite => "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
        Backend::Postgres => "DROP TRIGGER audit_log_no_change ON audit_log;",
    };
    conn.batch_execute(sql).unwrap();
}

/// Tamper inside a transaction that is then rolled back, so each case starts from the same
/// untouched log (as a fresh copy of the database would); what `verify` found meanwhile.
fn tampered(
    conn: &mut DbConn,
    backend: Backend,
    tamper: impl FnOnce(&mut DbConn),
) -> audit::Verified {
    let mut found = None;
    let _ = conn.transaction::<(), diesel::result::Error, _>(|c| {
        drop_triggers(c, backend);
        tamper(c);
        found = Some(audit::verify(c, None).unwrap());
        Err(diesel::result::Error::RollbackTransaction)
    });
    found.unwrap()
}

fn broken_at(v: &audit::Verified, seq: i64, reason: BreakReason) {
    assert_eq!(
        v.broken,
        Some(Break {
            chain: "fixture".into(),
            seq,
            reason
        }),
        "{:?}",
        v.broken.as_ref().map(ToString::to_string)
    );
}

/// The entry of the survey's chain with this number.
fn entry(seq: i64) -> diesel::dsl::Find<audit_log::table, (&'static str, i64)> {
    audit_log::table.find(("fixture", seq))
}

async fn the_log_records_the_cycle_and_finds_each_tampering(backend: Backend) {
    let smtp = SmtpServer::start(&[], 0);
    let app = TestApp::spawn_with_mail(backend, smtp.port).await;
    app.add_user(ADMIN.0, ADMIN.1, "admin", &[]);
    assert_eq!(app.login(ADMIN.0, ADMIN.1).await.status, 303);
    app.upload_contacts(
        "fixture",
        "country,name,email,language,office\nSWE,Anna Berg,anna@gov.se,en,MFA\n",
    )
    .await;

    // The secretariat issues a link; the focal point saves twice and submits; the secretariat
    // reopens the response (which emails the contact) and downloads an export.
    let page = app.get("/admin/surveys/fixture/countries/SWE").await;
    let csrf = page.hidden("_csrf");
    let issued = app
        .post(
            "/admin/surveys/fixture/countries/SWE/links",
            &[("_csrf", &csrf), ("name", "Lars Nilsson")],
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let marker = "id=\"new-link\" readonly value=\"";
    let start = issued.body.find(marker).expect("the new link") + marker.len();
    let url = &issued.body[start..start + issued.body[start..].find('"').unwrap()];
    let link = url.trim_start_matches(&app.address).to_string();
    let secret = link.trim_start_matches("/r/").to_string();
    let saved = app
        .save_section(&link, "basics", &[("name", "MFA"), ("active", "yes")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let saved = app
        .save_section(&link, "plans", &[("has_plan", "no")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let submitted = app.submit(&link).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let page = app.get("/admin/surveys/fixture/countries/SWE").await;
    let reopened = app
        .post(
            "/admin/surveys/fixture/countries/SWE/reopen",
            &[("_csrf", &page.hidden("_csrf"))],
        )
        .await;
    assert_eq!(reopened.status, 200, "{}", reopened.body);
    let mail = smtp.wait_for(1).await;
    assert_eq!(mail[0].to, "anna@gov.se");
    // Writable: the log is tampered with below.
    let mut conn = writable_conn(&app.database_url);
    // The worker records the delivery once the server took the message.
    for _ in 0..100 {
        if chain(&mut conn).iter().any(|r| r.kind == "email_delivered") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let export = app.get("/admin/surveys/fixture/export.csv?drafts=1").await;
    assert_eq!(export.status, 200);
    // The link revoked on the country page; another issued and revoked by the command line.
    let link_id = detail(&chain(&mut conn)[0])["link"]
        .as_str()
        .unwrap()
        .to_string();
    let page = app.get("/admin/surveys/fixture/countries/SWE").await;
    let action = format!("/admin/surveys/fixture/countries/SWE/links/{link_id}/revoke");
    let revoked = app.post(&action, &[("_csrf", &page.hidden("_csrf"))]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let other = app.issue_token("fixture", "SWE", "Per");
    let out = app.cli(&["token", "revoke", "--link", &other], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let rows = chain(&mut conn);
    let pair = |k: &str, w: &str| (k.to_string(), w.to_string());
    assert_eq!(
        shape(&rows),
        vec![
            pair("link_issued", "user"),
            pair("saved", "link"),
            pair("saved", "link"),
            pair("submitted", "link"),
            pair("reopened", "user"),
            pair("email_queued", "system"),
            pair("email_delivered", "system"),
            pair("export_downloaded", "user"),
            pair("link_revoked", "user"),
            pair("link_issued", "cli"),
            pair("link_revoked", "cli"),
        ]
    );
    assert_eq!(detail(&rows[8])["link"], link_id.as_str());
    assert_eq!(detail(&rows[10])["link"], detail(&rows[9])["link"]);
    assert!(rows
        .iter()
        .all(|r| r.country_iso3 == "SWE" || r.kind == "export_downloaded"));
    // The details: the link by its id, the questions saved, the email's kind and recipient,
    // the export's format and filter; never the link's secret nor its hash.
    assert_eq!(detail(&rows[0])["role"], "coordinator");
    assert_eq!(rows[1].actor, format!("link:{link_id}"));
    assert_eq!(detail(&rows[1])["section"], "basics");
    let changed = detail(&rows[1])["changed"].clone();
    assert!(
        changed.as_array().unwrap().contains(&"name".into()),
        "{changed}"
    );
    assert_eq!(detail(&rows[2])["section"], "plans");
    assert_eq!(detail(&rows[3])["version"], 1);
    let queued = rows.iter().find(|r| r.kind == "email_queued").unwrap();
    assert_eq!(detail(queued)["kind"], "reopened");
    assert_eq!(detail(queued)["recipient"], "anna@gov.se");
    let delivered = rows.iter().find(|r| r.kind == "email_delivered").unwrap();
    assert_eq!(detail(delivered)["message"], detail(queued)["message"]);
    let exported = rows.iter().find(|r| r.kind == "export_downloaded").unwrap();
    assert_eq!(detail(exported)["format"], "csv");
    assert_eq!(detail(exported)["filter"], "drafts=1");
    for secret in [secret.as_str(), other.trim_start_matches("/r/")] {
        let hashed = coherence::access::hash_token(secret);
        for r in &rows {
            assert!(!r.detail.contains(secret) && !r.detail.contains(&hashed));
            assert!(!r.actor.contains(secret));
        }
    }
    for r in &rows {
        assert!(!r.detail.contains("Please") && !r.detail.contains("http"));
    }

    // `audit verify` passes and prints the head hash to note elsewhere.
    let out = app.cli(&["audit", "verify"], None);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = rows.last().unwrap().hash.clone();
    assert!(
        stdout.contains(&format!("fixture: {} entries, head {head}", rows.len())),
        "{stdout}"
    );
    assert!(stdout.contains("audit log verified"), "{stdout}");

    // `audit export`: one JSON object a line, the entries as stored, from which anyone can
    // recompute each hash.
    let out = app.cli(&["audit", "export", "fixture"], None);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), rows.len());
    for (line, row) in lines.iter().zip(&rows) {
        assert_eq!(line["chain"], "fixture");
        assert_eq!(line["seq"], row.seq);
        assert_eq!(line["country"], row.country_iso3.as_str());
        assert_eq!(line["actor"], row.actor.as_str());
        assert_eq!(line["kind"], row.kind.as_str());
        assert_eq!(line["detail"], detail(row));
        assert_eq!(line["prev_hash"], row.prev_hash.as_str());
        assert_eq!(line["hash"], row.hash.as_str());
        let at = line["at"].as_str().unwrap();
        assert!(at.ends_with('Z'), "{at}");
        let at = chrono::DateTime::parse_from_rfc3339(at)
            .unwrap()
            .naive_utc();
        assert_eq!(at, row.at);
        let recomputed = entry_hash(
            "fixture",
            row.seq,
            at,
            line["country"].as_str().unwrap(),
            line["actor"].as_str().unwrap(),
            line["kind"].as_str().unwrap(),
            &line["detail"].to_string(),
            line["prev_hash"].as_str().unwrap(),
        );
        assert_eq!(recomputed, row.hash, "{line}");
    }
    let file = app.dir.path().join("audit.jsonl");
    let out = app.cli(&["audit", "export", "--out", file.to_str().unwrap()], None);
    assert!(out.status.success());
    let written = std::fs::read_to_string(&file).unwrap();
    // Every chain: the survey's, and the sign-ins that concern no survey.
    let all = entries(&mut direct(&app).get().unwrap(), None).unwrap();
    assert_eq!(written.lines().count(), all.len());
    assert!(all.len() > rows.len(), "the sign-in is recorded too");

    // The database itself refuses to change or delete an entry.
    for sql in [
        "UPDATE audit_log SET detail = '{}' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 2",
    ] {
        let refused = conn.transaction::<(), diesel::result::Error, _>(|c| {
            diesel::sql_query(sql).execute(c)?;
            Ok(())
        });
        let error = refused.expect_err(sql).to_string();
        assert!(error.contains("append-only"), "{error}");
    }
    assert_eq!(chain(&mut conn), rows);

    // Each kind of tampering, each on the untouched log, found at the right entry.
    let n = rows.len() as i64;
    let row = |seq: i64| rows[seq as usize - 1].clone();
    let v = tampered(&mut conn, backend, |c| {
        diesel::update(entry(3))
            .set(audit_log::detail.eq(r#"{"version":2}"#))
            .execute(c)
            .unwrap();
    });
    broken_at(&v, 3, BreakReason::Altered);
    // Only the chain of what concerns no survey (the sign-in), checked before the survey's.
    assert!(
        v.chains.iter().all(|c| c.chain.is_empty()),
        "{:?}",
        v.chains
    );
    for (seq, field) in [(2, "actor"), (4, "kind"), (5, "at"), (6, "country")] {
        let v = tampered(&mut conn, backend, |c| {
            let q = diesel::update(entry(seq));
            match field {
                "actor" => q.set(audit_log::actor.eq("user:someone-else")).execute(c),
                "kind" => q.set(audit_log::kind.eq("accepted")).execute(c),
                "at" => q
                    .set(audit_log::at.eq(row(seq).at - Duration::days(1)))
                    .execute(c),
                _ => q.set(audit_log::country_iso3.eq("NOR")).execute(c),
            }
            .unwrap();
        });
        broken_at(&v, seq, BreakReason::Altered);
    }
    // A row deleted in the middle: the next one no longer follows.
    let v = tampered(&mut conn, backend, |c| {
        diesel::delete(entry(4)).execute(c).unwrap();
    });
    broken_at(&v, 5, BreakReason::Unlinked { after: 3 });
    // Two rows reordered by their numbers.
    let v = tampered(&mut conn, backend, |c| {
        for (from, to) in [(4, -4), (5, 4), (-4, 5)] {
            diesel::update(entry(from))
                .set(audit_log::seq.eq(to))
                .execute(c)
                .unwrap();
        }
    });
    broken_at(&v, 4, BreakReason::Unlinked { after: 3 });
    // Two rows reordered by their content, numbers and hashes left in place.
    let v = tampered(&mut conn, backend, |c| {
        for (at, from) in [(2, row(3)), (3, row(2))] {
            diesel::update(entry(at))
                .set((
                    audit_log::at.eq(from.at),
                    audit_log::actor.eq(&from.actor),
                    audit_log::kind.eq(&from.kind),
                    audit_log::detail.eq(&from.detail),
                ))
                .execute(c)
                .unwrap();
        }
    });
    broken_at(&v, 2, BreakReason::Altered);
    // The last row deleted: the head says there was one more.
    let v = tampered(&mut conn, backend, |c| {
        diesel::delete(entry(n)).execute(c).unwrap();
    });
    broken_at(&v, n, BreakReason::Missing { head: n });
    // A forged row appended, well hashed and linked, but the head not updated.
    let v = tampered(&mut conn, backend, |c| {
        let last = row(n);
        let at = last.at + Duration::seconds(1);
        let detail = r#"{"format":"json","filter":""}"#;
        let hash = entry_hash(
            "fixture",
            n + 1,
            at,
            "",
            "cli",
            "export_downloaded",
            detail,
            &last.hash,
        );
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::chain.eq("fixture"),
                audit_log::seq.eq(n + 1),
                audit_log::at.eq(at),
                audit_log::country_iso3.eq(""),
                audit_log::actor.eq("cli"),
                audit_log::kind.eq("export_downloaded"),
                audit_log::detail.eq(detail),
                audit_log::prev_hash.eq(&last.hash),
                audit_log::hash.eq(&hash),
            ))
            .execute(c)
            .unwrap();
    });
    broken_at(&v, n + 1, BreakReason::BeyondHead { head: n });
    // The head altered: its hash, its number, or the head gone.
    let v = tampered(&mut conn, backend, |c| {
        diesel::update(audit_heads::table.find("fixture"))
            .set(audit_heads::hash.eq(&row(n - 1).hash))
            .execute(c)
            .unwrap();
    });
    broken_at(&v, n, BreakReason::HeadMismatch);
    let v = tampered(&mut conn, backend, |c| {
        diesel::update(audit_heads::table.find("fixture"))
            .set(audit_heads::seq.eq(n - 2))
            .execute(c)
            .unwrap();
    });
    broken_at(&v, n - 2, BreakReason::HeadMismatch);
    // The head moved back, consistently, to disown the last entries.
    let v = tampered(&mut conn, backend, |c| {
        diesel::update(audit_heads::table.find("fixture"))
            .set((
                audit_heads::seq.eq(n - 2),
                audit_heads::hash.eq(&row(n - 2).hash),
            ))
            .execute(c)
            .unwrap();
    });
    broken_at(&v, n - 1, BreakReason::BeyondHead { head: n - 2 });
    let v = tampered(&mut conn, backend, |c| {
        diesel::delete(audit_heads::table.find("fixture"))
            .execute(c)
            .unwrap();
    });
    broken_at(&v, 1, BreakReason::NoHead);
    // What the chain cannot see by itself: every entry from an altered one onward rehashed,
    // head included. Only the head hash noted elsewhere (printed by `audit verify`) shows it.
    let v = tampered(&mut conn, backend, |c| {
        let mut prev = row(4).hash;
        for seq in 5..=n {
            let mut r = row(seq);
            if seq == 5 {
                r.actor = "user:someone-else".into();
            }
            r.prev_hash = prev;
            r.hash = r.computed_hash();
            diesel::update(entry(seq))
                .set((
                    audit_log::actor.eq(&r.actor),
                    audit_log::prev_hash.eq(&r.prev_hash),
                    audit_log::hash.eq(&r.hash),
                ))
                .execute(c)
                .unwrap();
            prev = r.hash;
        }
        diesel::update(audit_heads::table.find("fixture"))
            .set(audit_heads::hash.eq(&prev))
            .execute(c)
            .unwrap();
    });
    assert_eq!(v.broken, None);
    assert_ne!(v.chains[0].head_hash, head, "the noted head hash differs");
    // Every case was rolled back: the log verifies again.
    assert_eq!(chain(&mut conn), rows);
    assert_eq!(audit::verify(&mut conn, None).unwrap().broken, None);

    // Tampering for good, the binary says where, on one line, and exits 1.
    conn.transaction::<(), diesel::result::Error, _>(|c| {
        drop_triggers(c, backend);
        diesel::update(entry(3))
            .set(audit_log::detail.eq(r#"{"version":2}"#))
            .execute(c)?;
        Ok(())
    })
    .unwrap();
    drop(conn);
    let out = app.cli(&["audit", "verify", "fixture"], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let line = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        line,
        "error: the audit log does not verify: chain fixture, entry 3: altered: \
         its content does not give its stored hash",
        "{stderr}"
    );
    app.stop().await;
}

/// 16 links of 16 countries save at the same moment: every save is recorded, in one chain
/// with no gap and no fork.
async fn concurrent_saves_make_one_unbroken_chain(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let countries = [
        "SWE", "NOR", "DNK", "FIN", "FRA", "DEU", "ITA", "ESP", "PRT", "GBR", "IRL", "NLD", "BEL",
        "AUT", "CHE", "POL",
    ];
    let links: Vec<String> = countries
        .iter()
        .map(|c| app.issue_token("fixture", c, "Focal point"))
        .collect();
    // Meanwhile a secretariat verifies the log, again and again: it never sees a chain
    // half-written.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pool = direct(&app);
    let checker = {
        let (stop, pool) = (stop.clone(), pool.clone());
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().unwrap();
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) || runs == 0 {
                let v = audit::verify(&mut conn, None).unwrap();
                assert_eq!(
                    v.broken,
                    None,
                    "{:?}",
                    v.broken.as_ref().map(ToString::to_string)
                );
                runs += 1;
            }
            runs
        })
    };
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(links.len()));
    let mut tasks = Vec::new();
    for link in links {
        let client = app.clone_with_new_client();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let form = client.get(&format!("{link}/s/basics")).await;
            assert_eq!(form.status, 200, "{}", form.body);
            barrier.wait().await;
            let saved = client
                .post_form_from(
                    &form,
                    &format!("{link}/s/basics"),
                    &[("name", "MFA"), ("active", "yes")],
                )
                .await;
            assert_eq!(saved.status, 303, "{}", saved.body);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(checker.await.unwrap() > 0);
    let mut conn = pool.get().unwrap();
    let rows = chain(&mut conn);
    let saves: Vec<&AuditRow> = rows.iter().filter(|r| r.kind == "saved").collect();
    assert_eq!(saves.len(), 16);
    let mut saved_by: Vec<&str> = saves.iter().map(|r| r.country_iso3.as_str()).collect();
    saved_by.sort_unstable();
    let mut expected = countries.to_vec();
    expected.sort_unstable();
    assert_eq!(saved_by, expected);
    assert_eq!(rows.len(), 32, "16 links issued and 16 saves");
    assert_eq!(
        rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=32).collect::<Vec<i64>>()
    );
    let v = audit::verify(&mut conn, Some("fixture")).unwrap();
    assert_eq!(v.broken, None);
    assert_eq!(v.chains[0].entries, 32);
    app.stop().await;
}

/// Chains longer than a page (1,000 entries), side by side: `verify` and `export` walk across
/// the pages and the chains without losing or repeating an entry, and a break on a later page
/// is still named.
async fn long_chains_are_read_a_page_at_a_time(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::parse(&fresh_database(backend, dir.path())).unwrap();
    let pool = db::connect(&url, 1).unwrap();
    // Writable: the log is tampered with below.
    let mut conn = pool.open_apart().unwrap();
    let start = chrono::Utc::now().naive_utc();
    conn.transaction::<(), diesel::result::Error, _>(|c| {
        for i in 0..2300i64 {
            let survey = if i % 3 == 2 { "b" } else { "a" };
            let event = audit::Event {
                survey_id: survey,
                country_iso3: "SWE",
                actor: audit::Actor::System,
                kind: audit::AuditKind::EmailQueued,
                detail: serde_json::json!({ "n": i }),
            };
            audit::record(c, &event, start + Duration::milliseconds(i))?;
        }
        Ok(())
    })
    .unwrap();
    let v = audit::verify(&mut conn, None).unwrap();
    assert_eq!(v.broken, None);
    let counts: Vec<(&str, i64)> = v
        .chains
        .iter()
        .map(|c| (c.chain.as_str(), c.entries))
        .collect();
    assert_eq!(counts, vec![("a", 1534), ("b", 766)]);
    let mut out = Vec::new();
    assert_eq!(audit::export(&mut conn, None, &mut out).unwrap(), 2300);
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let order: Vec<(String, i64)> = lines
        .iter()
        .map(|l| {
            (
                l["chain"].as_str().unwrap().to_string(),
                l["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, i64)> = (1..=1534)
        .map(|s| ("a".to_string(), s))
        .chain((1..=766).map(|s| ("b".to_string(), s)))
        .collect();
    assert_eq!(order, expected);
    let v = tampered(&mut conn, backend, |c| {
        diesel::update(audit_log::table.find(("a", 1200i64)))
            .set(audit_log::detail.eq(r#"{"n":0}"#))
            .execute(c)
            .unwrap();
    });
    assert_eq!(
        v.broken,
        Some(Break {
            chain: "a".into(),
            seq: 1200,
            reason: BreakReason::Altered
        })
    );
    let v = tampered(&mut conn, backend, |c| {
        diesel::delete(audit_log::table.find(("b", 700i64)))
            .execute(c)
            .unwrap();
    });
    assert_eq!(
        v.broken,
        Some(Break {
            chain: "b".into(),
            seq: 701,
            reason: BreakReason::Unlinked { after: 699 }
        })
    );
}

/// A save records its entry unchained; the running service chains it within seconds, with no
/// reader asking (the table is read directly here, which does not seal).
async fn the_service_seals_what_it_records_by_itself(backend: Backend) {
    use coherence::db::schema::audit_pending;
    let app = TestApp::spawn(backend).await;
    let link = app.issue_token("fixture", "SWE", "Focal point");
    let saved = app
        .save_section(&link, "basics", &[("name", "MFA"), ("active", "yes")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let pool = direct(&app);
    let mut conn = pool.get().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let sealed: Vec<(i64, String)> = audit_log::table
            .filter(audit_log::chain.eq("fixture"))
            .select((audit_log::seq, audit_log::kind))
            .order(audit_log::seq)
            .load(&mut conn)
            .unwrap();
        if sealed.iter().any(|(_, k)| k == "saved") {
            assert_eq!(
                sealed,
                vec![(1, "link_issued".to_string()), (2, "saved".to_string())]
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the save is not chained after 10 s: {sealed:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let waiting: i64 = audit_pending::table.count().get_result(&mut conn).unwrap();
    assert_eq!(waiting, 0);
    assert_eq!(audit::verify(&mut conn, None).unwrap().broken, None);
    app.stop().await;
}

/// A sealer asked to stop between two seals ends at once rather than at the end of its
/// second, and chains what was recorded meanwhile before it goes (as the server does when it
/// shuts down).
async fn a_stopped_sealer_chains_what_was_left_and_ends_at_once(backend: Backend) {
    use coherence::db::schema::audit_pending;
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::parse(&fresh_database(backend, dir.path())).unwrap();
    let pool = db::connect(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let record = |conn: &mut DbConn, n: i64| {
        let event = audit::Event {
            survey_id: "a",
            country_iso3: "SWE",
            actor: audit::Actor::System,
            kind: audit::AuditKind::EmailQueued,
            detail: serde_json::json!({ "n": n }),
        };
        db::transaction(conn, |c| {
            audit::record(c, &event, chrono::Utc::now().naive_utc())
        })
        .unwrap();
    };
    // A first entry, chained by the sealer's seal at its start: from then on it waits its
    // second.
    record(&mut conn, 1);
    let sealer = audit::Sealer::start(pool.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while entries(&mut conn, Some("a")).unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never sealed");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    record(&mut conn, 2);
    let asked = std::time::Instant::now();
    sealer.stop();
    let took = asked.elapsed();
    assert!(
        took < audit::SEAL_EVERY / 2,
        "the sealer took {took:?} to stop"
    );
    let waiting: i64 = audit_pending::table.count().get_result(&mut conn).unwrap();
    assert_eq!(waiting, 0, "the entry recorded last is chained");
    let chained = entries(&mut conn, Some("a")).unwrap();
    assert_eq!(chained.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
}

/// Writers recording into two chains while two sealers (two nodes) chain them: every entry is
/// chained exactly once, each chain numbered without a gap, and the log verifies.
async fn sealers_side_by_side_chain_each_entry_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::parse(&fresh_database(backend, dir.path())).unwrap();
    let pool = db::connect(&url, 6).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut sealers = Vec::new();
    for _ in 0..2 {
        let (pool, stop) = (pool.clone(), stop.clone());
        sealers.push(std::thread::spawn(move || {
            let mut conn = pool.get().unwrap();
            let mut chained = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                chained += audit::seal(&mut conn).unwrap();
            }
            chained
        }));
    }
    let mut writers = Vec::new();
    for w in 0..4i64 {
        let pool = pool.clone();
        writers.push(std::thread::spawn(move || {
            let mut conn = pool.get().unwrap();
            for i in 0..150i64 {
                let survey = if (w + i) % 2 == 0 { "a" } else { "b" };
                let event = audit::Event {
                    survey_id: survey,
                    country_iso3: "SWE",
                    actor: audit::Actor::System,
                    kind: audit::AuditKind::EmailQueued,
                    detail: serde_json::json!({ "writer": w, "n": i }),
                };
                db::transaction(&mut conn, |c| {
                    audit::record(c, &event, chrono::Utc::now().naive_utc())
                })
                .unwrap();
            }
        }));
    }
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let by_sealers: u64 = sealers.into_iter().map(|s| s.join().unwrap()).sum();
    let mut conn = pool.get().unwrap();
    let rest = audit::seal(&mut conn).unwrap();
    assert_eq!(by_sealers + rest, 600);
    let rows = entries(&mut conn, None).unwrap();
    let mut seen: Vec<(i64, i64)> = rows
        .iter()
        .map(|r| {
            let d: serde_json::Value = serde_json::from_str(&r.detail).unwrap();
            (d["writer"].as_i64().unwrap(), d["n"].as_i64().unwrap())
        })
        .collect();
    seen.sort_unstable();
    let expected: Vec<(i64, i64)> = (0..4).flat_map(|w| (0..150).map(move |i| (w, i))).collect();
    assert_eq!(seen, expected, "each entry chained once");
    // Within a chain, one writer's entries keep the order it recorded them in.
    for w in 0..4 {
        for chain in ["a", "b"] {
            let order: Vec<i64> = rows
                .iter()
                .filter(|r| r.chain == chain)
                .map(|r| serde_json::from_str::<serde_json::Value>(&r.detail).unwrap())
                .filter(|d| d["writer"] == w)
                .map(|d| d["n"].as_i64().unwrap())
                .collect();
            assert!(order.windows(2).all(|p| p[0] < p[1]), "{chain}, writer {w}");
        }
    }
    let v = audit::verify(&mut conn, None).unwrap();
    assert_eq!(v.broken, None);
    let counts: Vec<(&str, i64)> = v
        .chains
        .iter()
        .map(|c| (c.chain.as_str(), c.entries))
        .collect();
    assert_eq!(counts, vec![("a", 300), ("b", 300)]);
}
