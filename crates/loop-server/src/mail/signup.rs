//! The sign-up's mail: the confirmation code, or, when the address already has an account,
//! a notice to its owner that carries no code (the one who signed up is not told which).

use loop_api::Language;

use super::messages::{Mail, server_hint};
use crate::db::outbox::Queued;
use crate::db::{DbResult, signups, users};
use crate::domain::{new_secret, secret_hash};
use crate::state::AppState;

/// The message for a sign-up, or `None` when it expired or was confirmed meanwhile.
pub async fn compose(state: &AppState, q: &Queued) -> DbResult<Option<Mail>> {
    let pool = &state.db.pool;
    let Some(id) = q.params["signup_id"].as_str() else {
        return Ok(None);
    };
    let Some(s) = signups::signup_by_id(pool, id).await? else {
        return Ok(None);
    };
    if s.expires_at <= state.now() {
        return Ok(None);
    }
    let (org, first) = (&s.organisation, &s.first_name);
    if users::user_by_email(pool, &s.email).await?.is_some() {
        let (subject, text) = match s.language {
            Language::En => (
                "A Loop Backup sign-up for an address that has an account".to_string(),
                format!(
                    "Hello,\n\n\
                     Someone asked for a Loop Backup trial for {org} with this address. The \
                     address already has a Loop Backup account, so nothing was created and \
                     this message carries no code. Sign in with your account instead.\n\n\
                     If you did not expect this message, you can ignore it.\n"
                ),
            ),
            Language::Nl => (
                "Een aanmelding bij Loop Backup voor een adres met een account".to_string(),
                format!(
                    "Hallo,\n\n\
                     Iemand heeft met dit adres een proefperiode van Loop Backup aangevraagd \
                     voor {org}. Dit adres heeft al een Loop Backup-account, dus er is niets \
                     aangemaakt en dit bericht bevat geen code. Meld u aan met uw account.\n\n\
                     Had u dit bericht niet verwacht, dan kunt u het negeren.\n"
                ),
            ),
        };
        return Ok(Some(Mail {
            unsubscribe: None,
            to: s.email,
            subject,
            text,
        }));
    }
    let token = new_secret("lps");
    if !signups::set_code(pool, &s.id, &secret_hash(&token)).await? {
        return Ok(None);
    }
    let server = server_hint(state);
    // With the address people reach the service at, the code also comes as a link to the
    // confirmation page.
    let link = state
        .config
        .public_url
        .as_deref()
        .map(|u| format!("{}/signup/confirm?token={token}", u.trim_end_matches('/')));
    let (open_en, open_nl) = match &link {
        Some(l) => (
            format!(
                "Open this link to confirm:\n\n    {l}\n\nor confirm with the command-line client:"
            ),
            format!(
                "Open deze link om te bevestigen:\n\n    {l}\n\nof bevestig met de opdrachtregel:"
            ),
        ),
        None => (
            "With the command-line client:".to_string(),
            "Met de opdrachtregel:".to_string(),
        ),
    };
    let (subject, text) = match s.language {
        Language::En => (
            format!("Confirm your Loop Backup trial for {org}"),
            format!(
                "Hello {first},\n\n\
                 To start the free trial of Loop Backup for {org}, confirm this address within \
                 7 days with this code (it works once):\n\n    {token}\n\n\
                 {open_en}\n\n    \
                 LOOP_SIGNUP_TOKEN=<the code> loop signup confirm{server}\n\n\
                 or POST it as {{\"token\": \"…\"}} to /api/v1/signup/confirm. Then sign in \
                 with this address and the password you chose.\n\n\
                 If you did not sign up, ignore this message: nothing is created unless the \
                 code is used.\n"
            ),
        ),
        Language::Nl => (
            format!("Bevestig uw proefperiode van Loop Backup voor {org}"),
            format!(
                "Beste {first},\n\n\
                 Bevestig dit adres binnen 7 dagen met deze code (eenmalig bruikbaar) om de \
                 gratis proefperiode van Loop Backup voor {org} te starten:\n\n    {token}\n\n\
                 {open_nl}\n\n    \
                 LOOP_SIGNUP_TOKEN=<de code> loop signup confirm{server}\n\n\
                 of stuur haar als {{\"token\": \"…\"}} naar /api/v1/signup/confirm. Meld u \
                 daarna aan met dit adres en het wachtwoord dat u koos.\n\n\
                 Hebt u zich niet aangemeld, negeer dan dit bericht: er wordt niets aangemaakt \
                 zolang de code niet gebruikt wordt.\n"
            ),
        ),
    };
    Ok(Some(Mail {
        unsubscribe: None,
        to: s.email,
        subject,
        text,
    }))
}
