//! A partner's branding (white label): its product name, colour and logo, which everyone
//! signed in to the partner or to a customer below it sees in the console. The form uploads
//! the logo, so it is `multipart/form-data` ([`super::reader::Uploaded`]); the changes go
//! through the API's own functions ([`crate::branding`]).

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use maud::{Markup, html};

use super::catalogue::catalogue;
use super::layout::{Input, document, token};
use super::reader::{Done, NoFields, Posted, Uploaded, Viewer};
use crate::branding::Brand;
use crate::domain::Permission;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

catalogue! {
    /// The words of the branding page.
    W {
        BrandingOf: "Branding of {0}", "Huisstijl van {0}";
        Intro: "Your product name, colour and logo, in the console of everyone signed in to \
            {0} or to a customer below it.",
            "Je productnaam, kleur en logo, in de console van iedereen die is aangemeld bij {0} \
            of bij een klant daaronder.";
        NotSet: "Not branded: the console looks as the provider's, or as a branding above \
            this tenant.",
            "Geen huisstijl: de console ziet eruit als die van de aanbieder, of van een \
            huisstijl boven deze tenant.";
        ProductName: "Product name", "Productnaam";
        Colour: "Colour of the header", "Kleur van de kopbalk";
        ColourHelp: "Text on it is black or white, whichever reads better; links and buttons \
            take a darker shade where needed.",
            "Tekst erop is zwart of wit, wat het best leesbaar is; links en knoppen krijgen \
            waar nodig een donkerder tint.";
        Logo: "Logo (PNG, at most 64 KiB)", "Logo (PNG, hoogstens 64 KiB)";
        CurrentLogo: "The current logo", "Het huidige logo";
        DropLogo: "No logo", "Geen logo";
        Save: "Save the branding", "De huisstijl opslaan";
        Saved: "The branding is saved: the header above shows it.",
            "De huisstijl is opgeslagen: de kopbalk hierboven toont hem.";
        Clear: "Remove the branding", "De huisstijl verwijderen";
        Cleared: "The branding is removed.", "De huisstijl is verwijderd.";
        OnlyPartners: "A customer's console takes its partner's branding.",
            "De console van een klant neemt de huisstijl van zijn partner over.";
    }
}

/// `GET /t/{tenant}/branding`.
pub async fn show(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    let w = |w: W| w.text(v.lang);
    let note = q.note(&[("saved", w(W::Saved)), ("cleared", w(W::Cleared))]);
    page(&state, &v, &id, StatusCode::OK, note)
        .await
        .unwrap_or_else(|e| super::failed(v.lang, e))
}

async fn page(
    state: &AppState,
    v: &Viewer,
    id: &str,
    status: StatusCode,
    above: Option<Markup>,
) -> ApiResult<Response> {
    let t = v.caller.tenant(state, Permission::TenantWrite, id).await?;
    let own = crate::db::brandings::branding_of(&state.db.pool, &t.tenant.id)
        .await?
        .and_then(Brand::of);
    let lang = v.lang;
    let w = |w: W| w.text(lang);
    let title = W::BrandingOf.fill(lang, &[&t.tenant.name]);
    let partner = t.tenant.kind != loop_api::TenantKind::Customer;
    let name = own.as_ref().map_or("", |b| b.product_name.as_str());
    let colour = own.as_ref().map_or("#0a58ca".into(), |b| b.accent.hex());
    let content = html! {
        (v.tenant_menu(&t))
        @if let Some(a) = above { (a) }
        @if !partner {
            p { (w(W::OnlyPartners)) }
        } @else {
            p { (W::Intro.fill(lang, &[&t.tenant.name])) }
            @if own.is_none() { p { (w(W::NotSet)) } }
            form method="post" action={"/t/" (t.tenant.id) "/branding"} enctype="multipart/form-data" {
                (token(&v.csrf))
                (Input { required: true, value: name, autocomplete: Some("organization"),
                         ..Input::new("product_name", w(W::ProductName), "text") }.render())
                p.field {
                    label for="accent" { (w(W::Colour)) }
                    input #accent name="accent" type="color" value=(colour) aria-describedby="accent-help";
                    span #accent-help.help { (w(W::ColourHelp)) }
                }
                @if let Some(logo) = own.as_ref().and_then(Brand::logo_address) {
                    p { (w(W::CurrentLogo)) ": " img.logo src=(logo) alt=(w(W::CurrentLogo)); }
                    p.check {
                        input #drop_logo type="checkbox" name="drop_logo" value="1";
                        label for="drop_logo" { (w(W::DropLogo)) }
                    }
                }
                p.field {
                    label for="logo" { (w(W::Logo)) }
                    input #logo name="logo" type="file" accept="image/png";
                }
                p { button type="submit" { (w(W::Save)) } }
            }
            @if own.is_some() {
                form method="post" action={"/t/" (t.tenant.id) "/branding/clear"} {
                    (token(&v.csrf))
                    p { button.danger type="submit" { (w(W::Clear)) } }
                }
            }
        }
    };
    Ok(document(status, &v.frame(), &title, content))
}

/// `POST /t/{tenant}/branding` (multipart): saves the name and colour, and the logo when a
/// file comes with them (or drops it when asked); else the logo stays. Who may brand the
/// tenant is settled before the upload is read.
pub async fn save(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let t = match v.caller.tenant(&state, Permission::TenantWrite, &id).await {
        Ok(t) => t,
        Err(e) => return super::failed(v.lang, e),
    };
    let form = match Uploaded::from_request(req, &state).await {
        Ok(f) => f,
        Err(refused) => return refused,
    };
    let saved = async {
        let logo = match form.field("logo") {
            Some(file) if !file.is_empty() => Some(file.to_vec()),
            _ if form.field("drop_logo").is_some() => None,
            _ => kept_logo(&state, &t.tenant.id).await?,
        };
        crate::branding::set(
            &state,
            &v.caller,
            &t.tenant.id,
            &form.text("product_name"),
            &form.text("accent"),
            logo,
        )
        .await
    };
    match saved.await {
        Ok(_) => Redirect::to(&format!("/t/{}/branding?done=saved", t.tenant.id)).into_response(),
        Err(e) => {
            super::refused(v.lang, e, |status, why| {
                page(&state, &v, &id, status, Some(why))
            })
            .await
        }
    }
}

/// The logo the tenant's branding has now, to keep when the form brings none.
async fn kept_logo(state: &AppState, tenant: &str) -> ApiResult<Option<Vec<u8>>> {
    let row = crate::db::brandings::branding_of(&state.db.pool, tenant).await?;
    match row.and_then(|r| r.logo_png) {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map(Some)
            .map_err(|_| ApiError::Internal(format!("the stored logo of {tenant} does not read"))),
        None => Ok(None),
    }
}

/// `POST /t/{tenant}/branding/clear`.
pub async fn clear(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> Response {
    match crate::branding::clear(&state, &v.caller, &id).await {
        Ok(()) => Redirect::to(&format!("/t/{id}/branding?done=cleared")).into_response(),
        Err(e) => super::failed(v.lang, e),
    }
}
