//! The messages the service sends, made at the moment they are sent.
//!
//! An invitation, or a confirmation of a new address, goes to an address that may already
//! belong to an account in some other tenant. The admin who asked must not be able to tell
//! (the API answers the same either way); the address's owner is told instead, here, and
//! the message then carries no token, so nothing can be accepted.

use loop_api::{TenantStatus, UserStatus};

use crate::db::outbox::{MailKind, Queued};
use crate::db::{DbResult, tenants, users};
use crate::domain::{new_secret, secret_hash};
use crate::state::AppState;

/// One message, ready for the relay.
pub struct Mail {
    /// A marketing message's one-click unsubscribe URL (RFC 8058); service messages have
    /// none.
    pub unsubscribe: Option<String>,
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// The message for a queued row, or `None` when there is nothing to send any more (the user
/// is gone, accepted meanwhile, or changed the request).
pub async fn compose(state: &AppState, q: &Queued) -> DbResult<Option<Mail>> {
    let pool = &state.db.pool;
    let Some(kind) = q.kind else {
        return Ok(None);
    };
    let Some(row) = users::user_by_id(pool, &q.user_id).await? else {
        return Ok(None);
    };
    let Some(tenant) = tenants::tenant_by_id(pool, &row.user.tenant_id).await? else {
        return Ok(None);
    };
    if tenant.tenant.status == TenantStatus::Erased {
        return Ok(None);
    }
    let u = &row.user;
    let org = &tenant.tenant.name;
    let now = state.now();
    let server = server_hint(state);
    Ok(match kind {
        MailKind::Invitation => {
            if u.status != UserStatus::Invited {
                return Ok(None);
            }
            if users::user_by_email(pool, &u.email).await?.is_some() {
                Some(Mail {
                    unsubscribe: None,
                    to: u.email.clone(),
                    subject: "An invitation to Loop Backup for an address that has an account"
                        .into(),
                    text: format!(
                        "Hello,\n\n\
                         An administrator of {org} invited {email} to Loop Backup.\n\n\
                         This address already has a Loop Backup account, and an address can \
                         belong to one account only, so this invitation cannot be accepted and \
                         nothing has changed. The administrator who sent it has not been told \
                         that the address has an account.\n\n\
                         If you want to join {org}, ask its administrator to invite another \
                         address. If you did not expect this message, you can ignore it.\n",
                        email = u.email,
                    ),
                })
            } else {
                let token = new_secret("lpi");
                if !users::issue_invite(pool, &u.id, &secret_hash(&token), now).await? {
                    return Ok(None);
                }
                // With the console's address known, the mail links to its page.
                let page = state
                    .config
                    .public_url
                    .as_deref()
                    .map(|p| {
                        format!(
                            "In your browser:\n\n    {}/invite?token={token}\n\n",
                            p.trim_end_matches('/')
                        )
                    })
                    .unwrap_or_default();
                Some(Mail {
                    unsubscribe: None,
                    to: u.email.clone(),
                    subject: format!("{org} invites you to Loop Backup"),
                    text: format!(
                        "Hello {first},\n\n\
                         An administrator of {org} created a Loop Backup account for you.\n\n\
                         To accept, choose your password within 7 days with this invitation \
                         code (it works once):\n\n    {token}\n\n\
                         {page}\
                         With the command-line client:\n\n    \
                         LOOP_INVITE_TOKEN=<the code> loop user accept-invite{server}\n\n\
                         If you did not expect this message, ignore it: nothing happens unless \
                         the code is used.\n",
                        first = u.first_name,
                    ),
                })
            }
        }
        MailKind::EmailChange => {
            let Some(new) = &u.pending_email else {
                return Ok(None);
            };
            if users::user_by_email(pool, new).await?.is_some() {
                Some(Mail {
                    unsubscribe: None,
                    to: new.clone(),
                    subject: "A Loop Backup address change that cannot be made".into(),
                    text: format!(
                        "Hello,\n\n\
                         An administrator of {org} asked to move a Loop Backup account to \
                         {new}.\n\n\
                         This address already has a Loop Backup account, and an address can \
                         belong to one account only, so nothing has changed. The administrator \
                         has not been told that the address has an account.\n\n\
                         If you did not expect this message, you can ignore it.\n",
                    ),
                })
            } else {
                let token = new_secret("lpe");
                if !users::issue_email_token(pool, &u.id, new, &secret_hash(&token), now).await? {
                    return Ok(None);
                }
                Some(Mail {
                    unsubscribe: None,
                    to: new.clone(),
                    subject: "Confirm your new address for Loop Backup".into(),
                    text: format!(
                        "Hello {first},\n\n\
                         Your Loop Backup account at {org} is to sign in with this address, \
                         {new}, instead of {old}. It changes when you confirm, within 7 days, \
                         with this code (it works once):\n\n    {token}\n\n\
                         With the command-line client:\n\n    \
                         LOOP_EMAIL_TOKEN=<the code> loop user confirm-email{server}\n\n\
                         Until then you sign in with {old}. If you did not expect this \
                         message, ignore it: nothing changes unless the code is used.\n",
                        first = u.first_name,
                        old = u.email,
                    ),
                })
            }
        }
        // The subscription lifecycle's mail is composed in billing.rs.
        _ => None,
    })
}

/// ` --server URL` when the service knows the address people reach it at.
pub(super) fn server_hint(state: &AppState) -> String {
    state
        .config
        .public_url
        .as_deref()
        .map(|u| format!(" --server {u}"))
        .unwrap_or_default()
}
