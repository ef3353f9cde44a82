"""A short story through a Python client generated from the live OpenAPI document (see .ci/run).

Why this exists: the OpenAPI document is only as good as the clients it produces. .ci/run
generates a client with openapi-python-client from the document a running `loop server` serves
(failing on any generator warning, since a warning means part of the API was left out of the
client), and this script uses that client, and only it, the way an integrator would:

* sign in, and use the session token as the client's bearer token;
* create a customer tenant and a user in it, then find them in the lists;
* read the closed sets back as the generated enum types (tenant kind and status, user status,
  role), and times as datetimes;
* meet errors as typed `Problem` values with their stable `code`: a missing tenant (404), a
  malformed tenant ID in a filter (400), a throttled sign-in (429, with Retry-After), a request
  after signing out (401);
* export the audit log as JSON Lines and as CSV (string bodies of two media types), and check
  it against the chain heads.

Settings come from the environment: LOOP_STORY_BASE (https://127.0.0.1:PORT), LOOP_STORY_CA
(the server's tls-cert.pem), LOOP_ADMIN_PASSWORD. The generated package `loop_api_client` must
be importable (PYTHONPATH). Exit status 0 when every step holds; otherwise the first step that
did not, and why.
"""

from __future__ import annotations

import datetime
import json
import os
import sys

from loop_api_client import AuthenticatedClient, Client
from loop_api_client.api.audit import audit_heads, export_audit
from loop_api_client.api.auth import login, logout, me
from loop_api_client.api.tenants import create_tenant, get_tenant, list_tenants
from loop_api_client.api.users import create_user, get_user, list_users
from loop_api_client.models import (
    AuditHead,
    CreatedUser,
    CreateTenant,
    CreateUser,
    LoginRequest,
    LoginResponse,
    Me,
    Problem,
    Role,
    Tenant,
    TenantKind,
    TenantStatus,
    User,
    UserStatus,
)

ADMIN_EMAIL = "admin@localhost"
BASE = os.environ["LOOP_STORY_BASE"]
CA = os.environ["LOOP_STORY_CA"]
ADMIN_PASSWORD = os.environ["LOOP_ADMIN_PASSWORD"]
NOWHERE_TENANT = "tn_" + "0" * 32


class StoryFailed(Exception):
    pass


def check(holds: bool, what: str) -> None:
    if not holds:
        raise StoryFailed(what)


def answer(response, status: int, kind: type, what: str):
    """The parsed body of `response`, which must have `status` and parse as `kind`."""
    check(
        response.status_code == status,
        f"{what}: status {int(response.status_code)}, expected {status}: {response.content[:300]!r}",
    )
    check(
        isinstance(response.parsed, kind),
        f"{what}: parsed as {type(response.parsed).__name__}, expected {kind.__name__}",
    )
    return response.parsed


def problem(response, status: int, code: str, what: str) -> Problem:
    """The typed error of `response`: a Problem with this status and code."""
    p = answer(response, status, Problem, what)
    check(p.status == status and p.code == code, f"{what}: problem {p.to_dict()}")
    return p


def story() -> None:
    anonymous = Client(base_url=BASE, verify_ssl=CA)
    signed_in = answer(
        login.sync_detailed(
            client=anonymous, body=LoginRequest(email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
        ),
        200,
        LoginResponse,
        "sign in",
    )
    print(f"signed in as {signed_in.user.email}")
    admin = AuthenticatedClient(base_url=BASE, token=signed_in.session_token, verify_ssl=CA)
    who = answer(me.sync_detailed(client=admin), 200, Me, "who am I")
    check(
        any(b.role is Role.PROVIDER_ADMIN for b in who.roles),
        f"the admin's roles come back as Role: {[b.role for b in who.roles]}",
    )
    provider = who.user.tenant_id

    tenant = answer(
        create_tenant.sync_detailed(
            client=admin,
            body=CreateTenant(parent_id=provider, kind=TenantKind.CUSTOMER, name="Story Customer"),
        ),
        201,
        Tenant,
        "create a customer",
    )
    check(
        isinstance(tenant.kind, TenantKind) and tenant.kind is TenantKind.CUSTOMER,
        f"the tenant's kind is the enum TenantKind.CUSTOMER: {tenant.kind!r}",
    )
    check(tenant.status is TenantStatus.ACTIVE, f"the tenant is active: {tenant.status!r}")
    check(
        isinstance(tenant.created_at, datetime.datetime),
        f"created_at is a datetime: {tenant.created_at!r}",
    )
    print(f"created tenant {tenant.id} ({tenant.kind.value})")

    created = answer(
        create_user.sync_detailed(
            client=admin,
            body=CreateUser(
                tenant_id=tenant.id,
                email="ana@story.example",
                first_name="Ana",
                last_name="Story",
                password="ana-story-password-1",
                role=Role.OPERATOR,
            ),
        ),
        201,
        CreatedUser,
        "create a user",
    )
    ana = created.user
    check(ana.status is UserStatus.ACTIVE, f"the user is active: {ana.status!r}")
    print(f"created user {ana.id} ({ana.status.value})")

    tenants = answer(list_tenants.sync_detailed(client=admin), 200, list, "list tenants")
    check(
        any(isinstance(t, Tenant) and t.id == tenant.id for t in tenants),
        "the new tenant is in the list",
    )
    users = answer(
        list_users.sync_detailed(client=admin, tenant_id=tenant.id), 200, list, "list users"
    )
    check(
        [u.email for u in users if isinstance(u, User)] == ["ana@story.example"],
        f"the tenant's users are Ana alone: {users}",
    )
    again = answer(get_user.sync_detailed(ana.id, client=admin), 200, User, "get the user")
    check(again.id == ana.id and again.first_name == "Ana", f"the same user: {again}")

    p = problem(
        get_tenant.sync_detailed(NOWHERE_TENANT, client=admin), 404, "not_found", "a missing tenant"
    )
    print(f"a missing tenant: {p.status} {p.code}")
    problem(
        get_tenant.sync_detailed("acme", client=admin),
        404,
        "not_found",
        "a path that is no tenant ID",
    )
    p = problem(
        list_users.sync_detailed(client=admin, tenant_id="acme"),
        400,
        "invalid_request",
        "a tenant filter that is no tenant ID",
    )
    check("not a tenant ID" in (p.detail or ""), f"the detail says why: {p.detail!r}")

    jsonl = answer(
        export_audit.sync_detailed(client=admin, tenant_id=tenant.id),
        200,
        str,
        "export the audit log as JSON Lines",
    )
    events = [json.loads(line) for line in jsonl.splitlines() if line.strip()]
    actions = [e["action"] for e in events]
    check(
        actions[:3] == ["tenant.create", "user.create", "role.grant"],
        f"the export holds the story so far: {actions}",
    )
    csv = answer(
        export_audit.sync_detailed(client=admin, tenant_id=tenant.id, format_="csv"),
        200,
        str,
        "export the audit log as CSV",
    )
    check(
        csv.startswith("tenant_id,seq,") and len(csv.splitlines()) == len(events) + 1,
        f"one CSV row per event: {csv[:200]!r}",
    )
    heads = answer(
        audit_heads.sync_detailed(client=admin, tenant_id=tenant.id), 200, list, "chain heads"
    )
    check(
        len(heads) == 1
        and isinstance(heads[0], AuditHead)
        and (heads[0].seq, heads[0].hash_) == (events[-1]["seq"], events[-1]["hash"]),
        f"the head is the export's last event: {heads}",
    )
    print(f"exported {len(events)} events; the head matches")

    for _ in range(5):
        problem(
            login.sync_detailed(
                client=anonymous,
                body=LoginRequest(email="ana@story.example", password="not-anas-password"),
            ),
            401,
            "invalid_credentials",
            "a wrong password",
        )
    throttled = login.sync_detailed(
        client=anonymous,
        body=LoginRequest(email="ana@story.example", password="ana-story-password-1"),
    )
    problem(throttled, 429, "signin_throttled", "a sign-in after five wrong passwords")
    wait = throttled.headers.get("retry-after", "")
    check(wait.isdigit() and int(wait) > 0, f"a throttled sign-in says when: {wait!r}")
    print(f"throttled: retry after {wait} s")

    check(logout.sync_detailed(client=admin).status_code == 204, "sign out")
    problem(me.sync_detailed(client=admin), 401, "unauthenticated", "the ended session")
    print("signed out; the session is refused")


def main() -> int:
    try:
        story()
    except StoryFailed as e:
        print(f"python client story failed: {e}", file=sys.stderr)
        return 1
    print("python client story: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
