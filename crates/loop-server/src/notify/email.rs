//! Notification e-mail: one event as a plain-text and an HTML part, in the target's
//! language (English or Dutch) and with times in the tenant's time zone.

use loop_api::{Event, EventKind, Language};
use serde_json::Value;

use crate::zone::local_time;

/// A composed message.
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What a message says, before it is written as text or HTML.
struct Doc {
    title: String,
    rows: Vec<(&'static str, String)>,
    /// Column names and rows (the summary's items).
    table: Option<(Vec<&'static str>, Vec<Vec<String>>)>,
}

/// The same word in both languages.
fn t(lang: Language, en: &'static str, nl: &'static str) -> &'static str {
    match lang {
        Language::En => en,
        Language::Nl => nl,
    }
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn ms(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// Bytes in the largest binary unit that keeps a number of at least 1.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A job kind as a word of the language.
fn job_word(lang: Language, kind: &str) -> &'static str {
    match kind {
        "backup" => t(lang, "Backup", "Back-up"),
        "restore" => t(lang, "Restore", "Herstel"),
        "verify" => t(lang, "Verification", "Controle"),
        "retention" => t(lang, "Retention", "Opschoning"),
        "erase-vault" => t(lang, "Vault erasure", "Wissen van kluis"),
        "replication" => t(lang, "Replication", "Replicatie"),
        "replica-verify" => t(lang, "Replica verification", "Controle van replica"),
        _ => t(lang, "Job", "Taak"),
    }
}

fn state_word(lang: Language, state: &str) -> String {
    match state {
        "succeeded" => t(lang, "succeeded", "geslaagd"),
        "succeeded-with-warnings" => t(lang, "warnings", "waarschuwingen"),
        "failed" => t(lang, "failed", "mislukt"),
        "abandoned" => t(lang, "abandoned", "afgebroken"),
        "missed" => t(lang, "missed", "gemist"),
        "skipped" => t(lang, "skipped", "overgeslagen"),
        "cancelled" => t(lang, "cancelled", "geannuleerd"),
        "" => t(lang, "never run", "nooit uitgevoerd"),
        other => return other.to_string(),
    }
    .to_string()
}

fn doc(e: &Event, lang: Language, tz: &str) -> Doc {
    let d = &e.details;
    let when = |key: &str| ms(d, key).map(|m| local_time(m, tz)).unwrap_or_default();
    let mut rows = Vec::new();
    let mut table = None;
    let title = match e.kind {
        EventKind::JobFailed | EventKind::JobWarnings | EventKind::JobMissed => {
            let word = job_word(lang, &text(d, "job_kind"));
            let what = match e.kind {
                EventKind::JobFailed => t(lang, "failed", "mislukt"),
                EventKind::JobWarnings => t(
                    lang,
                    "finished with warnings",
                    "voltooid met waarschuwingen",
                ),
                _ => t(lang, "missed", "gemist"),
            };
            rows.push((t(lang, "Job", "Taak"), text(d, "job_id")));
            rows.push((
                t(lang, "State", "Status"),
                state_word(lang, &text(d, "state")),
            ));
            if !text(d, "device_name").is_empty() {
                rows.push((t(lang, "Device", "Apparaat"), text(d, "device_name")));
            }
            if !text(d, "error").is_empty() {
                rows.push((t(lang, "Error", "Fout"), text(d, "error")));
            }
            format!("{word} {what}: {}", text(d, "target_name"))
        }
        EventKind::ItemMissed => {
            rows.push((t(lang, "Device", "Apparaat"), text(d, "device_name")));
            rows.push((t(lang, "Due", "Gepland"), when("expected_at")));
            let last = when("last_success_at");
            rows.push((
                t(lang, "Last success", "Laatste geslaagde back-up"),
                if last.is_empty() {
                    t(lang, "never", "nooit").into()
                } else {
                    last
                },
            ));
            format!(
                "{} {}",
                t(lang, "No recent backup of", "Geen recente back-up van"),
                text(d, "item_name")
            )
        }
        EventKind::DeviceOffline => {
            rows.push((t(lang, "Last seen", "Laatst gezien"), when("last_seen_at")));
            format!(
                "{}: {}",
                t(lang, "Device offline", "Apparaat offline"),
                text(d, "device_name")
            )
        }
        EventKind::VaultQuota => {
            let used = ms(d, "used_bytes").unwrap_or(0).max(0) as u64;
            let quota = ms(d, "quota_bytes").unwrap_or(0).max(1) as u64;
            rows.push((t(lang, "Used", "Gebruikt"), size(used)));
            rows.push((t(lang, "Quota", "Quotum"), size(quota)));
            format!(
                "{} {} {} {}%",
                t(lang, "Vault", "Kluis"),
                text(d, "vault_name"),
                t(lang, "is full to", "is vol tot"),
                used.saturating_mul(100) / quota
            )
        }
        EventKind::VaultMassDeletion => {
            let bytes = ms(d, "announced_bytes").unwrap_or(0).max(0) as u64;
            rows.push((t(lang, "To be deleted", "Te verwijderen"), size(bytes)));
            format!(
                "{} {}",
                t(
                    lang,
                    "Most of a vault is about to be deleted:",
                    "Het grootste deel van een kluis wordt binnenkort verwijderd:"
                ),
                text(d, "vault_name")
            )
        }
        EventKind::ReplicaBehind | EventKind::ReplicaDamaged => {
            rows.push((t(lang, "Vault", "Kluis"), text(d, "vault_id")));
            rows.push((t(lang, "Destination", "Bestemming"), text(d, "destination")));
            if e.kind == EventKind::ReplicaBehind {
                let last = when("synced_at");
                rows.push((
                    t(
                        lang,
                        "Last complete replication",
                        "Laatste volledige replicatie",
                    ),
                    if last.is_empty() {
                        t(lang, "never", "nooit").into()
                    } else {
                        last
                    },
                ));
                t(lang, "A replica is behind", "Een replica loopt achter").into()
            } else {
                t(lang, "A replica is damaged", "Een replica is beschadigd").into()
            }
        }
        EventKind::SignInNewDevice => {
            for (label, key) in [
                (t(lang, "Browser", "Browser"), "browser"),
                (t(lang, "System", "Systeem"), "os"),
                (t(lang, "Device", "Apparaat"), "device_label"),
            ] {
                if !text(d, key).is_empty() {
                    rows.push((label, text(d, key)));
                }
            }
            rows.push((t(lang, "User", "Gebruiker"), text(d, "user_id")));
            t(
                lang,
                "Sign-in from a new device",
                "Aanmelding vanaf een nieuw apparaat",
            )
            .into()
        }
        EventKind::TokenCreated => {
            rows.push(("Token", text(d, "object_id")));
            rows.push((t(lang, "By", "Door"), text(d, "actor_id")));
            t(lang, "A token was created", "Er is een token aangemaakt").into()
        }
        EventKind::SecurityThrottled => {
            rows.push((t(lang, "Action", "Actie"), text(d, "action")));
            rows.push((t(lang, "Account", "Account"), text(d, "object_id")));
            t(
                lang,
                "Sign-in attempts were throttled",
                "Aanmeldpogingen zijn afgeremd",
            )
            .into()
        }
        EventKind::SecurityTotpFailed => {
            rows.push((t(lang, "Account", "Account"), text(d, "object_id")));
            t(
                lang,
                "An authenticator code was refused",
                "Een authenticatorcode is geweigerd",
            )
            .into()
        }
        EventKind::SummaryReport => {
            rows.push((t(lang, "From", "Van"), when("from")));
            rows.push((t(lang, "To", "Tot"), when("to")));
            rows.push((t(lang, "Succeeded", "Geslaagd"), text(d, "succeeded")));
            rows.push((t(lang, "Failed", "Mislukt"), text(d, "failed")));
            for v in d
                .get("vaults")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let used = size(ms(v, "used_bytes").unwrap_or(0).max(0) as u64);
                let quota = ms(v, "quota_bytes")
                    .map(|q| format!(" / {}", size(q.max(0) as u64)))
                    .unwrap_or_default();
                rows.push((
                    t(lang, "Vault", "Kluis"),
                    format!("{}: {used}{quota}", text(v, "name")),
                ));
            }
            let items = d
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            table = Some((
                vec![
                    t(lang, "Item", "Item"),
                    t(lang, "Device", "Apparaat"),
                    t(lang, "Last result", "Laatste resultaat"),
                    t(lang, "When", "Wanneer"),
                ],
                items
                    .map(|i| {
                        vec![
                            text(i, "name"),
                            text(i, "device"),
                            state_word(lang, &text(i, "last_state")),
                            ms(i, "last_at")
                                .map(|m| local_time(m, tz))
                                .unwrap_or_default(),
                        ]
                    })
                    .collect(),
            ));
            if text(d, "period") == "weekly" {
                t(lang, "Weekly summary", "Wekelijks overzicht").into()
            } else {
                t(lang, "Daily summary", "Dagelijks overzicht").into()
            }
        }
        EventKind::Test => t(
            lang,
            "Test notification: this target works",
            "Testmelding: dit doel werkt",
        )
        .into(),
    };
    Doc { title, rows, table }
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The message for `e`, raised for the tenant `tenant_name` (zone `tz`), in `lang`.
pub fn compose(e: &Event, tenant_name: &str, tz: &str, lang: Language) -> Mail {
    let d = doc(e, lang, tz);
    let mut head = vec![
        (t(lang, "Tenant", "Klant"), tenant_name.to_string()),
        (
            t(lang, "Time", "Tijd"),
            local_time(e.created_at.timestamp_millis(), tz),
        ),
        (
            t(lang, "Severity", "Ernst"),
            match e.severity {
                loop_api::Severity::Info => t(lang, "info", "informatie"),
                loop_api::Severity::Warning => t(lang, "warning", "waarschuwing"),
                loop_api::Severity::Error => t(lang, "error", "fout"),
            }
            .into(),
        ),
    ];
    head.extend(d.rows);
    let footer = format!(
        "{} {}. {}",
        t(lang, "Event", "Gebeurtenis"),
        e.id,
        t(
            lang,
            "This is a service message about your backups, sent to this notification \
             target's recipients. It is not marketing.",
            "Dit is een servicebericht over uw back-ups, verstuurd aan de ontvangers van dit \
             meldingsdoel. Het is geen reclame."
        )
    );

    let mut text = format!("{}\n\n", d.title);
    for (k, v) in &head {
        text.push_str(&format!("{k}: {v}\n"));
    }
    let mut html = format!(
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body><h1>{}</h1><table>",
        lang.as_str(),
        esc(&d.title),
        esc(&d.title)
    );
    for (k, v) in &head {
        html.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
            esc(k),
            esc(v)
        ));
    }
    html.push_str("</table>");
    if let Some((cols, rows)) = &d.table {
        text.push('\n');
        text.push_str(&cols.join(" | "));
        text.push('\n');
        html.push_str("<table><tr>");
        for c in cols {
            html.push_str(&format!("<th align=\"left\">{}</th>", esc(c)));
        }
        html.push_str("</tr>");
        for r in rows {
            text.push_str(&r.join(" | "));
            text.push('\n');
            html.push_str("<tr>");
            for c in r {
                html.push_str(&format!("<td>{}</td>", esc(c)));
            }
            html.push_str("</tr>");
        }
        html.push_str("</table>");
    }
    text.push_str(&format!("\n{footer}\n"));
    html.push_str(&format!(
        "<p><small>{}</small></p></body></html>",
        esc(&footer)
    ));
    Mail {
        subject: format!("[Loop Backup] {tenant_name}: {}", d.title),
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, details: Value) -> Event {
        Event {
            id: "ev_0123456789abcdef0123456789abcdef".into(),
            tenant_id: "tn_x".into(),
            kind,
            severity: kind.severity(),
            subject_kind: None,
            subject_id: None,
            message: String::new(),
            details,
            // 2026-03-29 00:30 UTC: 01:30 CET, before the clocks go forward.
            created_at: crate::db::time(1_774_744_200_000),
        }
    }

    #[test]
    fn every_character_html_gives_meaning_is_escaped() {
        assert_eq!(
            esc(r#"<a href="x">Tom & Jerry's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
    }

    #[test]
    fn a_failed_backup_reads_in_dutch_with_local_time_and_escaped_names() {
        let e = event(
            EventKind::JobFailed,
            serde_json::json!({
                "job_id": "jb_1", "job_kind": "backup", "state": "failed",
                "target_name": "<docs>", "device_name": "laptop", "error": "disk & co",
            }),
        );
        let m = compose(&e, "Acme", "Europe/Amsterdam", Language::Nl);
        assert_eq!(m.subject, "[Loop Backup] Acme: Back-up mislukt: <docs>");
        assert!(m.text.contains("Tijd: 2026-03-29 01:30 CET"), "{}", m.text);
        assert!(m.text.contains("Fout: disk & co"), "{}", m.text);
        assert!(
            m.html.contains("<h1>Back-up mislukt: &lt;docs&gt;</h1>"),
            "{}",
            m.html
        );
        assert!(m.html.contains("disk &amp; co"));
        assert!(!m.html.contains("<docs>"));
    }

    #[test]
    fn times_follow_the_zone_across_a_dst_change() {
        // 01:00 UTC on 2026-03-29 is 03:00 CEST: the clocks went forward at 02:00 CET.
        assert_eq!(
            local_time(1_774_746_000_000, "Europe/Amsterdam"),
            "2026-03-29 03:00 CEST"
        );
        assert_eq!(
            local_time(1_774_746_000_000, "no/such zone"),
            "2026-03-29 01:00 UTC"
        );
    }

    #[test]
    fn the_summary_lists_every_item_in_english() {
        let e = event(
            EventKind::SummaryReport,
            serde_json::json!({
                "period": "weekly", "succeeded": 3, "failed": 1,
                "items": [{"name": "docs", "device": "laptop", "last_state": "failed"},
                          {"name": "db", "device": "srv", "last_state": ""}],
                "vaults": [{"name": "main", "used_bytes": 1536, "quota_bytes": null}],
            }),
        );
        let m = compose(&e, "Acme", "UTC", Language::En);
        assert_eq!(m.subject, "[Loop Backup] Acme: Weekly summary");
        assert!(m.text.contains("docs | laptop | failed |"), "{}", m.text);
        assert!(m.text.contains("db | srv | never run |"), "{}", m.text);
        assert!(m.text.contains("Vault: main: 1.5 KiB\n"), "{}", m.text);
    }
}
