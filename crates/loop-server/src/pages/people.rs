//! The tenant tree and the people of a tenant: a partner (or the provider) sees every tenant
//! below it with its health, subscription and storage, steps into one, and makes a new one;
//! an administrator lists a tenant's users and invites someone by mail, who accepts on the
//! invitation page. Every change goes through the API's own functions
//! ([`crate::tenancy::create`], [`crate::directory::create_user`], [`crate::codes`]).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use loop_api::{CreateTenant, CreateUser, Role, TenantId, TenantKind};
use maud::{Markup, html};
use serde::Deserialize;

use super::catalogue::M;
use super::layout::{Input, alert, document, scroll, token};
use super::reader::{CodeForm, Done, Posted, Viewer, Visitor};
use crate::auth::ClientInfo;
use crate::db::page::Page;
use crate::domain::{Permission, TenantScope};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Tenants on one page of the tree.
const TREE_PAGE: u32 = 500;

fn note(v: &Viewer, done: Option<&str>) -> Option<&'static str> {
    match done? {
        "created" => Some(v.t(M::Created)),
        "invited" => Some(v.t(M::Invited)),
        "roles" => Some(v.t(M::RolesChanged)),
        _ => None,
    }
}

/// The two listings of this file, each with its form.
#[derive(Clone, Copy)]
enum Listing {
    Tree,
    Users,
}

impl Listing {
    fn path(self) -> &'static str {
        match self {
            Listing::Tree => "tenants",
            Listing::Users => "users",
        }
    }
}

/// The listing of tenant `id` with `above` over it, or why it cannot be shown.
async fn listing(
    state: &AppState,
    v: &Viewer,
    id: &str,
    which: Listing,
    status: StatusCode,
    above: Option<Markup>,
) -> Response {
    let shown = match which {
        Listing::Tree => tree_page(state, v, id, status, above).await,
        Listing::Users => users_page(state, v, id, status, above).await,
    };
    shown.unwrap_or_else(|e| super::failed(v.lang, e))
}

/// A listing's page, with what was just done (`?done=`) over it.
async fn shown(state: &AppState, v: &Viewer, id: &str, which: Listing, q: &Done) -> Response {
    let above = note(v, q.done.as_deref()).map(|n| html! { p.status role="status" { (n) } });
    listing(state, v, id, which, StatusCode::OK, above).await
}

/// After a change from a listing's form: back to it with `done`, or the listing again with
/// why the change was refused (a tenant the reader may not see stays a plain 404).
async fn after_change<T>(
    state: &AppState,
    v: &Viewer,
    id: &str,
    which: Listing,
    made: ApiResult<T>,
    done: &str,
) -> Response {
    match made {
        Ok(_) => Redirect::to(&format!("/t/{id}/{}?done={done}", which.path())).into_response(),
        Err(e) if e.status().is_client_error() && e.status() != StatusCode::NOT_FOUND => {
            let (status, _, message, _) = e.told();
            listing(state, v, id, which, status, Some(alert(&message))).await
        }
        Err(e) => super::failed(v.lang, e),
    }
}

/// `GET /t/{tenant}/tenants`.
pub async fn tree(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    shown(&state, &v, &id, Listing::Tree, &q).await
}

async fn tree_page(
    state: &AppState,
    v: &Viewer,
    id: &str,
    status: StatusCode,
    above: Option<Markup>,
) -> ApiResult<Response> {
    let t = v.caller.tenant(state, Permission::TenantRead, id).await?;
    // Each column shows only what the reader may read elsewhere (the API answers the rest
    // 403): health needs job-read, the subscription billing-read, storage vault-read.
    let can = |p| v.caller.can(p, &t.path);
    let (health, billing, storage) = (
        can(Permission::JobRead),
        can(Permission::BillingRead),
        can(Permission::VaultRead),
    );
    let rows = crate::db::dashboard::tree(&state.db.pool, &t.path, &Page::first(TREE_PAGE)).await?;
    let depth = |path: &str| {
        path.matches('/')
            .count()
            .saturating_sub(t.path.as_str().matches('/').count())
    };
    let size = |b: i64| crate::notify::email::size(b.max(0) as u64);
    let lang = v.lang;
    let children: Vec<_> = rows.items.iter().filter(|r| r.id != t.tenant.id).collect();
    let kinds: Vec<TenantKind> = [TenantKind::Partner, TenantKind::Customer]
        .into_iter()
        .filter(|k| crate::domain::TenantTree::may_have_child(t.tenant.kind, *k))
        .collect();
    let title = M::TenantsUnder.fill(lang, &[&t.tenant.name]);
    let content = html! {
        (v.tenant_menu(&t))
        @if let Some(a) = above { (a) }
        @if children.is_empty() {
            p { (v.t(M::NoTenants)) }
        } @else {
            (scroll(&title, html! { table {
                thead { tr {
                    th scope="col" { (v.t(M::Tenant)) }
                    th scope="col" { (v.t(M::Kind)) }
                    @if health { th scope="col" { (v.t(M::Health)) } }
                    @if billing { th scope="col" { (v.t(M::Subscription)) } }
                    @if storage { th scope="col" { (v.t(M::Storage)) } }
                } }
                tbody {
                    @for r in &children {
                        tr data-tenant=(r.id) {
                            th scope="row" class={"depth-" (depth(&r.path).min(4))} {
                                a href={"/t/" (r.id)} { (r.name) }
                            }
                            td { (r.kind) @if r.status != "active" { " (" (r.status) ")" } }
                            @if health { td {
                                @if r.failing > 0 {
                                    span.badge.failed { (M::ItemsFailing.fill(lang, &[&r.failing.to_string(), &r.items.to_string()])) }
                                } @else {
                                    (M::ItemsOk.fill(lang, &[&r.items.to_string()]))
                                }
                            } }
                            @if billing { td { (r.subscription.as_deref().unwrap_or("—")) } }
                            @if storage { td { (size(r.stored)) } }
                        }
                    }
                }
            } }))
        }
        @if !kinds.is_empty() && v.caller.can(Permission::TenantCreate, &t.path) {
            section aria-labelledby="new-tenant" {
                h2 #new-tenant { (v.t(M::NewTenant)) }
                form method="post" action={"/t/" (t.tenant.id) "/tenants"} {
                    (token(&v.csrf))
                    (Input { required: true, ..Input::new("name", v.t(M::Name), "text") }.render())
                    p.field {
                        label for="kind" { (v.t(M::Kind)) }
                        select #kind name="kind" {
                            @for k in &kinds {
                                option value=(k.as_str()) selected[*k == TenantKind::Customer] {
                                    (v.t(if *k == TenantKind::Customer { M::KindCustomer } else { M::KindPartner }))
                                }
                            }
                        }
                    }
                    p { button type="submit" { (v.t(M::Create)) } }
                }
            }
        }
    };
    Ok(document(status, &v.frame(), &title, content))
}

#[derive(Debug, Deserialize)]
pub struct NewTenantForm {
    name: String,
    kind: TenantKind,
}

/// `POST /t/{tenant}/tenants`: a new tenant below this one.
pub async fn create_tenant(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(f): Posted<NewTenantForm>,
) -> Response {
    let made = async {
        let parent_id = TenantId::parse(&id).map_err(|_| ApiError::not_found())?;
        let req = CreateTenant {
            parent_id,
            kind: f.kind,
            name: f.name,
            time_zone: None,
            plan_id: None,
        };
        crate::tenancy::create(&state, &v.caller, req).await
    };
    after_change(&state, &v, &id, Listing::Tree, made.await, "created").await
}

/// `GET /t/{tenant}/users`.
pub async fn users(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    shown(&state, &v, &id, Listing::Users, &q).await
}

async fn users_page(
    state: &AppState,
    v: &Viewer,
    id: &str,
    status: StatusCode,
    above: Option<Markup>,
) -> ApiResult<Response> {
    let t = v.caller.tenant(state, Permission::UserRead, id).await?;
    let scope = TenantScope::One(t.tenant.id.clone());
    let people =
        crate::db::users::users_in(&state.db.pool, &scope, Some(&Page::first(500))).await?;
    let mut roles = std::collections::HashMap::<String, Vec<(String, Role)>>::new();
    for b in crate::db::bindings::bindings_in(&state.db.pool, &t.tenant.id).await? {
        roles.entry(b.user_id).or_default().push((b.id, b.role));
    }
    let can_grant = v.caller.can(Permission::RoleGrant, &t.path);
    let grantable: Vec<Role> = [
        Role::PartnerAdmin,
        Role::Admin,
        Role::Operator,
        Role::Auditor,
        Role::Billing,
    ]
    .into_iter()
    .filter(|r| crate::domain::RoleRules::bindable_on(*r, t.tenant.kind))
    .collect();
    let title = M::UsersOf.fill(v.lang, &[&t.tenant.name]);
    let content = html! {
        (v.tenant_menu(&t))
        @if let Some(a) = above { (a) }
        (scroll(&title, html! { table {
            thead { tr {
                th scope="col" { (v.t(M::Name)) }
                th scope="col" { (v.t(M::Email)) }
                th scope="col" { (v.t(M::Role)) }
                th scope="col" { (v.t(M::Status)) }
            } }
            tbody {
                @for u in &people.items {
                    tr data-user=(u.id) {
                        th scope="row" { (u.first_name) " " (u.last_name) }
                        td { (u.email) }
                        td {
                            @match roles.get(&u.id) {
                                Some(rs) if can_grant => @for (binding, role) in rs {
                                    (role_revoke(v, &t.tenant.id, &u.id, binding, *role, &u.email))
                                },
                                Some(rs) => (rs.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>().join(", ")),
                                None => (v.t(M::NoRole)),
                            }
                            @if can_grant {
                                (role_grant(v, &t.tenant.id, &u.id, &u.email, &grantable))
                            }
                        }
                        td { (u.status.as_str()) }
                    }
                }
            }
        } }))
        @if v.caller.can(Permission::UserWrite, &t.path) {
            section aria-labelledby="invite-h" {
                h2 #invite-h { (v.t(M::InviteSomeone)) }
                p { (v.t(M::InviteHelp)) }
                form method="post" action={"/t/" (t.tenant.id) "/users"} {
                    (token(&v.csrf))
                    (Input { required: true, autocomplete: Some("off"), ..Input::new("email", v.t(M::Email), "email") }.render())
                    (Input { required: true, autocomplete: Some("off"), ..Input::new("first_name", v.t(M::FirstName), "text") }.render())
                    (Input { required: true, autocomplete: Some("off"), ..Input::new("last_name", v.t(M::LastName), "text") }.render())
                    @if v.caller.can(Permission::RoleGrant, &t.path) {
                        p.field {
                            label for="role" { (v.t(M::Role)) }
                            select #role name="role" {
                                option value="" { (v.t(M::NoRole)) }
                                @for r in &grantable {
                                    option value=(r.as_str()) selected[*r == Role::Admin] { (r.as_str()) }
                                }
                            }
                        }
                    }
                    p { button type="submit" { (v.t(M::Invite)) } }
                }
            }
        }
    };
    Ok(document(status, &v.frame(), &title, content))
}

/// A role of a user with its button that removes it.
fn role_revoke(
    v: &Viewer,
    tenant: &str,
    user: &str,
    binding: &str,
    role: Role,
    who: &str,
) -> Markup {
    html! {
        form.inline.role method="post" action={"/users/" (user) "/roles/" (binding) "/revoke"} {
            (token(&v.csrf))
            input type="hidden" name="tenant_id" value=(tenant);
            (role.as_str()) " "
            button type="submit" aria-label=(M::RemoveRole.fill(v.lang, &[role.as_str(), who])) { "×" }
        }
    }
}

/// The form that gives a user another role on this tenant.
fn role_grant(v: &Viewer, tenant: &str, user: &str, who: &str, grantable: &[Role]) -> Markup {
    let field = format!("role-{user}");
    html! {
        form.inline.role method="post" action={"/users/" (user) "/roles"} {
            (token(&v.csrf))
            input type="hidden" name="tenant_id" value=(tenant);
            label.visually-hidden for=(field) { (M::RoleFor.fill(v.lang, &[who])) }
            select id=(field) name="role" {
                @for r in grantable { option value=(r.as_str()) { (r.as_str()) } }
            }
            " "
            button type="submit" { (v.t(M::AddRole)) }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    tenant_id: String,
    #[serde(default)]
    role: String,
}

/// `POST /users/{user}/roles`: gives the user a role on the tenant whose page posted it.
pub async fn grant(
    State(state): State<AppState>,
    v: Viewer,
    Path(user): Path<String>,
    Posted(f): Posted<RoleForm>,
) -> Response {
    let made = async {
        let user = loop_api::UserId::parse(&user).map_err(|_| ApiError::not_found())?;
        let req = loop_api::CreateRoleBinding {
            tenant_id: TenantId::parse(&f.tenant_id).map_err(|_| ApiError::not_found())?,
            role: f
                .role
                .parse::<Role>()
                .map_err(|_| ApiError::bad_request("unknown role"))?,
        };
        crate::directory::grant_role(&state, &v.caller, &user, req).await
    };
    let made = made.await;
    roles_changed(&state, &v, &f.tenant_id, made).await
}

/// `POST /users/{user}/roles/{binding}/revoke`: takes a role away.
pub async fn revoke(
    State(state): State<AppState>,
    v: Viewer,
    Path((user, binding)): Path<(String, String)>,
    Posted(f): Posted<RoleForm>,
) -> Response {
    let made = async {
        let user = loop_api::UserId::parse(&user).map_err(|_| ApiError::not_found())?;
        let binding =
            loop_api::RoleBindingId::parse(&binding).map_err(|_| ApiError::not_found())?;
        crate::directory::revoke_role(&state, &v.caller, &user, &binding).await
    };
    let made = made.await;
    roles_changed(&state, &v, &f.tenant_id, made).await
}

/// Back to the users of the tenant whose page changed a role (a tenant ID, nothing else).
async fn roles_changed<T>(
    state: &AppState,
    v: &Viewer,
    tenant: &str,
    made: ApiResult<T>,
) -> Response {
    match TenantId::parse(tenant) {
        Ok(t) => after_change(state, v, t.as_str(), Listing::Users, made, "roles").await,
        Err(_) => super::failed(v.lang, made.err().unwrap_or_else(ApiError::not_found)),
    }
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    email: String,
    first_name: String,
    last_name: String,
    #[serde(default)]
    role: String,
}

/// `POST /t/{tenant}/users`: invites someone by mail (with a first role when chosen).
pub async fn invite(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(f): Posted<InviteForm>,
) -> Response {
    let made = async {
        let tenant_id = TenantId::parse(&id).map_err(|_| ApiError::not_found())?;
        let role = match f.role.as_str() {
            "" => None,
            r => Some(
                r.parse::<Role>()
                    .map_err(|_| ApiError::bad_request("unknown role"))?,
            ),
        };
        let req = CreateUser {
            tenant_id,
            email: f.email,
            first_name: f.first_name,
            last_name: f.last_name,
            business_address: String::new(),
            password: None,
            role,
        };
        let code = crate::directory::InviteCode::ByMail;
        crate::directory::create_user(&state, &v.caller, req, code).await
    };
    after_change(&state, &v, &id, Listing::Users, made.await, "invited").await
}

/// Carries an invitation's code: no `Debug`.
#[derive(Default, Deserialize)]
pub struct InviteToken {
    #[serde(default)]
    token: String,
}

/// `GET /invite?token=…`: the invitation mail's link: a form to choose the password.
/// Opening it changes nothing.
pub async fn invitation(v: Visitor, Query(q): Query<InviteToken>) -> Response {
    if q.token.is_empty() || q.token.len() > 128 {
        return super::failed(v.lang, ApiError::not_found());
    }
    invitation_form(&v, StatusCode::OK, &q.token, None)
}

fn invitation_form(v: &Visitor, status: StatusCode, code: &str, error: Option<&str>) -> Response {
    let to = CodeForm {
        action: "/invite",
        field: "token",
        code,
        title: M::AcceptInvitation,
        intro: Some(M::ChoosePassword),
    };
    v.code_password_form(to, status, error)
}

#[derive(Deserialize)]
pub struct AcceptForm {
    token: String,
    password: String,
}

/// `POST /invite`: sets the invited account's password; then on to sign in.
pub async fn accept(
    State(state): State<AppState>,
    v: Visitor,
    client: ClientInfo,
    Posted(f): Posted<AcceptForm>,
) -> Response {
    match crate::codes::accept_invite(&state, &client, &f.token, &f.password).await {
        Ok(()) => v.done_then_sign_in(M::AcceptInvitation, M::InvitationAccepted),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            let (status, _, message, _) = e.told();
            invitation_form(&v, status, &f.token, Some(&message))
        }
        Err(e) => super::failed(v.lang, e),
    }
}
