//! Notices the provider owes the controllers: a change of its sub-processor register
//! (GDPR Art. 28(2)), in the recipient's language. A service message, not marketing: it
//! goes whatever the recipient's consent to marketing.

use loop_api::{Language, UserStatus};

use super::messages::Mail;
use crate::db::outbox::Queued;
use crate::db::{DbResult, users};
use crate::state::AppState;

pub async fn compose(state: &AppState, q: &Queued) -> DbResult<Option<Mail>> {
    let Some(row) = users::user_by_id(&state.db.pool, &q.user_id).await? else {
        return Ok(None);
    };
    let u = &row.user;
    if u.status != UserStatus::Active {
        return Ok(None);
    }
    let p = &q.params;
    let field = |k: &str| p[k].as_str().unwrap_or_default().to_string();
    let (name, purpose, location) = (field("name"), field("purpose"), field("location"));
    let added = p["change"] == "added";
    let (subject, text) = match u.language {
        Language::En => (
            format!(
                "Loop Backup sub-processors: {name} {}",
                if added { "added" } else { "removed" }
            ),
            format!(
                "Hello {first},\n\n\
                 As your processor, Loop Backup tells you of each change to the companies that \
                 process personal data for it (its sub-processors).\n\n\
                 {change}: {name}\nPurpose: {purpose}\nLocation: {location}\n\n\
                 The whole list: `loop privacy subprocessors`, or GET /api/v1/subprocessors. \
                 If you object to this change, tell your provider.\n\n\
                 -- \nThis is a service message to your organisation's administrators. It is \
                 not marketing.\n",
                first = u.first_name,
                change = if added { "Added" } else { "Removed" },
            ),
        ),
        Language::Nl => (
            format!(
                "Subverwerkers van Loop Backup: {name} {}",
                if added { "toegevoegd" } else { "verwijderd" }
            ),
            format!(
                "Beste {first},\n\n\
                 Als uw verwerker meldt Loop Backup elke wijziging in de bedrijven die voor \
                 haar persoonsgegevens verwerken (haar subverwerkers).\n\n\
                 {change}: {name}\nDoel: {purpose}\nLocatie: {location}\n\n\
                 De hele lijst: `loop privacy subprocessors`, of GET /api/v1/subprocessors. \
                 Hebt u bezwaar tegen deze wijziging, laat het uw leverancier weten.\n\n\
                 -- \nDit is een servicebericht aan de beheerders van uw organisatie. Het is \
                 geen reclame.\n",
                first = u.first_name,
                change = if added { "Toegevoegd" } else { "Verwijderd" },
            ),
        ),
    };
    Ok(Some(Mail {
        unsubscribe: None,
        to: u.email.clone(),
        subject,
        text,
    }))
}
