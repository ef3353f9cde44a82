//! The frame of every page: the document, its security headers, the menu of a signed-in
//! reader, and the pieces forms share.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loop_api::Language;
use maud::{DOCTYPE, Markup, html};

use super::catalogue::M;
use crate::branding::Brand;

/// What a page may load: its own style sheet and scripts, images of its own or inline, and
/// nothing from anywhere else; forms post only here; never framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// `body` as an HTML response with the headers every page carries: the policy above, no
/// sniffing, no referrer (an address may carry a one-time code), never cached, never framed.
pub fn secured(status: StatusCode, body: String) -> Response {
    secured_with(status, body, CSP)
}

/// A standalone HTML document that holds its own style and nothing else (an invoice to
/// print): no script, no request to anywhere, the console's other headers.
pub fn standalone(body: String) -> Response {
    secured_with(
        StatusCode::OK,
        body,
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; \
         frame-ancestors 'none'; base-uri 'none'",
    )
}

fn secured_with(status: StatusCode, body: String, csp: &'static str) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    r
}

/// A link in the menu of a signed-in reader.
pub struct Link {
    pub href: String,
    pub label: &'static str,
    pub current: bool,
}

/// Who reads a page, as its frame shows them.
pub struct Frame<'a> {
    pub lang: Language,
    /// The menu and the signed-in person's name, for a signed-in reader.
    pub menu: Option<(Vec<Link>, &'a str)>,
    /// The form token of the reader's browser (for the sign-out form).
    pub csrf: &'a str,
    /// The partner's look the reader's tenant takes, if any.
    pub brand: Option<&'a Brand>,
}

/// A whole page: `title` above `content`, in `frame`.
pub fn document(status: StatusCode, frame: &Frame, title: &str, content: Markup) -> Response {
    let lang = frame.lang;
    let brand = frame.brand;
    let product = brand.map_or(M::Product.text(lang), |b| b.product_name.as_str());
    let page = html! {
        (DOCTYPE)
        html lang=(lang.as_str()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (product) }
                link rel="stylesheet" href=(super::assets::STYLE.as_str());
                @if let Some(b) = brand {
                    link rel="stylesheet" href=(b.style());
                }
            }
            body {
                a.skip href="#content" { (M::SkipToContent.text(lang)) }
                header.top.branded[brand.is_some()] {
                    span.product {
                        @if let Some(logo) = brand.and_then(Brand::logo_address) {
                            img src=(logo) alt="";
                        }
                        (product)
                    }
                    @if let Some((links, name)) = &frame.menu {
                        nav aria-label=(M::MainMenu.text(lang)) {
                            ul {
                                @for l in links {
                                    li {
                                        a href=(l.href) aria-current=[l.current.then_some("page")] {
                                            (l.label)
                                        }
                                    }
                                }
                            }
                        }
                        form.signout method="post" action="/signout" {
                            (token(frame.csrf))
                            span.who { (M::SignedInAs.fill(lang, &[name])) }
                            button type="submit" { (M::SignOut.text(lang)) }
                        }
                    }
                }
                main #content tabindex="-1" {
                    h1 { (title) }
                    (content)
                }
            }
        }
    };
    secured(status, page.into_string())
}

/// The hidden field that carries a form's token.
pub fn token(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A labelled input: its `<label>` tied to it by id.
pub struct Input<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub autocomplete: Option<&'a str>,
    pub required: bool,
    pub autofocus: bool,
    /// The keyboard a phone shows (`numeric` for codes).
    pub inputmode: Option<&'a str>,
}

impl<'a> Input<'a> {
    pub fn new(name: &'a str, label: &'a str, kind: &'a str) -> Self {
        Input {
            name,
            label,
            kind,
            value: "",
            autocomplete: None,
            required: false,
            autofocus: false,
            inputmode: None,
        }
    }

    pub fn render(&self) -> Markup {
        html! {
            p.field {
                label for=(self.name) { (self.label) }
                input id=(self.name) name=(self.name) type=(self.kind) value=(self.value)
                    autocomplete=[self.autocomplete] inputmode=[self.inputmode]
                    required[self.required] autofocus[self.autofocus];
            }
        }
    }
}

/// A message the reader must see (an error, a refusal).
pub fn alert(text: &str) -> Markup {
    html! { p.alert role="alert" { (text) } }
}

/// A moment as the page shows it, in the reader's `zone` (`2026-12-03 07:00 CET`), and
/// machine-readable (UTC) in `datetime`.
pub fn time(zone: crate::zone::Zone, at: chrono::DateTime<chrono::Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) { (zone.text(at)) }
    }
}

/// A region that scrolls sideways on its own when its content (a wide table) does not fit,
/// reachable with the keyboard and named for screen readers.
pub fn scroll(label: &str, content: Markup) -> Markup {
    html! { div.scroll tabindex="0" role="region" aria-label=(label) { (content) } }
}
