//! The audit log as an auditor reads it: every change recorded whole (tenant, actor, action,
//! object, outcome) in an unbroken chain, personal data that can be erased without breaking
//! it, and chains written in the first event format that still verify.

mod support;

use std::collections::BTreeSet;

use loop_api::AuditEvent;
use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN_EMAIL, ADMIN_PASSWORD, Caller, Server, USER_PASSWORD, assert_chained};

/// What an event says happened, without its time, details and hashes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Said {
    tenant: String,
    actor: (String, Option<String>),
    action: String,
    object: (String, Option<String>),
    outcome: String,
}

fn said(e: &AuditEvent) -> Said {
    Said {
        tenant: e.tenant_id.clone(),
        actor: (e.actor_kind.to_string(), e.actor_id.clone()),
        action: e.action.clone(),
        object: (e.object_kind.clone(), e.object_id.clone()),
        outcome: e.outcome.to_string(),
    }
}

/// A successful event: `actor` and `object` as (kind, ID).
fn ok(tenant: &str, actor: (&str, &str), action: &str, object: (&str, &str)) -> Said {
    Said {
        tenant: tenant.into(),
        actor: (actor.0.into(), Some(actor.1.into())),
        action: action.into(),
        object: (object.0.into(), Some(object.1.into())),
        outcome: "success".into(),
    }
}

/// The audit log as the provider's administrator reads it, step by step.
struct Log<'a> {
    reader: Caller<'a>,
    known: BTreeSet<(String, u64)>,
}

impl<'a> Log<'a> {
    fn new(reader: Caller<'a>) -> Log<'a> {
        let mut log = Log {
            reader,
            known: BTreeSet::new(),
        };
        log.fresh();
        log
    }

    /// The events recorded since the last look.
    fn fresh(&mut self) -> Vec<AuditEvent> {
        let all = self.reader.audit_events();
        assert_chained(&all);
        let new: Vec<AuditEvent> = all
            .into_iter()
            .filter(|e| !self.known.contains(&(e.tenant_id.clone(), e.seq)))
            .collect();
        self.known
            .extend(new.iter().map(|e| (e.tenant_id.clone(), e.seq)));
        new
    }

    /// Requires `step` to have recorded exactly `want` (in any order), in intact chains.
    fn expect(&mut self, step: &str, want: Vec<Said>) {
        let mut got: Vec<Said> = self.fresh().iter().map(said).collect();
        got.sort();
        let mut want = want;
        want.sort();
        assert_eq!(got, want, "{step}");
    }
}

fn succeeded(r: &support::Reply) -> Value {
    assert!((200..300).contains(&r.status), "{} {}", r.status, r.body);
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

/// Uploads a framed object (`magic`, version 1, opaque bytes) through the vault protocol.
fn put_object(server: &Server, secret: &str, path: &str, magic: &[u8; 4]) {
    let mut body = magic.to_vec();
    body.extend_from_slice(&[1, 0, 0, 0]);
    body.extend_from_slice(&[0x5a; 64]);
    let r = server.send(
        server
            .request(Method::PUT, path)
            .bearer_auth(secret)
            .header(
                loop_api::CONTENT_HASH_HEADER,
                blake3::hash(&body).to_hex().as_str(),
            )
            .body(body),
    );
    assert_eq!(r.status, 201, "PUT {path}: {}", r.body);
}

#[test]
fn every_change_is_recorded_whole_by_whom_on_what_in_which_tenant() {
    let server = Server::start();
    let admin = server.admin();
    let me = ("user", admin.user_id.as_str());
    let provider = admin.provider_tenant_id();
    let mut log = Log::new(server.admin());

    let t = id(&succeeded(&admin.post(
        "/api/v1/tenants",
        json!({ "parent_id": provider, "kind": "customer", "name": "Acme" }),
    )));
    log.expect(
        "tenant create",
        vec![ok(&t, me, "tenant.create", ("tenant", &t))],
    );

    let created = succeeded(&admin.post(
        "/api/v1/users",
        json!({ "tenant_id": t, "email": "sam@acme.example", "first_name": "Sam",
                "last_name": "Smith", "password": USER_PASSWORD, "role": "operator" }),
    ));
    let sam_id = id(&created["user"]);
    let roles = succeeded(&admin.get(&format!("/api/v1/users/{sam_id}/roles")));
    let operator = id(&roles[0]);
    log.expect(
        "user create with a role",
        vec![
            ok(&t, me, "user.create", ("user", &sam_id)),
            ok(&t, me, "role.grant", ("role_binding", &operator)),
        ],
    );

    let user_path = format!("/api/v1/users/{sam_id}");
    succeeded(&admin.patch(&user_path, json!({ "last_name": "Smythe" })));
    log.expect(
        "user update",
        vec![ok(&t, me, "user.update", ("user", &sam_id))],
    );
    for action in ["disable", "enable"] {
        succeeded(&admin.post(&format!("{user_path}/{action}"), json!({})));
        log.expect(
            action,
            vec![ok(&t, me, &format!("user.{action}"), ("user", &sam_id))],
        );
    }
    let auditor = id(&succeeded(&admin.post(
        &format!("{user_path}/roles"),
        json!({ "tenant_id": t, "role": "auditor" }),
    )));
    log.expect(
        "role grant",
        vec![ok(&t, me, "role.grant", ("role_binding", &auditor))],
    );
    succeeded(&admin.delete(&format!("{user_path}/roles/{auditor}")));
    log.expect(
        "role revoke",
        vec![ok(&t, me, "role.revoke", ("role_binding", &auditor))],
    );

    let sam = server.sign_in("sam@acme.example", USER_PASSWORD);
    let sam_actor = ("user", sam_id.as_str());
    log.expect(
        "sign in",
        vec![ok(
            &t,
            sam_actor,
            "auth.signin",
            ("session", &sam.session_id),
        )],
    );
    assert_eq!(
        server.login("sam@acme.example", "wrong-password").status,
        401
    );
    log.expect(
        "failed sign in",
        vec![Said {
            tenant: t.clone(),
            actor: ("anonymous".into(), None),
            action: "auth.signin".into(),
            object: ("user".into(), Some(sam_id.clone())),
            outcome: "failure".into(),
        }],
    );

    let invited = succeeded(&admin.post(
        "/api/v1/users",
        json!({ "tenant_id": t, "email": "ivy@acme.example", "first_name": "Ivy",
                "last_name": "Invited" }),
    ));
    let ivy = id(&invited["user"]);
    log.expect("invite", vec![ok(&t, me, "user.create", ("user", &ivy))]);
    succeeded(&server.call(
        "post",
        "/api/v1/auth/accept-invite",
        None,
        Some(&json!({ "invite_token": invited["invite_token"], "password": "ivy-password-12" })),
    ));
    log.expect(
        "accept invite",
        vec![ok(&t, ("user", &ivy), "user.invite_accept", ("user", &ivy))],
    );

    let device = id(&succeeded(&admin.post(
        "/api/v1/devices",
        json!({ "tenant_id": t, "name": "laptop" }),
    )));
    succeeded(&admin.delete(&format!("/api/v1/devices/{device}")));
    log.expect(
        "device create and delete",
        vec![
            ok(&t, me, "device.create", ("device", &device)),
            ok(&t, me, "device.delete", ("device", &device)),
        ],
    );

    let vault = id(&succeeded(&admin.post(
        "/api/v1/vaults",
        json!({ "tenant_id": t, "name": "files", "destination": "local" }),
    )));
    let made = succeeded(&admin.post(
        "/api/v1/tokens",
        json!({ "tenant_id": t, "name": "ops", "kind": "api", "permissions": ["manage"] }),
    ));
    let token = id(&made["token"]);
    let secret = made["secret"].as_str().unwrap().to_string();
    log.expect(
        "vault and token create",
        vec![
            ok(&t, me, "vault.create", ("vault", &vault)),
            ok(&t, me, "token.create", ("token", &token)),
        ],
    );

    // The vault protocol, as a token with the manage permission uses it.
    let by_token = ("token", token.as_str());
    let base = format!("/vaults/{vault}/v1");
    succeeded(&server.call(
        "post",
        &format!("{base}/open"),
        Some(&secret),
        Some(&json!({ "operation": "check", "host": "ops-host" })),
    ));
    log.expect(
        "vault open",
        vec![ok(&t, by_token, "vault.open", ("vault", &vault))],
    );
    let snapshot = "5e".repeat(32);
    let key = "4b".repeat(32);
    put_object(
        &server,
        &secret,
        &format!("{base}/snapshots/{snapshot}"),
        b"LPSN",
    );
    put_object(&server, &secret, &format!("{base}/keys/{key}"), b"LPKY");
    put_object(&server, &secret, &format!("{base}/config/config"), b"LPCF");
    log.expect(
        "snapshot, key slot and config stored",
        vec![
            ok(&t, by_token, "snapshot.create", ("snapshot", &snapshot)),
            ok(&t, by_token, "vault.key_add", ("key_slot", &key)),
            ok(&t, by_token, "vault.config_write", ("vault", "config")),
        ],
    );
    for path in [format!("snapshots/{snapshot}"), format!("keys/{key}")] {
        succeeded(&server.call("delete", &format!("{base}/{path}"), Some(&secret), None));
    }
    log.expect(
        "snapshot and key slot deleted",
        vec![
            ok(&t, by_token, "snapshot.delete", ("snapshot", &snapshot)),
            ok(&t, by_token, "vault.key_delete", ("key_slot", &key)),
        ],
    );

    succeeded(&admin.delete(&format!("/api/v1/tokens/{token}")));
    succeeded(&admin.delete(&format!("/api/v1/vaults/{vault}")));
    log.expect(
        "token revoke and vault delete",
        vec![
            ok(&t, me, "token.revoke", ("token", &token)),
            ok(&t, me, "vault.delete", ("vault", &vault)),
        ],
    );

    succeeded(&sam.post(
        "/api/v1/me/password",
        json!({ "current_password": USER_PASSWORD, "new_password": "sam-new-password-2" }),
    ));
    log.expect(
        "password change",
        vec![ok(&t, sam_actor, "user.password_change", ("user", &sam_id))],
    );
    succeeded(&admin.delete(&format!("/api/v1/sessions/{}", sam.session_id)));
    log.expect(
        "session revoke",
        vec![ok(&t, me, "session.revoke", ("session", &sam.session_id))],
    );
    succeeded(&admin.post("/api/v1/auth/logout", json!({})));
    log.expect(
        "sign out",
        vec![ok(
            &provider,
            me,
            "auth.signout",
            ("session", &admin.session_id),
        )],
    );

    let all = log.reader.audit_events();
    assert_eq!(loop_api::audit::verify(&all), Ok(all.len() as u64));
    assert!(all.iter().all(|e| e.version == loop_api::audit::CURRENT));
}

/// Signs in sending a user agent, the way a browser would.
fn sign_in_from<'a>(server: &'a Server, email: &str, password: &str, agent: &str) -> Caller<'a> {
    let r = succeeded(
        &server.send(
            server
                .request(Method::POST, "/api/v1/auth/login")
                .header(reqwest::header::USER_AGENT, agent)
                .json(&json!({ "email": email, "password": password })),
        ),
    );
    let mut c = server.with_token(r["session_token"].as_str().unwrap());
    c.session_id = id(&r["session"]);
    c.user_id = id(&r["user"]);
    c
}

fn export(reader: &Caller<'_>, format: &str) -> String {
    let r = reader.get(&format!("/api/v1/audit/export?format={format}"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn parse_jsonl(text: &str) -> Vec<AuditEvent> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("an audit event per line"))
        .collect()
}

#[test]
fn erasing_a_person_removes_their_ip_and_browser_from_the_log_and_every_chain_still_verifies() {
    let server = Server::start();
    let admin = sign_in_from(&server, ADMIN_EMAIL, ADMIN_PASSWORD, "AdminConsole/2.0");
    let provider = admin.provider_tenant_id();
    let pat = id(&succeeded(&admin.post(
        "/api/v1/users",
        json!({ "tenant_id": provider, "email": "pat@example.org", "first_name": "Pat",
                "last_name": "Doe", "password": USER_PASSWORD, "role": "admin" }),
    ))["user"]);
    let pat_session = sign_in_from(&server, "pat@example.org", USER_PASSWORD, "PatBrowser/7.1");
    succeeded(&pat_session.post(
        "/api/v1/devices",
        json!({ "tenant_id": provider, "name": "pat-laptop" }),
    ));
    assert_eq!(
        server.login("pat@example.org", "not-pats-password").status,
        401
    );

    let before = parse_jsonl(&export(&admin, "jsonl"));
    let of_pat = |e: &AuditEvent| {
        e.actor_id.as_deref() == Some(pat.as_str())
            || (e.action == "auth.signin" && e.object_id.as_deref() == Some(pat.as_str()))
    };
    let pats: Vec<&AuditEvent> = before.iter().filter(|e| of_pat(e)).collect();
    assert_eq!(pats.len(), 3, "sign-in, device, failed sign-in");
    for e in &pats {
        assert_eq!(e.ip.as_deref(), Some("127.0.0.1"), "{}", e.action);
        assert!(!e.personal_hash.is_empty());
        assert_eq!(loop_api::audit::personal_matches(e), Some(true));
    }
    assert!(
        pats.iter()
            .any(|e| e.user_agent.as_deref() == Some("PatBrowser/7.1"))
    );
    let heads: Vec<loop_api::AuditHead> =
        serde_json::from_value(succeeded(&admin.get("/api/v1/audit/heads"))).unwrap();

    let erased = server.block_on(async {
        let mut tx = server.state.db.begin().await.unwrap();
        let n = loop_server::db::audit::erase_personal(&mut tx, &pat)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        n
    });
    assert_eq!(erased, 3);

    let jsonl = export(&admin, "jsonl");
    let csv = export(&admin, "csv");
    for text in [&jsonl, &csv] {
        assert!(
            !text.contains("PatBrowser"),
            "Pat's browser is still in the export"
        );
        assert!(text.contains("AdminConsole/2.0"), "others' data must stay");
    }
    let after = parse_jsonl(&jsonl);
    assert_eq!(after.len(), before.len(), "erasure removes no event");
    assert_eq!(loop_api::audit::verify(&after), Ok(after.len() as u64));
    assert_eq!(loop_api::audit::check_heads(&after, &heads), Ok(()));
    for (b, a) in before.iter().zip(&after) {
        if of_pat(b) {
            assert_eq!(
                (&a.ip, &a.user_agent, &a.personal_salt),
                (&None, &None, &None)
            );
            assert_eq!(a.personal_hash, b.personal_hash, "the commitment stays");
        } else {
            assert_eq!(a, b, "only Pat's personal data goes");
        }
        assert_eq!(a.hash, b.hash);
    }
}

/// The first event of a chain as the server wrote it before format version 2: the event of
/// `crates/loop-api/tests/data/audit_chain.jsonl` whose hash `audit_kat.py` computed.
const LEGACY_TENANT: &str = "tn_0123456789abcdef0123456789abcdef";
const LEGACY_HASH: &str = "1b44ef6ab84c35a78ebf406a730ea41bc5bb39ab21bb7c54f8ef8483d886aed9";

#[test]
fn a_chain_begun_in_the_first_event_format_continues_and_still_verifies() {
    let server = Server::start();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let at_ms = chrono::DateTime::parse_from_rfc3339("2026-03-01T09:30:00.123Z")
        .unwrap()
        .timestamp_millis();
    server.block_on(async {
        let pool = &server.state.db.pool;
        let path: String = sqlx::Row::get(
            &sqlx::query("SELECT path FROM tenants WHERE id = $1")
                .bind(&provider)
                .fetch_one(pool)
                .await
                .unwrap(),
            "path",
        );
        sqlx::query(
            "INSERT INTO tenants (id, parent_id, path, kind, name, created_at)
             VALUES ($1, $2, $3, 'customer', 'Legacy', $4)",
        )
        .bind(LEGACY_TENANT)
        .bind(&provider)
        .bind(format!("{path}{LEGACY_TENANT}/"))
        .bind(at_ms)
        .execute(pool)
        .await
        .unwrap();
        // The statement the server used for version-1 events.
        sqlx::query(
            "INSERT INTO audit_events (tenant_id, seq, at, actor_kind, actor_id, action,
                object_kind, object_id, outcome, ip, details, prev_hash, hash)
             VALUES ($1, 1, $2, 'user', 'us_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'vault.create',
                'vault', 'vt_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'success', '192.0.2.7',
                '{\"destination\":\"local\",\"key_custody\":\"managed\",\"quota_bytes\":null}',
                '', $3)",
        )
        .bind(LEGACY_TENANT)
        .bind(at_ms)
        .bind(LEGACY_HASH)
        .execute(pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 1, $2)")
            .bind(LEGACY_TENANT)
            .bind(LEGACY_HASH)
            .execute(pool)
            .await
            .unwrap();
    });

    let device = id(&succeeded(&admin.post(
        "/api/v1/devices",
        json!({ "tenant_id": LEGACY_TENANT, "name": "old-server" }),
    )));
    let r = admin.get(&format!("/api/v1/audit/export?tenant_id={LEGACY_TENANT}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let chain = parse_jsonl(&r.body);
    assert_eq!(chain.len(), 2);
    assert_eq!(
        (
            chain[0].version,
            chain[0].ip.as_deref(),
            chain[0].hash.as_str()
        ),
        (1, Some("192.0.2.7"), LEGACY_HASH)
    );
    assert_eq!(
        (
            chain[1].version,
            chain[1].action.as_str(),
            chain[1].object_id.as_deref()
        ),
        (2, "device.create", Some(device.as_str()))
    );
    assert_eq!(chain[1].prev_hash, LEGACY_HASH);
    assert_eq!(loop_api::audit::verify(&chain), Ok(2));
}

/// A maintainer's deletion announcement and its audit event are kept together: when the
/// event cannot be written nothing is announced, so announcing again records both (the
/// tenant reads every announcement in the log while its grace runs).
#[test]
fn a_deletion_announcement_is_never_kept_without_its_audit_event() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, vault) = support::vault::customer_with_vault(&admin, "Acme", None);
    let manager = support::vault::holder(&server, &admin, &tenant, &vault, &["manage"]);
    let pack = [6u8; 32];
    manager
        .put(
            "data",
            &hex::encode(pack),
            &support::vault::pack_object(pack),
        )
        .expect(201);
    let deletions = manager.path("deletions");
    let announce = json!({ "objects": [{ "kind": "data", "name": hex::encode(pack) }] });
    let sqlite = matches!(server.state.db.backend, loop_server::db::Backend::Sqlite);
    let sql: &[&str] = match server.state.db.backend {
        loop_server::db::Backend::Sqlite => &[
            "CREATE TRIGGER no_announce_audit BEFORE INSERT ON audit_events
             WHEN NEW.action = 'vault.deletions-announce'
             BEGIN SELECT RAISE(ABORT, 'the audit log is unwritable'); END",
        ],
        loop_server::db::Backend::Postgres => &[
            "CREATE FUNCTION no_announce_audit() RETURNS trigger AS $$ BEGIN
                IF NEW.action = 'vault.deletions-announce' THEN
                    RAISE EXCEPTION 'the audit log is unwritable';
                END IF;
                RETURN NEW;
             END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER no_announce_audit BEFORE INSERT ON audit_events
             FOR EACH ROW EXECUTE FUNCTION no_announce_audit()",
        ],
    };
    let run = |sql: &str| {
        server
            .block_on(sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&server.state.db.pool))
            .unwrap();
    };
    sql.iter().for_each(|s| run(s));
    let failed = server.call("post", &deletions, Some(&manager.secret), Some(&announce));
    assert_eq!(failed.status, 500, "{}", failed.body);
    assert!(!failed.body.contains("unwritable"), "{}", failed.body);
    let plan = manager.call("get", "deletions").expect(200);
    assert_eq!(plan["objects"], json!([]), "nothing was announced: {plan}");

    run(if sqlite {
        "DROP TRIGGER no_announce_audit"
    } else {
        "DROP TRIGGER no_announce_audit ON audit_events"
    });
    server
        .call("post", &deletions, Some(&manager.secret), Some(&announce))
        .expect(200);
    let announced: Vec<AuditEvent> = admin
        .audit_events()
        .into_iter()
        .filter(|e| e.action == "vault.deletions-announce")
        .collect();
    assert_eq!(announced.len(), 1, "{announced:?}");
}
