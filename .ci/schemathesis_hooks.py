"""Schemathesis hooks for fuzzing the JSON API of a running `loop server` (see .ci/run).

Why these hooks exist:

* Every request is signed in as the provider admin (`Authorization: Bearer <session token>`).
  The fuzzer itself can end that session: `POST /auth/logout`, `DELETE /sessions/{id}`, a
  password change. Without care every later request answers 401 and every check "passes"
  on nothing. So the admin's session comes from a Schemathesis auth provider, and
  Schemathesis signs in again and replays the request whenever an answer is 401.
* Operations on the caller's own account (`/me/password`, `/me/totp`, `/me/totp/confirm`)
  run as a second, throw-away user, so the admin never changes its own password or locks
  itself behind TOTP halfway through a run.
* Random input almost never names an object that exists or carries a secret the server
  issued, so most operations would only ever answer 404 or 400, and their success answers
  would never be checked against the schema. Every second case of an operation therefore
  gets real IDs (a tenant, users, a device, a token, vaults, replicas, remotes (the server
  itself) and sync jobs, a session, a role binding, a queued job made before the run, an
  unsubscribe link, a data-subject request, a sub-processor, a personal-data archive), and
  every fourth case a complete valid body;
  the other cases stay as generated. The job is a restore to a device no agent runs on, so it
  stays queued until the fuzzer cancels it; the replica is made before the run and waited for
  until a replication completed, so it can be promoted.
* An operation counts as covered only if at least one of its cases got a 2xx answer. The
  hooks record every answer in the file named by LOOP_FUZZ_STATS, and `python3
  schemathesis_hooks.py --check STATS OPENAPI JUNIT` fails an operation that never got one
  (so an operation that was only ever refused cannot pass unnoticed) or that failed a check
  in Schemathesis' JUnit report. It prints `schemathesis: N passed, M failed`, counting
  operations.

Settings come from the environment: LOOP_FUZZ_BASE (https://127.0.0.1:PORT), LOOP_FUZZ_CA
(the server's tls-cert.pem), LOOP_ADMIN_PASSWORD, LOOP_FUZZ_STATS, LOOP_FUZZ_MAILDIR (where
the SMTP sink the server mails to leaves its messages).

* The payment processor's webhook takes no session: every second case is an event signed
  with the stand-in processor's webhook secret (sent as bytes, so the signature covers
  exactly what goes out), the others go unsigned and must be refused.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import struct
import sys
import time
from collections import defaultdict

ADMIN_EMAIL = "admin@localhost"
STRIPE_WEBHOOK = "POST /api/v1/billing/stripe/webhook"
STRIPE_WEBHOOK_SECRET = b"whsec_fake_processor"
OWN_ACCOUNT = ("/api/v1/me", "/api/v1/me/password", "/api/v1/me/totp", "/api/v1/me/totp/confirm")


# How far the server's (test) clock runs ahead of this machine's, in seconds.
clock_ahead = [0.0]


def totp_code(secret_b32: str, at: float | None = None) -> str:
    """RFC 6238 code (SHA-1, 6 digits, 30 s), as the server checks it (on its clock)."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    step = int((time.time() + clock_ahead[0] if at is None else at) // 30)
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[off : off + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def check(stats_path: str, openapi_path: str, junit_path: str) -> int:
    """Exit status of the fuzz step: 1 when an operation failed a check or never got a 2xx."""
    import xml.etree.ElementTree as ET

    with open(openapi_path) as f:
        doc = json.load(f)
    documented = sorted(
        f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete")
    )
    with open(stats_path) as f:
        statuses: dict[str, list[int]] = json.load(f)
    failed_checks = {
        case.get("name"): [e.get("message", "?") for e in case if e.tag in ("failure", "error")]
        for case in ET.parse(junit_path).iter("testcase")
    }
    passed = failed = 0
    for label in documented:
        seen = statuses.get(label, [])
        problems = []
        if not seen:
            problems.append("never called")
        elif not any(200 <= s < 300 for s in seen):
            problems.append(f"never answered 2xx (got {sorted(set(seen))})")
        if failed_checks.get(label):
            problems.append("failed " + ", ".join(failed_checks[label]))
        if problems:
            failed += 1
            print(f"FAIL {label}: {'; '.join(problems)}")
        else:
            passed += 1
    print(f"schemathesis: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "--check":
        sys.exit("usage: schemathesis_hooks.py --check STATS OPENAPI JUNIT")
    sys.exit(check(*sys.argv[2:]))


import requests  # noqa: E402  (only the hooks need these; --check runs without them)
import schemathesis  # noqa: E402

BASE = os.environ.get("LOOP_FUZZ_BASE", "")
CA = os.environ.get("LOOP_FUZZ_CA", "")
STATS = os.environ.get("LOOP_FUZZ_STATS", "")
MAILDIR = os.environ.get("LOOP_FUZZ_MAILDIR", "")

# Passwords change during the run (POST /me/password); the current ones live here.
passwords = {ADMIN_EMAIL: os.environ.get("LOOP_ADMIN_PASSWORD", "")}
totp_secrets: dict[str, str] = {}
fixtures: dict[str, str] = {}
counters: dict[str, int] = defaultdict(int)
statuses: dict[str, list[int]] = defaultdict(list)
own_token: dict[str, str] = {}


def sign_in(email: str) -> str:
    body = {"email": email, "password": passwords[email]}
    if email in totp_secrets:
        # A code is accepted once: wait for the next step rather than reuse one.
        time.sleep(31 - time.time() % 30)
        body["totp"] = totp_code(totp_secrets[email])
    r = requests.post(f"{BASE}/api/v1/auth/login", json=body, verify=CA, timeout=60)
    if r.status_code != 200:
        raise RuntimeError(f"sign-in of {email} failed: {r.status_code} {r.text[:200]}")
    return r.json()["session_token"]


def api(token: str, method: str, path: str, body=None) -> dict:
    r = requests.request(
        method,
        f"{BASE}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=CA,
        timeout=60,
    )
    if not 200 <= r.status_code < 300:
        raise RuntimeError(f"fixture {method} {path}: {r.status_code} {r.text[:200]}")
    return r.json() if r.content else {}


def mailed_code(to: str, prefix: str) -> str:
    """The one-time code in the newest message to `to` that the SMTP sink received."""
    deadline = time.time() + 60
    while time.time() < deadline:
        for name in sorted(os.listdir(MAILDIR), reverse=True):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(MAILDIR, name)) as f:
                m = json.load(f)
            found = re.search(re.escape(prefix) + r"[A-Za-z0-9_-]+", m["text"] or "")
            if to in m["rcpt_tos"] and found:
                return found.group(0)
        time.sleep(0.2)
    raise RuntimeError(f"no mail with a code reached {to}")


def make_fixtures() -> None:
    """Objects for the substituted cases, made once with a session of their own."""
    admin = sign_in(ADMIN_EMAIL)
    me = api(admin, "GET", "/api/v1/me")
    fixtures["provider"] = me["user"]["tenant_id"]
    # Billing first, while nothing else exists: a customer paying by invoice, and the test
    # clock moved past its trial and first month, so it has an open invoice. Sessions idle
    # out over that move: sign in again after it.
    for name in ("plan", "doomed_plan"):
        fixtures[name] = api(admin, "POST", "/api/v1/plans", {"issuer_id": fixtures["provider"], "name": f"fuzz-{name}", "price_cents": 1500, "currency": "EUR"})["id"]
    billed = api(admin, "POST", "/api/v1/tenants", {"parent_id": fixtures["provider"], "kind": "customer", "name": "Fuzz Billed"})["id"]
    api(admin, "PUT", f"/api/v1/tenants/{billed}/subscription", {"plan_id": fixtures["plan"], "collection": "invoice"})
    moved = api(admin, "POST", "/api/v1/admin/test-clock", {"advance_seconds": 47 * 86_400})
    server_now = datetime.datetime.fromisoformat(moved["now"].replace("Z", "+00:00")).timestamp()
    clock_ahead[0] = server_now - time.time()
    admin = sign_in(ADMIN_EMAIL)
    fixtures["invoice"] = api(admin, "GET", f"/api/v1/tenants/{billed}/invoices")[0]["id"]
    # A plan offered on the self-service sign-up, and a sign-up whose mailed code the
    # confirmation takes.
    fixtures["signup_plan"] = api(admin, "POST", "/api/v1/plans", {"issuer_id": fixtures["provider"], "name": "fuzz-signup", "price_cents": 900, "currency": "EUR", "signup": True})["id"]
    api("", "POST", "/api/v1/signup", signup_body("signup@fuzz.example"))
    fixtures["signup_code"] = mailed_code("signup@fuzz.example", "lps_")
    t = api(admin, "POST", "/api/v1/tenants", {"parent_id": fixtures["provider"], "kind": "customer", "name": "Fuzz Customer"})
    fixtures["tenant"] = t["id"]
    api(admin, "PUT", f"/api/v1/tenants/{t['id']}/subscription", {"plan_id": fixtures["plan"]})

    def user(tag: str, password: str | None) -> dict:
        body = {"tenant_id": t["id"], "email": f"{tag}@fuzz.example", "first_name": "Fuzz", "last_name": tag.title()}
        if password:
            body["password"] = password
            body["role"] = "admin"
        return api(admin, "POST", "/api/v1/users", body)

    fixtures["user"] = user("user", "fuzz-user-password-1")["user"]["id"]
    # Erasing a person is final: a user of its own.
    fixtures["doomed_user"] = user("doomed", "fuzz-doomed-password-1")["user"]["id"]
    fixtures["binding"] = api(admin, "POST", f"/api/v1/users/{fixtures['user']}/roles", {"tenant_id": t["id"], "role": "auditor"})["id"]
    fixtures["invite"] = user("invited", None)["invite_token"]
    passwords["own@fuzz.example"] = "fuzz-own-password-1"
    user("own", passwords["own@fuzz.example"])
    passwords["user@fuzz.example"] = "fuzz-user-password-1"
    fixtures["session"] = api(sign_in("user@fuzz.example"), "GET", "/api/v1/me")["session"]["id"]
    # A customer admin's change of address waits for the code mailed to the new address.
    mover = user("mover", "fuzz-mover-password-1")["user"]["id"]
    api(sign_in("own@fuzz.example"), "PATCH", f"/api/v1/users/{mover}", {"email": "moved@fuzz.example"})
    fixtures["email_code"] = mailed_code("moved@fuzz.example", "lpe_")
    # A password reset's code, mailed to an account that asked for one.
    user("resetter", "fuzz-resetter-password-1")
    api("", "POST", "/api/v1/auth/password-reset", {"email": "resetter@fuzz.example"})
    fixtures["reset_code"] = mailed_code("resetter@fuzz.example", "lpr_")
    fixtures["device"] = api(admin, "POST", "/api/v1/devices", {"tenant_id": t["id"], "name": "fuzz-pc"})["id"]
    fixtures["token"] = api(admin, "POST", "/api/v1/tokens", {"tenant_id": t["id"], "name": "fuzz-token", "kind": "api", "permissions": ["restore"]})["token"]["id"]
    # A customer erased before the run, whose deletion certificate exists once its erasure
    # job ran.
    erased = api(admin, "POST", "/api/v1/tenants", {"parent_id": fixtures["provider"], "kind": "customer", "name": "Fuzz Erased Ltd"})["id"]
    api(admin, "POST", f"/api/v1/tenants/{erased}/erase", {"confirm": "Fuzz Erased Ltd"})
    deadline = time.time() + 120
    while True:
        r = requests.get(f"{BASE}/api/v1/tenants/{erased}/erasure-certificate", headers={"Authorization": f"Bearer {admin}"}, verify=CA, timeout=60)
        if r.status_code == 200:
            break
        if time.time() > deadline:
            raise RuntimeError("the erased fixture tenant never got its deletion certificate")
        time.sleep(0.5)
    fixtures["erased_tenant"] = erased
    # Erasure is final: it gets a customer of its own, so the rest of the run keeps working.
    fixtures["doomed_tenant"] = api(admin, "POST", "/api/v1/tenants", {"parent_id": fixtures["provider"], "kind": "customer", "name": "Fuzz Leaving Ltd"})["id"]
    for name in ("vault", "doomed_vault"):
        fixtures[name] = api(admin, "POST", "/api/v1/vaults", {"tenant_id": t["id"], "name": name, "destination": "local"})["id"]
    # Policies and items have doomed twins for their DELETE; items sit on a device of their
    # own, since deleting a device deletes its items.
    fixtures["policy"] = api(admin, "POST", "/api/v1/policies", {"tenant_id": t["id"], "vault_id": fixtures["vault"], "keep": {"last": 5}})["id"]
    spare_vault = api(admin, "POST", "/api/v1/vaults", {"tenant_id": t["id"], "name": "spare", "destination": "local"})["id"]
    fixtures["doomed_policy"] = api(admin, "POST", "/api/v1/policies", {"tenant_id": t["id"], "vault_id": spare_vault, "keep": {"last": 5}})["id"]
    item_device = api(admin, "POST", "/api/v1/devices", {"tenant_id": t["id"], "name": "fuzz-items-pc"})["id"]
    for name in ("item", "doomed_item"):
        fixtures[name] = api(admin, "POST", "/api/v1/items", {"tenant_id": t["id"], "device_id": item_device, "vault_id": fixtures["vault"], "name": name, "paths": ["/home"], "schedule": "daily"})["id"]
    fixtures["item_device"] = item_device
    fixtures["job"] = api(admin, "POST", f"/api/v1/devices/{item_device}/restore", {"vault_id": fixtures["vault"], "snapshot": "latest", "target": "/srv/restore"})["id"]
    # Replicas at the second destination: one to verify and promote (once a replication
    # completed), one to remove, and a vault without one for adding.
    fixtures["replica"] = api(admin, "POST", f"/api/v1/vaults/{fixtures['vault']}/replicas", {"destination": "second"})["id"]
    fixtures["doomed_replica"] = api(admin, "POST", f"/api/v1/vaults/{spare_vault}/replicas", {"destination": "second"})["id"]
    fixtures["spare_vault"] = spare_vault
    fixtures["unreplicated_vault"] = api(admin, "POST", "/api/v1/vaults", {"tenant_id": t["id"], "name": "unreplicated", "destination": "local"})["id"]
    deadline = time.time() + 120
    while api(admin, "GET", f"/api/v1/vaults/{fixtures['vault']}/replicas")[0]["state"] != "active":
        if time.time() > deadline:
            raise RuntimeError("the fixture replica never completed a replication")
        time.sleep(0.5)
    # A customer-key vault, for naming its maintainer (the items' device, never deleted).
    fixtures["customer_vault"] = api(admin, "POST", "/api/v1/vaults", {"tenant_id": t["id"], "name": "secret", "destination": "local", "key_custody": "customer"})["id"]
    # The server itself as a remote (its address, its certificate's fingerprint, and a
    # replication token naming a customer-key vault), and sync jobs pushing the vault there.
    fixtures["mirror"] = api(admin, "POST", "/api/v1/vaults", {"tenant_id": t["id"], "name": "mirror", "destination": "local", "key_custody": "customer"})["id"]
    fixtures["replicate_token"] = api(admin, "POST", "/api/v1/tokens", {"tenant_id": t["id"], "name": "fuzz-replicate", "kind": "api", "vault_ids": [fixtures["mirror"]], "permissions": ["replicate"]})["secret"]
    for name in ("remote", "doomed_remote"):
        fixtures[name] = api(admin, "POST", "/api/v1/remotes", remote_body(f"fuzz-{name}"))["id"]
    for name in ("sync_job", "doomed_sync_job"):
        fixtures[name] = api(admin, "POST", "/api/v1/sync-jobs", sync_job_body())["id"]
    for name in ("notify_target", "doomed_target"):
        fixtures[name] = api(admin, "POST", "/api/v1/notify/targets", {"tenant_id": t["id"], "name": name, "email": {"recipients": ["alerts@fuzz.example"]}})["target"]["id"]
    # A privacy policy in force, and an unsubscribe link: the throw-away user consents to
    # product news and gets an announcement, whose link the one-click operations use.
    api(admin, "POST", "/api/v1/privacy/policies", {"version": "fuzz", "url": "https://provider.example/privacy"})
    api(sign_in("own@fuzz.example"), "PUT", "/api/v1/me/marketing-consent", {"given": True})
    api(admin, "POST", "/api/v1/announcements", {"subject": "Fuzz news", "text": "Faster restores."})
    fixtures["unsubscribe"] = mailed_code("own@fuzz.example", "lpu_")
    # A data-subject request, a sub-processor to remove, and a personal-data archive made
    # (its job waited for), for the privacy operations.
    fixtures["subject_request"] = api(admin, "POST", "/api/v1/subject-requests", {"user_id": fixtures["user"], "kind": "access"})["id"]
    fixtures["doomed_subprocessor"] = api(admin, "POST", "/api/v1/subprocessors", {"name": "Fuzz Doomed Processor", "purpose": "hosting", "location": "EU"})["id"]
    fixtures["export"] = api(admin, "POST", f"/api/v1/users/{fixtures['user']}/data-export")["id"]
    deadline = time.time() + 120
    while api(admin, "GET", f"/api/v1/data-exports/{fixtures['export']}")["state"] != "ready":
        if time.time() > deadline:
            raise RuntimeError("the fixture archive was never made")
        time.sleep(0.2)


def signup_body(email: str) -> dict:
    return {"organisation": "Fuzz Signed Up", "first_name": "Sign", "last_name": "Up", "email": email, "password": "fuzz-signup-password-1", "plan_id": fixtures["signup_plan"]}


def remote_body(name: str) -> dict:
    """A remote of the fixture tenant that is the server itself."""
    import ssl

    with open(CA) as f:
        fingerprint = hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()
    return {"tenant_id": fixtures["tenant"], "name": name, "url": BASE, "fingerprint": fingerprint, "token": fixtures["replicate_token"]}


def sync_job_body() -> dict:
    return {"remote_id": fixtures["remote"], "direction": "push", "vault_id": fixtures["vault"], "remote_vault_id": fixtures["mirror"], "schedule": "daily"}


def valid_body(op: str, n: int):
    """A complete, valid body for `op`, unique per case number `n`."""
    t = fixtures["tenant"]
    return {
        "POST /api/v1/auth/login": {"email": ADMIN_EMAIL, "password": passwords[ADMIN_EMAIL]},
        "POST /api/v1/auth/accept-invite": {"invite_token": fixtures["invite"], "password": "fuzz-invited-password-1"},
        "POST /api/v1/auth/confirm-email": {"token": fixtures["email_code"]},
        "POST /api/v1/auth/password-reset": {"email": f"reset{n}@fuzz.example"},
        "POST /api/v1/auth/password-reset/confirm": {"token": fixtures["reset_code"], "password": f"fuzz-reset-password-{n}"},
        "POST /api/v1/signup": signup_body(f"signup{n}@fuzz.example"),
        "POST /api/v1/signup/confirm": {"token": fixtures["signup_code"]},
        "PATCH /api/v1/me": {"first_name": f"Own {n}", "language": ["en", "nl"][n % 2]},
        "POST /api/v1/me/password": {"current_password": passwords["own@fuzz.example"], "new_password": f"fuzz-own-password-{n + 2}"},
        "POST /api/v1/me/totp": {"current_password": passwords["own@fuzz.example"]},
        "POST /api/v1/me/totp/confirm": {"code": totp_code(totp_secrets.get("pending", "AAAAAAAA"))},
        "POST /api/v1/tenants": {"parent_id": fixtures["provider"], "kind": ["customer", "partner"][n % 8 // 4], "name": f"Fuzz Customer {n}"},
        "POST /api/v1/users": {"tenant_id": t, "email": f"made{n}@fuzz.example", "first_name": "Made", "last_name": f"No {n}", "password": "fuzz-made-password-1"},
        "PATCH /api/v1/users/{id}": {"first_name": f"Renamed {n}"},
        "POST /api/v1/users/{id}/roles": {"tenant_id": t, "role": ["operator", "auditor", "billing", "admin"][n % 4]},
        "POST /api/v1/devices": {"tenant_id": t, "name": f"fuzz-pc-{n}"},
        "POST /api/v1/devices/enroll-codes": {"tenant_id": t, "expires_in_minutes": n % 600 + 1},
        "POST /api/v1/devices/{id}/restore": {"vault_id": fixtures["vault"], "snapshot": "latest", "target": f"/srv/restore-{n}"},
        "POST /api/v1/tokens": {"tenant_id": t, "name": f"fuzz-token-{n}", "kind": "api", "permissions": ["backup"]},
        "POST /api/v1/vaults": {"tenant_id": t, "name": f"fuzz-vault-{n}", "destination": "local"},
        "POST /api/v1/tenants/{id}/erase": {"confirm": "Fuzz Leaving Ltd"},
        "POST /api/v1/users/{id}/erase": {"confirm": "doomed@fuzz.example"},
        "POST /api/v1/vaults/{id}/verify": {"read_data_percent": n % 101},
        "POST /api/v1/vaults/{id}/retention": {"dry_run": True},
        "PUT /api/v1/vaults/{id}/maintainer": {"device_id": [fixtures["item_device"], None][n % 8 // 4]},
        "PUT /api/v1/vaults/{id}/quota": {"quota_bytes": [n << 30, None][n % 8 // 4]},
        "POST /api/v1/policies": {"tenant_id": t, "keep": {"daily": n % 30 + 1}},
        "PATCH /api/v1/policies/{id}": {"keep": {"last": n % 30 + 1}},
        "POST /api/v1/items": {"tenant_id": t, "device_id": fixtures["item_device"], "vault_id": fixtures["vault"], "name": f"fuzz-item-{n}", "paths": ["/srv"], "schedule": "mon..fri 22:00"},
        "PATCH /api/v1/items/{id}": {"schedule": ["daily", "*:0/15", "0 22 * * 1-5"][n % 3]},
        "POST /api/v1/notify/targets": {"tenant_id": t, "name": f"fuzz-alerts-{n}", "email": {"recipients": [f"ops{n}@fuzz.example"], "language": ["en", "nl"][n % 2]}, "min_severity": ["info", "warning", "error"][n % 3]},
        "POST /api/v1/vaults/{id}/replicas": {"destination": "second"},
        "POST /api/v1/vaults/{id}/replicas/{replica}/verify": {"read_data": n % 8 < 4},
        "POST /api/v1/plans": {"issuer_id": fixtures["provider"], "name": f"fuzz-plan-{n}", "price_cents": n, "currency": "EUR", "device_limit": n + 10},
        "PUT /api/v1/tenants/{id}/subscription": {"plan_id": fixtures["plan"]},
        "POST /api/v1/tenants/{id}/subscription/end": {"confirm": "Fuzz Customer"},
        "POST /api/v1/invoices/{id}/payment": {"reference": f"fuzz transfer {n}"},
        "POST /api/v1/remotes": remote_body(f"fuzz-remote-{n}"),
        "POST /api/v1/sync-jobs": sync_job_body(),
        "POST /api/v1/privacy/policies": {"version": f"fuzz-{n}", "url": f"https://provider.example/privacy/{n}", "summary": "What changed."},
        "PUT /api/v1/me/marketing-consent": {"given": n % 8 < 4},
        "PUT /api/v1/users/{id}/restriction": {"restricted": n % 8 < 4},
        "POST /api/v1/announcements": {"subject": f"Fuzz news {n}", "text": "Faster restores."},
        "POST /api/v1/subject-requests": {"user_id": fixtures["user"], "kind": ["access", "rectification", "erasure", "restriction"][n % 4], "details": f"Request {n}."},
        "POST /api/v1/subject-requests/{id}/close": {"outcome": ["done", "refused"][n % 8 // 4], "action": f"Answered {n}."},
        "POST /api/v1/subprocessors": {"name": f"Fuzz Processor {n}", "purpose": "hosting", "location": "EU"},
        "PUT /api/v1/tenants/{id}/branding": {"product_name": f"Fuzz Backup {n}", "accent": ["#0a58ca", "#ffd400"][n % 2]},
        "PATCH /api/v1/notify/targets/{id}": {"min_severity": ["info", "warning", "error"][n % 3], "summary": ["off", "daily", "weekly"][n % 3]},
    }.get(op)


def path_ids(path: str) -> dict[str, str]:
    """Existing objects for the path parameters of `path`."""
    if path == "/api/v1/tenants/{id}/branding":
        # A partner or the provider brands the console, not a customer.
        return {"id": fixtures["provider"]}
    if path.startswith("/api/v1/tenants/"):
        return {"id": fixtures["tenant"]}
    if path.startswith("/api/v1/users/"):
        return {"id": fixtures["user"], "binding_id": fixtures["binding"]}
    if path.startswith("/api/v1/devices/"):
        return {"id": fixtures["device"]}
    if path.startswith("/api/v1/tokens/"):
        return {"id": fixtures["token"]}
    if path.startswith("/api/v1/sessions/"):
        return {"id": fixtures["session"]}
    if path.startswith("/api/v1/vaults/"):
        return {"id": fixtures["vault"], "replica": fixtures["replica"]}
    if path.startswith("/api/v1/jobs/"):
        return {"id": fixtures["job"]}
    if path.startswith("/api/v1/policies/"):
        return {"id": fixtures["policy"]}
    if path.startswith("/api/v1/items/"):
        return {"id": fixtures["item"]}
    if path.startswith("/api/v1/remotes/"):
        return {"id": fixtures["doomed_remote"]}
    if path.startswith("/api/v1/sync-jobs/"):
        return {"id": fixtures["sync_job"]}
    if path.startswith("/api/v1/plans/"):
        return {"id": fixtures["doomed_plan"]}
    if path.startswith("/api/v1/invoices/"):
        return {"id": fixtures["invoice"]}
    if path.startswith("/api/v1/notify/targets/"):
        return {"id": fixtures["notify_target"]}
    if path.startswith("/api/v1/unsubscribe/"):
        return {"token": fixtures["unsubscribe"]}
    if path.startswith("/api/v1/subject-requests/"):
        return {"id": fixtures["subject_request"]}
    if path.startswith("/api/v1/subprocessors/"):
        return {"id": fixtures["doomed_subprocessor"]}
    if path.startswith("/api/v1/data-exports/"):
        return {"id": fixtures["export"]}
    return {}


@schemathesis.auth(refresh_interval=86_400)
class AdminSession:
    """The admin's session; Schemathesis fetches a new one after any 401 and replays."""

    def get(self, case, context):
        return sign_in(ADMIN_EMAIL)

    def set(self, case, data, context):
        case.headers = dict(case.headers or {})
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def before_call(context, case, kwargs):
    if not fixtures:
        make_fixtures()
    op = f"{case.operation.method.upper()} {case.operation.path}"
    n = counters[op]
    counters[op] += 1
    if case.operation.path in OWN_ACCOUNT:
        if "own" not in own_token:
            own_token["own"] = sign_in("own@fuzz.example")
        case.headers = dict(case.headers or {})
        case.headers["Authorization"] = f"Bearer {own_token['own']}"
    if n % 2:
        return
    if op == STRIPE_WEBHOOK:
        event = {"id": f"evt_fuzz_{n}", "object": "event", "type": ["setup_intent.succeeded", "payment_intent.succeeded", "customer.created"][n % 3],
                 "data": {"object": {"id": f"seti_fuzz_{n}", "customer": "cus_unknown", "payment_method": f"pm_fuzz_{n}", "status": "succeeded"}}}
        body = json.dumps(event)
        t = int(time.time())
        sig = hmac.new(STRIPE_WEBHOOK_SECRET, f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
        case.body = body.encode()
        case.media_type = "application/json"
        case.headers = {**(case.headers or {}), "Stripe-Signature": f"t={t},v1={sig}"}
        return
    if case.path_parameters:
        ids = path_ids(case.operation.path)
        if case.operation.method.upper() == "DELETE" and case.operation.path == "/api/v1/vaults/{id}":
            ids = {"id": fixtures["doomed_vault"]}
        if case.operation.path == "/api/v1/tenants/{id}/erase":
            ids = {"id": fixtures["doomed_tenant"]}
        if case.operation.path == "/api/v1/users/{id}/erase":
            ids = {"id": fixtures["doomed_user"]}
        if case.operation.path == "/api/v1/tenants/{id}/erasure-certificate":
            ids = {"id": fixtures["erased_tenant"]}
        if case.operation.path == "/api/v1/vaults/{id}/maintainer":
            ids = {"id": fixtures["customer_vault"]}
        if case.operation.path == "/api/v1/devices/{id}/restore":
            # The fixture device may be deleted by then; the items' device never is.
            ids = {"id": fixtures["item_device"]}
        if case.operation.path == "/api/v1/vaults/{id}/replicas" and case.operation.method.upper() == "POST":
            ids = {"id": fixtures["unreplicated_vault"]}
        if case.operation.method.upper() == "DELETE" and case.operation.path == "/api/v1/vaults/{id}/replicas/{replica}":
            ids = {"id": fixtures["spare_vault"], "replica": fixtures["doomed_replica"]}
        if case.operation.method.upper() == "DELETE" and case.operation.path == "/api/v1/policies/{id}":
            ids = {"id": fixtures["doomed_policy"]}
        if case.operation.method.upper() == "DELETE" and case.operation.path == "/api/v1/items/{id}":
            ids = {"id": fixtures["doomed_item"]}
        if case.operation.method.upper() == "DELETE" and case.operation.path == "/api/v1/sync-jobs/{id}":
            ids = {"id": fixtures["doomed_sync_job"]}
        if case.operation.method.upper() == "DELETE" and case.operation.path == "/api/v1/notify/targets/{id}":
            ids = {"id": fixtures["doomed_target"]}
        case.path_parameters = {k: ids.get(k, v) for k, v in case.path_parameters.items()}
    if isinstance(case.query, dict) and "tenant_id" in case.query:
        case.query = {**case.query, "tenant_id": fixtures["tenant"]}
    if op == "POST /api/v1/unsubscribe/{token}":
        # The one body RFC 8058 prescribes, as a mail client sends it.
        case.body = {"List-Unsubscribe": "One-Click"}
        case.media_type = "application/x-www-form-urlencoded"
        return
    body = valid_body(op, n) if n % 4 == 0 else None
    if op == "POST /api/v1/me/policy-acknowledgement" and n % 4 == 0:
        # The version in force, which the fuzzer's own publications keep changing.
        current = requests.get(f"{BASE}/api/v1/privacy/policy", verify=CA, timeout=60).json()
        body = {"version": current["version"]}
    if body is not None:
        case.body = body
        case.media_type = "application/json"
    elif isinstance(case.body, dict):
        if op == "PATCH /api/v1/me":
            # A wrong current password counts as a guess at the account's password, and
            # enough of them would throttle the account the later operations sign in with.
            case.body = {k: v for k, v in case.body.items() if k != "current_password"}
        # A customer has no tenants below it: new tenants go under the provider.
        for key, tenant in (("tenant_id", fixtures["tenant"]), ("parent_id", fixtures["provider"])):
            if key in case.body:
                case.body = {**case.body, key: tenant}


@schemathesis.hook
def after_call(context, case, response):
    op = f"{case.operation.method.upper()} {case.operation.path}"
    statuses[op].append(response.status_code)
    if 200 <= response.status_code < 300 and isinstance(case.body, dict):
        if op == "POST /api/v1/me/password":
            passwords["own@fuzz.example"] = case.body["new_password"]
        elif op == "POST /api/v1/me/totp":
            totp_secrets["pending"] = response.json()["secret"]
        elif op == "POST /api/v1/me/totp/confirm":
            totp_secrets["own@fuzz.example"] = totp_secrets["pending"]
    if case.operation.path in OWN_ACCOUNT and response.status_code == 401:
        own_token.pop("own", None)
    save()


def save() -> None:
    if STATS:
        with open(STATS, "w") as f:
            json.dump(statuses, f)
