//! The subscription lifecycle's mail (trial ending, invoice, payment failed, payment method
//! removed, suspension, deletion soon, deletion done), in the recipient's language, with times in the tenant's
//! time zone. They are service messages, not marketing, and say so.

use loop_api::Language;

use super::messages::Mail;
use crate::db::DbResult;
use crate::db::billing::{self, SubRow};
use crate::db::outbox::{MailKind, Queued};
use crate::db::{invoices, tenants, users};
use crate::state::AppState;
use crate::zone::local_time;

const DAY_MS: i64 = 86_400_000;

fn t(lang: Language, en: &'static str, nl: &'static str) -> &'static str {
    match lang {
        Language::En => en,
        Language::Nl => nl,
    }
}

/// `12.34 EUR`.
pub fn money(cents: u64, currency: &str) -> String {
    format!("{}.{:02} {currency}", cents / 100, cents % 100)
}

/// The message for a lifecycle mail, or `None` when there is nothing to say any more.
/// "Deletion done" goes to the users of an erased tenant too.
pub async fn compose(state: &AppState, kind: MailKind, q: &Queued) -> DbResult<Option<Mail>> {
    let pool = &state.db.pool;
    let Some(user) = users::user_by_id(pool, &q.user_id).await? else {
        return Ok(None);
    };
    // The tenant the mail is about (a reseller's staff bound to a customer get the
    // customer's); mail queued before it was named is about the recipient's own.
    let about = q.params["tenant_id"]
        .as_str()
        .unwrap_or(&user.user.tenant_id)
        .to_string();
    let Some(tenant) = tenants::tenant_by_id(pool, &about).await? else {
        return Ok(None);
    };
    let lang = user.user.language;
    let org = tenant.tenant.name.as_str();
    let tz = tenant.tenant.time_zone.as_str();
    let at = |ms: i64| local_time(ms, tz);
    let sub = billing::subscription(pool, &tenant.tenant.id).await?;
    let first = &user.user.first_name;
    let (subject, body) = match (kind, sub) {
        (MailKind::TrialEnding, Some(s)) => {
            if s.can_pay() || s.state != loop_api::SubscriptionState::Trial {
                return Ok(None);
            }
            let end = at(s.trial_ends_at);
            let gone =
                at(s.trial_ends_at + i64::from(state.config.billing.terminate_after_days) * DAY_MS);
            match lang {
                Language::En => (
                    format!("Your Loop Backup trial for {org} ends on {end}"),
                    format!(
                        "The free trial of {org} ends on {end}, and no payment method is on \
                         file. Add one before then to keep backing up. Without one, new backups, \
                         devices and vaults are refused from that moment (restores keep \
                         working), and all of {org}'s data is deleted on {gone}."
                    ),
                ),
                Language::Nl => (
                    format!("Uw proefperiode van Loop Backup voor {org} eindigt op {end}"),
                    format!(
                        "De gratis proefperiode van {org} eindigt op {end} en er is geen \
                         betaalmethode bekend. Voeg er vóór die tijd een toe om te blijven \
                         back-uppen. Zonder betaalmethode worden vanaf dan nieuwe back-ups, \
                         apparaten en kluizen geweigerd (herstellen blijft werken), en op \
                         {gone} worden alle gegevens van {org} verwijderd."
                    ),
                ),
            }
        }
        (MailKind::InvoiceIssued | MailKind::PaymentFailed, _) => {
            let Some(id) = q.params["invoice_id"].as_str() else {
                return Ok(None);
            };
            let Some(inv) = invoices::invoice_by_id(pool, id).await? else {
                return Ok(None);
            };
            let total = money(inv.total_cents, &inv.currency);
            let due_ms = inv.due_at.timestamp_millis();
            let (due, n) = (at(due_ms), inv.number);
            let period = format!(
                "{} – {}",
                inv.period_start.format("%Y-%m-%d"),
                inv.period_end.format("%Y-%m-%d")
            );
            let b = &state.config.billing;
            let suspend = at(due_ms + i64::from(b.suspend_after_days) * DAY_MS);
            let gone = at(due_ms + i64::from(b.terminate_after_days) * DAY_MS);
            if kind == MailKind::InvoiceIssued {
                // An invoice of nothing was paid as it was issued: nothing falls due. One
                // too small to charge is paid with the next.
                let owed = inv.state == loop_api::InvoiceState::Open;
                // Carried, to the next invoice or (issued since) to a named one.
                let carried = inv
                    .payment_reference
                    .as_deref()
                    .is_some_and(|r| r.starts_with("carried to"));
                match lang {
                    Language::En => (
                        format!("Invoice {n} for {org}: {total}"),
                        format!(
                            "Invoice {n} for {org} covers {period}: {total}, {}. It is in \
                             the console and at GET /api/v1/invoices/{id}.",
                            match (owed, carried) {
                                (true, _) => format!("due on {due}"),
                                (false, true) => "below the smallest amount collected, so \
                                                  it is added to the next invoice"
                                    .to_string(),
                                (false, false) => "nothing to pay".to_string(),
                            }
                        ),
                    ),
                    Language::Nl => (
                        format!("Factuur {n} voor {org}: {total}"),
                        format!(
                            "Factuur {n} voor {org} betreft {period}: {total}, {}. U vindt \
                             haar in de console en via GET /api/v1/invoices/{id}.",
                            match (owed, carried) {
                                (true, _) => format!("te betalen uiterlijk {due}"),
                                (false, true) => "onder het kleinste bedrag dat wordt \
                                                  geïnd; het bedrag wordt bij de volgende \
                                                  factuur opgeteld"
                                    .to_string(),
                                (false, false) => "er is niets te betalen".to_string(),
                            }
                        ),
                    ),
                }
            } else {
                if inv.state != loop_api::InvoiceState::Open {
                    return Ok(None);
                }
                let declined = q.params["declined"].as_str();
                match (lang, declined) {
                    (Language::En, Some(why)) => (
                        format!("Payment failed: invoice {n} for {org} could not be charged"),
                        format!(
                            "The charge of {total} for invoice {n} of {org} was declined by \
                             the payment processor: {why} Please add another payment method \
                             before {due}. If the invoice is still unpaid on {suspend}, the \
                             subscription is suspended (new backups stop; restores keep \
                             working), and on {gone} all of {org}'s data is deleted."
                        ),
                    ),
                    (Language::Nl, Some(why)) => (
                        format!(
                            "Betaling mislukt: factuur {n} voor {org} kon niet worden afgeschreven"
                        ),
                        format!(
                            "De afschrijving van {total} voor factuur {n} van {org} is door de \
                             betaalverwerker geweigerd: {why} Voeg vóór {due} een andere \
                             betaalmethode toe. Is de factuur op {suspend} nog niet betaald, \
                             dan wordt het abonnement opgeschort (nieuwe back-ups stoppen; \
                             herstellen blijft werken), en op {gone} worden alle gegevens van \
                             {org} verwijderd."
                        ),
                    ),
                    (Language::En, None) => (
                        format!("Payment failed: invoice {n} for {org} is unpaid"),
                        format!(
                            "Invoice {n} for {org} ({total}) was due on {due} and has not \
                             been paid. If it is still unpaid on {suspend}, the subscription \
                             is suspended (new backups stop; restores keep working), and on \
                             {gone} all of {org}'s data is deleted."
                        ),
                    ),
                    (Language::Nl, None) => (
                        format!("Betaling mislukt: factuur {n} voor {org} is niet betaald"),
                        format!(
                            "Factuur {n} voor {org} ({total}) moest uiterlijk {due} betaald \
                             zijn en is nog niet betaald. Is zij op {suspend} nog niet \
                             betaald, dan wordt het abonnement opgeschort (nieuwe back-ups \
                             stoppen; herstellen blijft werken), en op {gone} worden alle \
                             gegevens van {org} verwijderd."
                        ),
                    ),
                }
            }
        }
        (MailKind::Suspended, Some(s)) => {
            let (Some(since), Some(gone)) = (s.suspended_at, s.terminate_at) else {
                return Ok(None);
            };
            if s.state != loop_api::SubscriptionState::Suspended {
                return Ok(None);
            }
            let why = reason(lang, &s);
            let (since, gone) = (at(since), at(gone));
            match lang {
                Language::En => (
                    format!("The Loop Backup subscription of {org} is suspended"),
                    format!(
                        "The subscription of {org} is suspended since {since}: {why}. New \
                         backups, devices and vaults are refused; restores and downloads keep \
                         working, so you can take your data. Paying reactivates it at once. \
                         Otherwise all of {org}'s data is deleted on {gone}."
                    ),
                ),
                Language::Nl => (
                    format!("Het Loop Backup-abonnement van {org} is opgeschort"),
                    format!(
                        "Het abonnement van {org} is opgeschort sinds {since}: {why}. Nieuwe \
                         back-ups, apparaten en kluizen worden geweigerd; herstellen en \
                         downloaden blijven werken, zodat u uw gegevens kunt meenemen. Na \
                         betaling is het abonnement meteen weer actief. Anders worden op \
                         {gone} alle gegevens van {org} verwijderd."
                    ),
                ),
            }
        }
        (MailKind::DeletionSoon, Some(s)) => {
            let when = match (s.ends_at, s.terminate_at) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => return Ok(None),
            };
            if s.state == loop_api::SubscriptionState::Terminated {
                return Ok(None);
            }
            let when = at(when);
            match lang {
                Language::En => (
                    format!("All data of {org} in Loop Backup is deleted on {when}"),
                    format!(
                        "On {when} the subscription of {org} ends and all of its data is \
                         deleted: every backup in every vault, at every location, for good. \
                         Restore or download what you want to keep before then."
                    ),
                ),
                Language::Nl => (
                    format!("Alle gegevens van {org} in Loop Backup worden op {when} verwijderd"),
                    format!(
                        "Op {when} eindigt het abonnement van {org} en worden al zijn \
                         gegevens verwijderd: elke back-up in elke kluis, op elke locatie, \
                         definitief. Herstel of download vóór die tijd wat u wilt bewaren."
                    ),
                ),
            }
        }
        (MailKind::PaymentMethodRemoved, Some(s)) => {
            // Said only while it is true: a payment method added since, or payment by
            // invoice, needs nothing.
            if s.can_pay() || s.state == loop_api::SubscriptionState::Terminated {
                return Ok(None);
            }
            // True in every state the subscription may be in (a trial, past due, suspended).
            let days = state.config.billing.suspend_after_days;
            let id = &tenant.tenant.id;
            match lang {
                Language::En => (
                    format!("The payment method of {org} was removed"),
                    format!(
                        "The payment method of {org}'s Loop Backup subscription was removed at \
                         the payment processor, so its invoices cannot be charged until another \
                         one is added: with `loop subscription card {id}`, or POST \
                         /api/v1/tenants/{id}/subscription/payment-method. Without one, an \
                         invoice unpaid {days} days after its due date suspends the \
                         subscription, as does a trial that ends."
                    ),
                ),
                Language::Nl => (
                    format!("De betaalmethode van {org} is verwijderd"),
                    format!(
                        "De betaalmethode van het Loop Backup-abonnement van {org} is bij de \
                         betaalverwerker verwijderd, zodat facturen pas weer kunnen worden \
                         afgeschreven als er een andere is toegevoegd: met `loop subscription \
                         card {id}`, of via POST /api/v1/tenants/{id}/subscription/payment-method. \
                         Zonder betaalmethode schort een factuur die {days} dagen na de \
                         vervaldatum nog niet betaald is het abonnement op, net als het einde \
                         van een proefperiode."
                    ),
                ),
            }
        }
        (MailKind::DeletionDone, _) => {
            let Some(c) = crate::db::erasure::certificate_of(pool, &tenant.tenant.id).await? else {
                return Ok(None);
            };
            let body: serde_json::Value = serde_json::from_str(&c.body).unwrap_or_default();
            let places = body["places"].as_array().map_or(0, Vec::len);
            let complete = body["complete"] == true;
            let (when, id, sha, cert) = (at(c.issued_at), &c.id, &c.sha256, &c.body);
            match lang {
                Language::En => (
                    format!("The data of {org} in Loop Backup was deleted"),
                    format!(
                        "On {when} the deletion of {org}'s data was completed. Its encryption \
                         keys were destroyed first, so nothing of it could be read from then \
                         on; then every stored object was deleted at each of the {places} \
                         places it was kept, and each place was listed again afterwards{}.\n\n\
                         Deletion certificate {id}, SHA-256 {sha} (recorded in the audit log):\n\n\
                         {cert}",
                        if complete {
                            ": nothing was left"
                        } else {
                            ". At some places objects are left: the certificate says where and why"
                        }
                    ),
                ),
                Language::Nl => (
                    format!("De gegevens van {org} in Loop Backup zijn verwijderd"),
                    format!(
                        "Op {when} is de verwijdering van de gegevens van {org} voltooid. \
                         Eerst zijn de sleutels vernietigd, zodat er vanaf dat moment niets meer \
                         van te lezen was; daarna is elk opgeslagen object verwijderd op elk van \
                         de {places} plaatsen waar het bewaard werd, en is elke plaats daarna \
                         opnieuw doorzocht{}.\n\n\
                         Verwijderingscertificaat {id}, SHA-256 {sha} (vastgelegd in het \
                         auditlogboek):\n\n{cert}",
                        if complete {
                            ": er is niets achtergebleven"
                        } else {
                            ". Op sommige plaatsen zijn objecten achtergebleven: het certificaat \
                             zegt waar en waarom"
                        }
                    ),
                ),
            }
        }
        _ => return Ok(None),
    };
    let hello = match lang {
        Language::En => format!("Hello {first},"),
        Language::Nl => format!("Beste {first},"),
    };
    let footer = t(
        lang,
        "This is a service message about your subscription, sent to its administrators and \
         billing contacts. It is not marketing.",
        "Dit is een servicebericht over uw abonnement, verstuurd aan de beheerders en \
         factuurcontactpersonen. Het is geen reclame.",
    );
    Ok(Some(Mail {
        unsubscribe: None,
        to: user.user.email.clone(),
        subject,
        text: format!("{hello}\n\n{body}\n\n-- \n{footer}\n"),
    }))
}

fn reason(lang: Language, s: &SubRow) -> &'static str {
    match s.reason {
        Some(loop_api::LifecycleReason::TrialEnded) => t(
            lang,
            "the trial ended without a payment method",
            "de proefperiode is geëindigd zonder betaalmethode",
        ),
        _ => t(lang, "an invoice is unpaid", "een factuur is niet betaald"),
    }
}
