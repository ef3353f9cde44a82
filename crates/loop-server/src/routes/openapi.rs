//! What the OpenAPI document says beyond the handlers' own annotations, written once: the
//! two ways to present a session, and the errors the shared extractors answer.

/// Every operation of the document: (path, method, operation).
fn operations(
    doc: &mut utoipa::openapi::OpenApi,
) -> Vec<(
    &str,
    utoipa::openapi::path::HttpMethod,
    &mut utoipa::openapi::path::Operation,
)> {
    use utoipa::openapi::path::HttpMethod;
    let mut out = Vec::new();
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in [
            (HttpMethod::Get, item.get.as_mut()),
            (HttpMethod::Post, item.post.as_mut()),
            (HttpMethod::Put, item.put.as_mut()),
            (HttpMethod::Patch, item.patch.as_mut()),
            (HttpMethod::Delete, item.delete.as_mut()),
        ] {
            if let Some(op) = op {
                out.push((path.as_str(), method, op));
            }
        }
    }
    out
}

/// The two ways to present a session (see `auth::Caller`), declared once and required by
/// every operation but the [`ANONYMOUS`] ones: either one will do.
pub(super) fn document_security(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{
        ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "`Authorization: Bearer <session token>`: the `session_token` of \
                     `POST /api/v1/auth/login`. Device and API tokens are for the vault \
                     protocol and answer 401 `session_required` here.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "cookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            loop_api::SESSION_COOKIE,
            "The session cookie that `POST /api/v1/auth/login` sets (browsers). A change sent \
             with it must come from this site's own pages, or it answers 403 \
             `cross_site_request`.",
        ))),
    );
    for (path, _, op) in operations(doc) {
        op.security = Some(if ANONYMOUS.contains(&path) {
            Vec::new()
        } else {
            vec![
                SecurityRequirement::new("bearer", Vec::<String>::new()),
                SecurityRequirement::new("cookie", Vec::<String>::new()),
            ]
        });
    }
}

/// True when a response body is the Problem schema.
fn is_problem(content: &utoipa::openapi::RefOr<utoipa::openapi::Content>) -> bool {
    use utoipa::openapi::RefOr;
    match content {
        RefOr::T(c) => {
            matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"))
        }
        RefOr::Ref(_) => false,
    }
}

/// Operations that need no signed-in caller.
const ANONYMOUS: &[&str] = &[
    "/api/v1/auth/login",
    "/api/v1/auth/accept-invite",
    "/api/v1/auth/confirm-email",
    "/api/v1/auth/password-reset",
    "/api/v1/auth/password-reset/confirm",
    "/api/v1/billing/stripe/webhook",
    "/api/v1/signup/plans",
    "/api/v1/signup",
    "/api/v1/signup/confirm",
    "/api/v1/privacy/policy",
    "/api/v1/unsubscribe/{token}",
];

/// Adds the error answers every operation of a kind can give, which the shared extractors
/// produce rather than the handler (`Caller`, `Json`, `Query`, `Path`, the tenant filter), and
/// serves every Problem as `application/problem+json`, as the server sends it. Written once
/// here so a handler's own `responses(...)` lists only what is particular to it (409, 429,
/// ...), and the document still names every status a client can meet. A 429 declares its
/// `Retry-After` header; the success of a paged listing declares its `Link` header.
///
/// - 400: the body or query does not parse (a malformed ID among them);
/// - 401: no session, an ended one, or a token where a session is needed;
/// - 403: a permission is checked on the object or tenant named, or a change came with the
///   session cookie from another site;
/// - 404: the object or tenant named is missing or outside the caller's scope;
/// - 410: a change on an erased tenant, or any request with one of its (revoked) tokens;
/// - 413, 415: the body is too large, or not JSON.
pub(super) fn document_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::path::{HttpMethod, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

    const PROBLEM: &str = "application/problem+json";
    let problem = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    PROBLEM,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    };
    for (path, method, op) in operations(doc) {
        let params: Vec<(ParameterIn, String)> = op
            .parameters
            .iter()
            .flatten()
            .filter_map(|p| match p {
                RefOr::T(p) => Some((p.parameter_in.clone(), p.name.clone())),
                RefOr::Ref(_) => None,
            })
            .collect();
        let has_body = op.request_body.is_some();
        let has_query = params.iter().any(|(at, _)| *at == ParameterIn::Query);
        let in_path = params.iter().any(|(at, _)| *at == ParameterIn::Path);
        let names_tenant = params.iter().any(|(_, name)| name == "tenant_id");
        let paged = params
            .iter()
            .any(|(at, name)| *at == ParameterIn::Query && name == "cursor");
        let signed_in = !ANONYMOUS.contains(&path);
        let own_account = path.starts_with("/api/v1/me") || path.starts_with("/api/v1/auth/");
        let mut add = |status: &str, description: &str| {
            op.responses
                .responses
                .entry(status.to_string())
                .or_insert_with(|| problem(description));
        };
        if has_body || has_query {
            add("400", "Invalid request (problem+json)");
        }
        if signed_in {
            add("401", "Not signed in, or the session ended (problem+json)");
        }
        if signed_in && (method != HttpMethod::Get || in_path || names_tenant) {
            add(
                "403",
                "The role or token lacks the permission, or a change came with the \
                 session cookie from another site (problem+json)",
            );
        }
        if in_path || names_tenant || (has_body && !own_account) {
            add(
                "404",
                "Not found, or outside your tenant scope (problem+json)",
            );
        }
        if signed_in {
            add(
                "410",
                "The tenant was erased (`tenant_erased`): nothing of it changes any more, and \
                 its tokens are refused with this (problem+json)",
            );
        }
        if has_body {
            add("413", "The request body is too large (problem+json)");
            add(
                "415",
                "The body is not sent as application/json (problem+json)",
            );
        }
        add(
            "500",
            "Internal error: the detail holds only an incident ID (problem+json)",
        );
        add(
            "503",
            "The server is busy (`busy`: no database connection came free in time), or a \
             service it relies on is away: try again after `Retry-After` (problem+json)",
        );
        for (status, response) in op.responses.responses.iter_mut() {
            let RefOr::T(response) = response else {
                continue;
            };
            if status == "200" && paged {
                response.headers.insert(
                    "Link".into(),
                    RefOr::T(
                        HeaderBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                            .description(Some(
                                "When more rows follow: `<PATH?QUERY&cursor=C>; rel=\"next\"`, \
                                 the same request for the next page.",
                            ))
                            .build(),
                    ),
                );
            }
            if status == "429" || status == "503" {
                response.headers.insert(
                    "Retry-After".into(),
                    RefOr::T(
                        HeaderBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                            .description(Some("Seconds to wait before trying again."))
                            .build(),
                    ),
                );
            }
            let json = response.content.get_index_of("application/json");
            if let Some(i) = json.filter(|&i| is_problem(&response.content[i])) {
                let (_, content) = response.content.shift_remove_index(i).expect("index");
                response.content.insert(PROBLEM.to_string(), content);
            }
        }
    }
}
