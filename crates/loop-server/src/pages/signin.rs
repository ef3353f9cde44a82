//! Signing in and out of the console. The same stages as the API's sign-in
//! ([`crate::auth::signin`]): the same throttle, the same audit, the same answer for an
//! unknown address as for a wrong password. With an authenticator, the right password is kept
//! as a challenge for five minutes and five codes, held by the browser in a cookie that only
//! the code page receives.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::catalogue::M;
use super::layout::{Input, alert, document, token};
use super::reader::{NoFields, Posted, Viewer, Visitor};
use crate::auth::{ClientInfo, request, session, signin};
use crate::db::{challenges, users};
use crate::domain::{new_secret, secret_hash};
use crate::error::ApiError;
use crate::state::AppState;

/// How long a right password waits for its code.
const CHALLENGE_MS: i64 = 5 * 60_000;
/// The cookie that holds the challenge, sent only to the code page.
const CHALLENGE_COOKIE: &str = "loop_signin";

/// Where to go after signing in: a path of this site, else the start page. Never another
/// site (`//host`, `/\host`), so a link to the sign-in page cannot send a person elsewhere.
fn next_of(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Next {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Default, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    remember: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Default, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: Option<String>,
}

/// The sign-in form, with `email` filled in and `error` above it.
fn form(v: &Visitor, status: StatusCode, email: &str, next: &str, error: Option<&str>) -> Response {
    let content = html! {
        @if let Some(e) = error { (alert(e)) }
        form method="post" action="/signin" {
            (token(&v.csrf))
            input type="hidden" name="next" value=(next);
            (Input { value: email, autocomplete: Some("username"), required: true,
                     autofocus: email.is_empty(), ..Input::new("email", v.t(M::Email), "email") }.render())
            (Input { autocomplete: Some("current-password"), required: true,
                     autofocus: !email.is_empty(), ..Input::new("password", v.t(M::Password), "password") }.render())
            p.check {
                input #remember type="checkbox" name="remember" value="on";
                label for="remember" { (v.t(M::RememberMe)) }
            }
            p { button type="submit" { (v.t(M::SignIn)) } }
        }
        p { a href="/reset" { (v.t(M::ForgotPassword)) } }
    };
    v.answer(document(status, &v.frame(), v.t(M::SignIn), content))
}

/// The code form of a challenge.
fn code_form(v: &Visitor, status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let content = html! {
        @if let Some(e) = error { (alert(e)) }
        p { (v.t(M::CodeHelp)) }
        form method="post" action="/signin/code" {
            (token(&v.csrf))
            input type="hidden" name="next" value=(next);
            (Input { autocomplete: Some("one-time-code"), required: true, autofocus: true,
                     inputmode: Some("numeric"), ..Input::new("code", v.t(M::Code), "text") }.render())
            p { button type="submit" { (v.t(M::Continue)) } }
        }
    };
    v.answer(document(status, &v.frame(), v.t(M::CodeTitle), content))
}

/// The words of a refused sign-in, and its status.
fn refusal(v: &Visitor, e: ApiError) -> (StatusCode, String, Option<u64>) {
    let (status, code, message, retry_after) = e.told();
    let text = match code {
        "invalid_credentials" => v.t(M::WrongCredentials).to_string(),
        "invalid_totp" => v.t(M::WrongCode).to_string(),
        "signin_throttled" => M::Throttled.fill(v.lang, &[&retry_after.unwrap_or(60).to_string()]),
        _ => message,
    };
    (status, text, retry_after)
}

fn with_retry_after(mut r: Response, retry_after: Option<u64>) -> Response {
    if let Some(secs) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// `GET /signin`: the form, or the start page for someone signed in already.
pub async fn show(v: Visitor, headers: HeaderMap, Query(q): Query<Next>) -> Response {
    if request::cookie(&headers, loop_api::SESSION_COOKIE).is_some_and(|c| !c.is_empty())
        && q.next.is_none()
    {
        return Redirect::to("/").into_response();
    }
    form(&v, StatusCode::OK, "", &next_of(q.next.as_deref()), None)
}

/// `POST /signin`: the password; then the session, or the code page.
pub async fn submit(
    State(state): State<AppState>,
    v: Visitor,
    client: ClientInfo,
    Posted(f): Posted<SignInForm>,
) -> Response {
    let now = state.now();
    let next = next_of(f.next.as_deref());
    let remember = f.remember.is_some();
    let (user, attempted) =
        match signin::password(&state, &client, &f.email, &f.password, now).await {
            Ok(passed) => passed,
            Err(e) => {
                let (status, text, retry_after) = refusal(&v, e);
                let page = form(&v, status, &f.email, &next, Some(&text));
                return with_retry_after(page, retry_after);
            }
        };
    if !user.user.totp_enabled {
        return opened(&state, &client, &user, attempted, remember, &next, now).await;
    }
    // The password was right: its attempt is taken back, each code counts on its own.
    let challenge = new_secret("lpc");
    let verified = user.password_hash.as_deref().unwrap_or_default();
    let kept = async {
        signin::undecided(&state, attempted).await?;
        let opened = challenges::insert(
            &state.db.pool,
            &secret_hash(&challenge),
            (&user.user.id, verified),
            remember,
            now + CHALLENGE_MS,
        )
        .await?;
        Ok::<_, ApiError>(opened)
    };
    match kept.await {
        Ok(true) => {}
        // The password changed (or the account was disabled) while it was checked.
        Ok(false) => {
            let (status, text, _) = refusal(&v, signin::bad_credentials());
            return form(&v, status, &f.email, &next, Some(&text));
        }
        Err(e) => return super::failed(v.lang, e),
    }
    let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let mut r = Redirect::to(&format!("/signin/code?next={next}")).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        challenge_cookie(&challenge, CHALLENGE_MS / 1000),
    );
    v.answer(r)
}

fn challenge_cookie(value: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{CHALLENGE_COOKIE}={value}; Path=/signin/code; Max-Age={max_age}; HttpOnly; Secure; \
         SameSite=Strict"
    ))
    .expect("cookie is ASCII")
}

/// Signs `user` in and sends the browser on to `next` with its session cookie.
async fn opened(
    state: &AppState,
    client: &ClientInfo,
    user: &users::UserRow,
    attempted: signin::Attempted,
    remember: bool,
    next: &str,
    now: i64,
) -> Response {
    match signin::open(state, client, user, attempted, None, remember, now).await {
        Ok(o) => {
            let mut r = Redirect::to(next).into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                session::cookie(&o.secret, o.cookie_max_age),
            );
            r
        }
        Err(e) => super::failed(user.user.language, e),
    }
}

/// `GET /signin/code`: the code form, while a challenge is held.
pub async fn show_code(v: Visitor, headers: HeaderMap, Query(q): Query<Next>) -> Response {
    if request::cookie(&headers, CHALLENGE_COOKIE).is_none() {
        return Redirect::to("/signin").into_response();
    }
    code_form(&v, StatusCode::OK, &next_of(q.next.as_deref()), None)
}

/// `POST /signin/code`: the authenticator code of the challenge the browser holds.
pub async fn submit_code(
    State(state): State<AppState>,
    v: Visitor,
    client: ClientInfo,
    headers: HeaderMap,
    Posted(f): Posted<CodeForm>,
) -> Response {
    let now = state.now();
    let next = next_of(f.next.as_deref());
    let held = request::cookie(&headers, CHALLENGE_COOKIE).unwrap_or_default();
    let hash = secret_hash(&held);
    let gone = |v: &Visitor| {
        let mut r = form(
            v,
            StatusCode::UNAUTHORIZED,
            "",
            &next,
            Some(v.t(M::ChallengeGone)),
        );
        r.headers_mut()
            .append(header::SET_COOKIE, challenge_cookie("", 0));
        r
    };
    let found = match challenges::try_once(&state.db.pool, &hash, now).await {
        Ok(found) => found,
        Err(e) => return super::failed(v.lang, e.into()),
    };
    let Some(challenge) = found else {
        return gone(&v);
    };
    let user = match users::user_by_id(&state.db.pool, &challenge.user_id).await {
        Ok(Some(u)) if u.user.status == loop_api::UserStatus::Active => u,
        Ok(_) => return gone(&v),
        Err(e) => return super::failed(v.lang, e.into()),
    };
    let checked = async {
        let attempted = signin::attempt(&state, &client, &user.user.email, now).await?;
        signin::second_factor(&state, &client, &user, &f.code, now).await?;
        Ok::<_, ApiError>(attempted)
    };
    match checked.await {
        Ok(attempted) => {
            match challenges::remove(&state.db.pool, &hash, now).await {
                Ok(true) => {}
                Ok(false) => return gone(&v),
                Err(e) => return super::failed(v.lang, e.into()),
            }
            let mut r = opened(
                &state,
                &client,
                &user,
                attempted,
                challenge.remember,
                &next,
                now,
            )
            .await;
            r.headers_mut()
                .append(header::SET_COOKIE, challenge_cookie("", 0));
            r
        }
        Err(e) => {
            let (status, text, retry_after) = refusal(&v, e);
            with_retry_after(code_form(&v, status, &next, Some(&text)), retry_after)
        }
    }
}

/// `POST /signout`: ends the session, as the API's sign-out does.
pub async fn sign_out(
    State(state): State<AppState>,
    v: Viewer,
    Posted(_): Posted<NoFields>,
) -> Response {
    if let Err(e) = session::end_by_request(&state, &v.caller).await {
        return super::failed(v.lang, e);
    }
    let mut r = Redirect::to("/signin").into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, session::cookie("", Some(0)));
    r
}
