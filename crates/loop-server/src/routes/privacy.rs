//! The privacy policy, consent to marketing and one-click unsubscribe, restriction of
//! processing, and announcements (`crate::privacy`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use loop_api::{
    AcknowledgePolicy, Announce, Announcement, MarketingConsent, PrivacyPolicy, PublishPolicy,
    SetMarketingConsent, SetRestriction, Unsubscribed, User, UserId,
};

use super::{Json, Path};
use crate::auth::{Caller, ClientInfo};
use crate::db::privacy;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The privacy policy in force
///
/// The version published last. `404` (`no_policy`) before the provider published one.
#[utoipa::path(get, path = "/api/v1/privacy/policy", tag = "privacy",
    responses((status = 200, description = "Success", body = PrivacyPolicy),
        (status = 404, description = "None is published (problem+json)", body = loop_api::Problem)))]
pub async fn current_policy(State(state): State<AppState>) -> ApiResult<axum::Json<PrivacyPolicy>> {
    privacy::current_policy(&state.db.pool)
        .await?
        .map(axum::Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_policy",
                "no privacy policy is published",
            )
        })
}

/// Publish a version of the privacy policy
///
/// It is in force from now on; every user is shown it at their next sign-in
/// (`policy_to_acknowledge`) until they acknowledge it. The provider's admins.
#[utoipa::path(post, path = "/api/v1/privacy/policies", tag = "privacy",
    request_body = PublishPolicy,
    responses((status = 201, description = "Published", body = PrivacyPolicy),
        (status = 403, description = "Not an admin of the provider (problem+json)", body = loop_api::Problem),
        (status = 409, description = "This version was published already (problem+json)", body = loop_api::Problem)))]
pub async fn publish_policy(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<PublishPolicy>,
) -> ApiResult<(StatusCode, axum::Json<PrivacyPolicy>)> {
    let p = crate::privacy::publish(&state, &caller, req).await?;
    Ok((StatusCode::CREATED, axum::Json(p)))
}

/// Acknowledge the privacy policy
///
/// Records that you read the version in force (it must be that version).
#[utoipa::path(post, path = "/api/v1/me/policy-acknowledgement", tag = "privacy",
    request_body = AcknowledgePolicy,
    responses((status = 204, description = "Recorded"),
        (status = 404, description = "None is published (problem+json)", body = loop_api::Problem),
        (status = 409, description = "Not the version in force (problem+json)", body = loop_api::Problem)))]
pub async fn acknowledge_policy(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<AcknowledgePolicy>,
) -> ApiResult<StatusCode> {
    crate::privacy::acknowledge(&state, &caller, &req.version).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Your consent to marketing
#[utoipa::path(get, path = "/api/v1/me/marketing-consent", tag = "privacy",
    responses((status = 200, description = "Success", body = MarketingConsent)))]
pub async fn marketing_consent(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<MarketingConsent>> {
    let u = &caller.user()?.user.user;
    Ok(axum::Json(
        privacy::marketing_consent(&state.db.pool, &u.id, u.marketing_consent).await?,
    ))
}

/// Give or withdraw your consent to marketing
///
/// Off until you give it. The change is recorded with the time and the privacy policy in
/// force, and takes effect at once, also for announcements already queued.
#[utoipa::path(put, path = "/api/v1/me/marketing-consent", tag = "privacy",
    request_body = SetMarketingConsent,
    responses((status = 200, description = "Success", body = MarketingConsent)))]
pub async fn set_marketing_consent(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<SetMarketingConsent>,
) -> ApiResult<axum::Json<MarketingConsent>> {
    Ok(axum::Json(
        crate::privacy::set_consent(&state, &caller, req.given).await?,
    ))
}

/// Unsubscribe page
///
/// What a browser shows for a marketing message's unsubscribe link: a button that sends
/// the one-click `POST`. Opening the page changes nothing.
#[utoipa::path(get, path = "/api/v1/unsubscribe/{token}", tag = "privacy",
    params(("token" = String, Path, description = "The opaque token of the message's link")),
    responses((status = 200, description = "The page", content_type = "text/html; charset=utf-8", body = String),
        (status = 404, description = "Not a link the service sent (problem+json)", body = loop_api::Problem)))]
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<impl IntoResponse> {
    // Only a link the service sent gets the page; its token is hex, so the form's address
    // needs no escaping.
    if !crate::privacy::is_unsubscribe_link(&state, &token).await? {
        return Err(ApiError::not_found());
    }
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Unsubscribe from Loop Backup news</title></head><body>\
         <h1>Unsubscribe from Loop Backup news</h1>\
         <p>You will receive no more product news. Service messages about your account \
         (job failures, invoices) are not marketing and keep coming.</p>\
         <form method=\"post\" action=\"{token}\">\
         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe</button></form></body></html>"
    );
    Ok(crate::pages::secured(StatusCode::OK, page))
}

/// Unsubscribe with one click
///
/// RFC 8058 one-click unsubscribe: the link of a marketing message, sent by the mail
/// client with the body `List-Unsubscribe=One-Click`. Needs no session and no cookie: the
/// link is the credential. Withdraws the consent to marketing at once.
#[utoipa::path(post, path = "/api/v1/unsubscribe/{token}", tag = "privacy",
    params(("token" = String, Path, description = "The opaque token of the message's link")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "`List-Unsubscribe=One-Click` (also as multipart/form-data)"),
    responses((status = 200, description = "Unsubscribed", body = Unsubscribed),
        (status = 400, description = "The body is not `List-Unsubscribe=One-Click` (problem+json)", body = loop_api::Problem),
        (status = 404, description = "Not a link the service sent (problem+json)", body = loop_api::Problem),
        (status = 415, description = "Not a form (problem+json)", body = loop_api::Problem)))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<axum::Json<Unsubscribed>> {
    one_click_body(&headers, body)?;
    crate::privacy::unsubscribe(&state, &client, &token).await?;
    Ok(axum::Json(Unsubscribed {
        status: "unsubscribed".into(),
    }))
}

/// The body RFC 8058 prescribes: the form field `List-Unsubscribe=One-Click`, sent as
/// `application/x-www-form-urlencoded` or `multipart/form-data`.
fn one_click_body(
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<()> {
    let kind = super::media_type(headers);
    let body = body.map_err(|e| ApiError::new(e.status(), "invalid_body", e.body_text()))?;
    let text = String::from_utf8_lossy(&body);
    let one_click = match kind.as_str() {
        "application/x-www-form-urlencoded" => text
            .split('&')
            .any(|pair| pair.trim() == "List-Unsubscribe=One-Click"),
        "multipart/form-data" => {
            text.contains("name=\"List-Unsubscribe\"") && text.contains("One-Click")
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the form List-Unsubscribe=One-Click",
            ));
        }
    };
    if !one_click {
        return Err(ApiError::bad_request(
            "the body must be List-Unsubscribe=One-Click",
        ));
    }
    Ok(())
}

/// Restrict processing of a person's data
///
/// A restricted person's data is kept and used for nothing beyond storage and the service
/// itself: no announcements, no summary reports. Admins of the person's tenant, or the
/// person.
#[utoipa::path(put, path = "/api/v1/users/{id}/restriction", tag = "privacy",
    params(("id" = UserId, Path)), request_body = SetRestriction,
    responses((status = 200, description = "Success", body = User),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn set_restriction(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
    Json(req): Json<SetRestriction>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(
        crate::privacy::restrict(&state, &caller, id.as_str(), req.restricted).await?,
    ))
}

/// Send an announcement
///
/// Product news, mailed to every user who consented to marketing and whose processing is
/// not restricted, each message with its own one-click unsubscribe link. The provider's
/// admins; needs `public_url`.
#[utoipa::path(post, path = "/api/v1/announcements", tag = "privacy",
    request_body = Announce,
    responses((status = 201, description = "Queued", body = Announcement),
        (status = 409, description = "public_url is not set (problem+json)", body = loop_api::Problem)))]
pub async fn announce(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<Announce>,
) -> ApiResult<(StatusCode, axum::Json<Announcement>)> {
    let a = crate::privacy::announce(&state, &caller, req).await?;
    Ok((StatusCode::CREATED, axum::Json(a)))
}
