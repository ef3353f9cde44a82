//! The password reset mail: a code, made when the mail is, that sets a new password once
//! within an hour ([`crate::codes::reset_password`]), in the account's language.

use loop_api::{Language, UserStatus};

use super::messages::Mail;
use crate::db::outbox::Queued;
use crate::db::{DbResult, tenants, users};
use crate::domain::{new_secret, secret_hash};
use crate::state::AppState;

/// The message for a reset request, or `None` when the account is no longer active.
pub async fn compose(state: &AppState, q: &Queued) -> DbResult<Option<Mail>> {
    let pool = &state.db.pool;
    let Some(row) = users::user_by_id(pool, &q.user_id).await? else {
        return Ok(None);
    };
    let u = row.user;
    let Some(tenant) = tenants::tenant_by_id(pool, &u.tenant_id).await? else {
        return Ok(None);
    };
    if u.status != UserStatus::Active {
        return Ok(None);
    }
    let token = new_secret("lpr");
    if !users::issue_reset(pool, &u.id, &secret_hash(&token), state.now()).await? {
        return Ok(None);
    }
    let (org, first, email) = (&tenant.tenant.name, &u.first_name, &u.email);
    // With the address people reach the service at, the code comes as a link to the page
    // that takes it; without, the page is named.
    let link = state
        .config
        .public_url
        .as_deref()
        .map(|p| format!("{}/reset?code={token}", p.trim_end_matches('/')));
    let (subject, text) = match (u.language, link) {
        (Language::En, link) => (
            "Choose a new Loop Backup password".to_string(),
            format!(
                "Hello {first},\n\n\
                 Someone asked to choose a new password for the Loop Backup account {email} \
                 at {org}. {how} within an hour (it works once):\n\n    {what}\n\n\
                 A new password signs the account out everywhere. An authenticator app, if \
                 the account has one, still asks for its code at sign-in.\n\n\
                 If you did not ask for this, ignore this message: the password stays as it \
                 is.\n",
                how = match link {
                    Some(_) => "To choose one, open this link",
                    None =>
                        "To choose one, give this code on the console's page \
                             \"Forgot your password?\" (/reset)",
                },
                what = link.as_deref().unwrap_or(&token),
            ),
        ),
        (Language::Nl, link) => (
            "Kies een nieuw wachtwoord voor Loop Backup".to_string(),
            format!(
                "Beste {first},\n\n\
                 Iemand heeft gevraagd een nieuw wachtwoord te kiezen voor het Loop \
                 Backup-account {email} bij {org}. {how}, binnen een uur (eenmalig \
                 bruikbaar):\n\n    {what}\n\n\
                 Een nieuw wachtwoord meldt het account overal af. Een authenticator-app, als \
                 het account die heeft, vraagt bij het aanmelden nog steeds om haar code.\n\n\
                 Hebt u hier niet om gevraagd, negeer dan dit bericht: het wachtwoord blijft \
                 zoals het is.\n",
                how = match link {
                    Some(_) => "Open deze link om er een te kiezen",
                    None =>
                        "Geef deze code op de pagina \"Wachtwoord vergeten?\" (/reset) \
                             van de console om er een te kiezen",
                },
                what = link.as_deref().unwrap_or(&token),
            ),
        ),
    };
    Ok(Some(Mail {
        unsubscribe: None,
        to: email.clone(),
        subject,
        text,
    }))
}
