//! Marketing mail: the provider's announcements. Each message is made when it is sent, and
//! only while the user still consents and is not restricted, so a withdrawal takes effect
//! at once, also for messages already queued. Each carries its own opaque unsubscribe link
//! (`List-Unsubscribe`, with `List-Unsubscribe-Post` for one click, RFC 8058); the link's
//! token exists only as its hash in the database and in that one message.

use loop_api::{Language, TenantStatus, UserStatus};

use super::messages::Mail;
use crate::db::outbox::Queued;
use crate::db::{DbResult, privacy, tenants, users};
use crate::domain::{new_secret, secret_hash};
use crate::state::AppState;

pub async fn compose(state: &AppState, q: &Queued) -> DbResult<Option<Mail>> {
    let pool = &state.db.pool;
    let Some(id) = q.params["announcement_id"].as_str() else {
        return Ok(None);
    };
    let Some(a) = privacy::announcement_by_id(pool, id).await? else {
        return Ok(None);
    };
    let Some(row) = users::user_by_id(pool, &q.user_id).await? else {
        return Ok(None);
    };
    let u = &row.user;
    if !u.marketing_consent
        || u.restricted
        || u.status != UserStatus::Active
        || crate::person::is_erased(&row)
    {
        return Ok(None);
    }
    let erased = tenants::tenant_by_id(pool, &u.tenant_id)
        .await?
        .is_none_or(|t| t.tenant.status == TenantStatus::Erased);
    let Some(base) = state.config.public_url.as_deref() else {
        return Ok(None);
    };
    if erased {
        return Ok(None);
    }
    let token = new_secret("lpu");
    privacy::insert_unsubscribe_link(pool, &secret_hash(&token), &u.id, state.now()).await?;
    let url = format!("{}/api/v1/unsubscribe/{token}", base.trim_end_matches('/'));
    let (hello, why) = match u.language {
        Language::En => (
            format!("Hello {},", u.first_name),
            format!(
                "You receive this because you agreed to product news from Loop Backup. To \
                 receive no more, open {url} or withdraw your consent with \
                 `loop privacy consent off`."
            ),
        ),
        Language::Nl => (
            format!("Beste {},", u.first_name),
            format!(
                "U ontvangt dit bericht omdat u toestemming gaf voor productnieuws van Loop \
                 Backup. Wilt u het niet meer ontvangen, open dan {url} of trek uw \
                 toestemming in met `loop privacy consent off`."
            ),
        ),
    };
    Ok(Some(Mail {
        unsubscribe: Some(url),
        to: u.email.clone(),
        subject: a.subject,
        text: format!("{hello}\n\n{}\n\n-- \n{why}\n", a.body),
    }))
}
