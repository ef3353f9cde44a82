#!/usr/bin/python3
"""Screenshots of the console for the README, taken in the headless Chromium the tests use.

    docs/screenshots.py [--out docs/screenshots]

Starts `loop server` (target/debug/loop, built first) on a fresh data directory under WORK
(default /tmp/loop-screenshots), gives it a partner with two customers, enrols two real agents
(`loop agent run`) whose protected items back up (one of them fails: its folder is gone), and
gives it retention policies and a notification target, then signs in with Debian's chromium
and chromedriver through Selenium (installed from PyPI into a venv under ~/.cache/loop-docs)
to photograph the main pages at desktop size and the dashboard at a phone's; last, the
partner brands the console (white label) and the customer's dashboard is photographed again. Nothing in the repository changes but the PNG files in --out.
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("WORK", "/tmp/loop-screenshots")
LOOP = os.path.join(HERE, "target/debug/loop")
PASSWORD = "screenshot-admin-password"
VENV = os.path.expanduser("~/.cache/loop-docs/venv")
SELENIUM = "selenium==4.27.1"


def run(*args, env=None):
    r = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    if r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {r.stderr[-2000:]}")
    return r.stdout


def cli(*args):
    return json.loads(run(LOOP, *args, "--json", env=CLI_ENV))


def png(width, height, rgb):
    """A PNG of one colour, with a lighter band across its middle (a stand-in logo)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    light = bytes(min(255, c + 90) for c in rgb)
    rows = b"".join(
        b"\0" + (light if height // 3 <= y < 2 * height // 3 else bytes(rgb)) * width
        for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def selenium():
    """Selenium, from a venv of its own (made on first use)."""
    py = os.path.join(VENV, "bin/python3")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", SELENIUM], check=True)
    if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
        os.execv(py, [py] + sys.argv)


def main():
    selenium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "docs/screenshots"))
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "-p", "loop-cli"], cwd=HERE, check=True)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    os.makedirs(a.out, exist_ok=True)
    global CLI_ENV
    CLI_ENV = {"LOOP_CONFIG_DIR": f"{WORK}/cli"}
    for k in [k for k in os.environ if k.startswith("LOOP_")]:
        del os.environ[k]

    server = subprocess.Popen(
        [LOOP, "server", "--data-dir", f"{WORK}/server", "--listen", "127.0.0.1:0"],
        stdout=open(f"{WORK}/server.out", "w"), stderr=open(f"{WORK}/server.err", "w"),
        env=dict(os.environ, LOOP_ADMIN_PASSWORD=PASSWORD, LOOP_LOG="warn"),
    )
    agents = []
    browser = None
    try:
        url = fingerprint = None
        for _ in range(300):
            for line in open(f"{WORK}/server.out").read().splitlines():
                if line.startswith("loop server listening on "):
                    url = line.split()[-1]
                if line.startswith("certificate SHA-256 fingerprint: "):
                    fingerprint = line.split()[-1]
            if url and fingerprint:
                break
            time.sleep(0.1)
        CLI_ENV["LOOP_SERVER_FINGERPRINT"] = fingerprint
        run(LOOP, "login", "--server", url, "--email", "admin@localhost",
            env=dict(CLI_ENV, LOOP_LOGIN_PASSWORD=PASSWORD))
        provider = cli("tenant", "list")[0]["id"]
        partner = cli("tenant", "create", "--parent", provider, "--kind", "partner",
                      "--name", "Northwind IT")["id"]
        acme = cli("tenant", "create", "--parent", partner, "--kind", "customer",
                   "--name", "Acme GmbH")["id"]
        cli("tenant", "create", "--parent", partner, "--kind", "customer", "--name", "Zeta BV")
        vault = cli("vault", "create", "--tenant", acme, "--name", "office")["id"]

        items = []
        for name, files in (("reception-pc", 48), ("file-server", 0)):
            code = cli("device", "enroll-code", "--tenant", acme)["code"]
            state = f"{WORK}/agent-{name}"
            dev = json.loads(run(LOOP, "agent", "enroll", "--server", url, "--code", code,
                                 "--name", name, "--state-dir", state, "--json",
                                 env=CLI_ENV))["device_id"]
            src = f"{WORK}/src-{name}"
            if files:
                os.makedirs(src)
                for f in range(files):
                    with open(f"{src}/document-{f}.txt", "w") as fh:
                        fh.write(f"document {f}\n" * (2000 + 100 * f))
            items.append(cli("item", "create", "--tenant", acme, "--device", dev, "--vault", vault,
                             "--name", "documents" if files else "shares", "--path", src,
                             "--schedule", "daily")["id"])
            agents.append(subprocess.Popen(
                [LOOP, "agent", "run", "--poll-seconds", "1", "--state-dir", state],
                stdout=subprocess.DEVNULL, stderr=open(f"{state}.err", "w"),
                env=dict(os.environ, **CLI_ENV),
            ))
        jobs = []
        for it in items:
            job = cli("item", "run", it)["id"]
            jobs.append(job)
            for _ in range(600):
                if cli("job", "show", job)["state"] not in ("queued", "running"):
                    break
                time.sleep(0.2)
        snapshot = cli("job", "show", jobs[0])["summary"]["snapshot_id"]
        cli("policy", "create", "--tenant", acme, "--keep-daily", "14", "--keep-weekly", "8",
            "--keep-monthly", "12")
        cli("policy", "create", "--tenant", acme, "--vault", vault, "--keep-last", "30",
            "--keep-within", "90d")
        cli("notify", "target", "create", "--tenant", acme, "--name", "IT on call",
            "--email", "oncall@acme.example", "--email", "it@acme.example")
        run(LOOP, "user", "create", "--tenant", acme, "--email", "ana@acme.example",
            "--first-name", "Ana", "--last-name", "Acme", "--role", "admin", "--json",
            env=dict(CLI_ENV, LOOP_NEW_USER_PASSWORD="ana-password-123"))

        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--lang=en-GB",
                    "--hide-scrollbars", f"--user-data-dir={WORK}/chromium"):
            options.add_argument(arg)
        options.accept_insecure_certs = True
        browser = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        base = url.replace("127.0.0.1", "localhost")

        def shot(path, name, size=(1280, 860)):
            browser.set_window_size(*size)
            browser.get(base + path)
            time.sleep(0.3)
            browser.save_screenshot(os.path.join(a.out, name))
            print(f"{name}: {path}")

        def sign_in(email, password):
            browser.delete_all_cookies()
            browser.get(base + "/signin")
            browser.find_element(By.ID, "email").send_keys(email)
            browser.find_element(By.ID, "password").send_keys(password)
            browser.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
            time.sleep(0.5)

        shot("/signin", "signin.png", (1280, 640))
        sign_in("admin@localhost", PASSWORD)
        shot(f"/t/{partner}/tenants", "tenants.png")
        sign_in("ana@acme.example", "ana-password-123")
        shot(f"/t/{acme}", "dashboard.png", (1280, 1200))
        shot(f"/t/{acme}", "dashboard-phone.png", (375, 667))
        shot(f"/t/{acme}/audit", "audit.png")
        shot(f"/t/{acme}/users", "users.png")
        shot("/account", "account.png", (1280, 1100))
        shot(f"/t/{acme}/items", "items.png")
        shot(f"/jobs/{jobs[0]}", "job.png", (1280, 1000))
        shot(f"/vaults/{vault}/snapshots/{snapshot}?q=document-1", "snapshot.png", (1280, 1000))
        shot(f"/t/{acme}/policies", "policies.png", (1280, 1100))
        shot(f"/t/{acme}/notifications", "notifications.png", (1280, 1300))

        # The partner brands the console: its customers see its name, colour and logo.
        logo = f"{WORK}/logo.png"
        with open(logo, "wb") as fh:
            fh.write(png(96, 32, (0x0b, 0x6e, 0x4f)))
        sign_in("admin@localhost", PASSWORD)
        browser.get(f"{base}/t/{partner}/branding")
        browser.find_element(By.ID, "product_name").send_keys("Northwind Backup")
        browser.execute_script("document.getElementById('accent').value = '#0b6e4f';")
        browser.find_element(By.ID, "logo").send_keys(logo)
        browser.find_element(By.CSS_SELECTOR, "form[enctype] button[type=submit]").click()
        time.sleep(0.5)
        shot(f"/t/{partner}/branding", "branding.png", (1280, 900))
        sign_in("ana@acme.example", "ana-password-123")
        shot(f"/t/{acme}", "dashboard-branded.png", (1280, 1200))
    finally:
        if browser:
            browser.quit()
        for p in agents:
            p.kill()
        server.kill()


if __name__ == "__main__":
    main()
