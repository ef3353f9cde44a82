//! The personal-data archive (`crate::exports`): gathers everything the service holds on
//! one person into JSON files with a README, zips them, and keeps the zip for the download
//! period.

use std::io::Write as _;

use serde_json::{Value, json};

use super::{Done, JobCtx, JobError};
use crate::db::{self, bindings, exports, privacy, users};

const README: &str = "\
This archive holds everything Loop Backup holds on you, as JSON files (UTF-8, times in UTC,
RFC 3339):

  profile.json           your account: name, e-mail, business address, language, status,
                         consent to product news, whether processing is restricted
  roles.json             the roles you hold, and on which tenant
  sessions.json          every sign-in: when, from which IP address, browser and device
  devices.json           the devices you registered (created, or enrolled with your code)
  consents.json          every change of your consent to product news, and the privacy
                         policy versions you acknowledged
  notifications.json     the mail the service sent you, the notification events about you
                         (a sign-in from a new device), and the notifications delivered
                         to notification targets that name your address
  audit_events.json      the audited actions you took and the events about you (sign-ins
                         to your account that failed, changes an admin made to it, roles
                         granted to you or revoked, your sessions ended, requests about
                         your data recorded), with the IP address and browser where
                         they are yours;
                         someone else who acted is named by kind only (a user)
  subject_requests.json  requests about your data that your organisation recorded

It does not hold the content of your backups: that is encrypted data of your organisation,
restored with `loop restore`. Ask your organisation's administrator if something is wrong
(they can correct it), or correct your profile with `loop user update` / PATCH /api/v1/me.
";

pub(super) async fn run(ctx: &JobCtx) -> Result<Done, JobError> {
    let state = &ctx.state;
    let pool = &state.db.pool;
    let id = ctx.claimed.job.target_id.clone();
    let Some(e) = exports::by_id(pool, &id).await? else {
        return Err(JobError::Failed("the archive's record is gone".into()));
    };
    let Some(row) = users::user_by_id(pool, &e.user_id).await? else {
        return Err(JobError::Failed("the person is gone".into()));
    };
    let u = &row.user;
    let consent = privacy::marketing_consent(pool, &u.id, u.marketing_consent).await?;
    let roles: Vec<Value> = bindings::bindings_of(pool, &u.id)
        .await?
        .into_iter()
        .map(|b| json!(b.binding))
        .collect();
    let files: Vec<(&str, Value)> = vec![
        (
            "profile.json",
            json!({ "user": u, "marketing_consent": consent }),
        ),
        ("roles.json", json!(roles)),
        (
            "sessions.json",
            json!(exports::sessions_of(pool, &u.id).await?),
        ),
        (
            "devices.json",
            json!(exports::devices_of(pool, &u.id).await?),
        ),
        (
            "consents.json",
            json!({
                "changes": privacy::consent_changes(pool, &u.id).await?,
                "policy_acknowledgements": exports::acknowledgements_of(pool, &u.id).await?,
            }),
        ),
        (
            "notifications.json",
            json!({
                "mail": exports::mail_to(pool, &u.id).await?,
                "events_about_you": exports::events_about(pool, &u.id).await?,
                "notification_targets": exports::notifications_to(pool, u, &db::tenants::subtree_of(pool, &u.tenant_id).await?).await?,
            }),
        ),
        (
            "audit_events.json",
            json!(exports::audit_events_about(pool, &u.id).await?),
        ),
        (
            "subject_requests.json",
            json!(exports::requests_about(pool, &u.id).await?),
        ),
    ];
    ctx.check_held()?;
    let zip = zip_files(&files).map_err(|e| JobError::Failed(format!("making the zip: {e}")))?;
    let sha = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &zip));
    let now = state.now();
    let expires = now + state.config.privacy.export_days as i64 * 86_400_000;
    exports::set_ready(pool, &id, &zip, &sha, now, expires).await?;
    ctx.log(
        "info",
        &format!(
            "archive of {} files ({} bytes) ready until {}",
            files.len() + 1,
            zip.len(),
            db::time(expires).to_rfc3339()
        ),
    )
    .await?;
    Ok(Done {
        summary: json!({ "export_id": id, "files": files.len() + 1, "bytes": zip.len(),
                         "sha256": sha }),
        warnings: 0,
    })
}

/// The README and `files` (pretty JSON) as one zip file.
fn zip_files(files: &[(&str, Value)]) -> Result<Vec<u8>, zip::result::ZipError> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    w.start_file("README.txt", options)?;
    w.write_all(README.as_bytes())?;
    for (name, v) in files {
        w.start_file(*name, options)?;
        let text = serde_json::to_vec_pretty(v).expect("JSON values serialize");
        w.write_all(&text)?;
    }
    Ok(w.finish()?.into_inner())
}
