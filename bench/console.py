#!/usr/bin/python3
"""The console's pages, timed: one release `loop server` on 127.0.0.1 with many tenants.

    bench/console.py [--customers 1000] [--devices 10000] [--files 100000] [--gib 1] [--samples 200]

Makes N customers under the provider and M devices spread over them (enrolled through the
API as agents enrol), and one managed vault holding a snapshot of a generated tree: one
folder of 10,000 files, the rest of the files in folders of 100, and a folder of `--gib` GiB
of incompressible files. Then prints a Markdown report (docs/BENCHMARKS.md, "The console"):

1. each page's time from request to last byte over keep-alive HTTPS (p50, p99, max over
   `--samples` requests after 5 to warm up): an upper bound on its render time;
2. the big folder downloaded as .zip against `loop restore` of the same folder through the
   server (best of 3 each); the .zip's speed as a share of the restore's.

WORK (default /dev/shm/loop-bench-console, a tmpfs, so that disks do not decide) holds
everything; it is emptied first.
"""

import argparse
import http.client
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("WORK", "/dev/shm/loop-bench-console")
LOOP = os.path.join(HERE, "target/release/loop")
PASSWORD = "bench-admin-password"


def run(*args, env=None):
    r = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    if r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {r.stderr[-2000:]}")
    return r.stdout


class Https:
    """Keep-alive HTTPS to the server, trusting its generated certificate."""

    def __init__(self, port, cafile):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.ctx.check_hostname = False
        self.conn = None

    def request(self, method, path, headers, body=None):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx)
                self.conn.request(method, path, body=body, headers=headers)
                return self.conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closes idle connections: open another.
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def api(self, method, path, token, body=None):
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        r = self.request(method, path, headers, json.dumps(body) if body is not None else None)
        data = r.read()
        if r.status >= 300:
            sys.exit(f"{method} {path}: {r.status} {data[:500]!r}")
        return json.loads(data) if data else None


def make_tree(src, files, gib):
    """One folder of 10,000 files, the rest in folders of 100, and `gib` GiB in 16 MiB files."""
    os.makedirs(f"{src}/big")
    for i in range(10_000):
        with open(f"{src}/big/file-{i:05}.txt", "w") as f:
            f.write(f"entry {i}\n")
    rest = max(files - 10_000, 0)
    for i in range(rest):
        d = f"{src}/tree/d{i // 100:04}"
        if i % 100 == 0:
            os.makedirs(d)
        with open(f"{d}/f{i % 100:02}.txt", "w") as f:
            f.write(f"file {i}\n" * (1 + i % 7))
    os.makedirs(f"{src}/gb")
    for i in range(gib * 64):
        with open(f"{src}/gb/part-{i:03}.bin", "wb") as f:
            f.write(os.urandom(16 << 20))


def timed_pages(h, cookie, pages, samples):
    rows = []
    for name, path in pages:
        times = []
        for n in range(samples + 5):
            t0 = time.perf_counter()
            r = h.request("GET", path, {"cookie": cookie})
            body = r.read()
            dt = (time.perf_counter() - t0) * 1000
            if r.status != 200:
                sys.exit(f"{path}: {r.status} {body[:300]!r}")
            if n >= 5:
                times.append(dt)
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        rows.append(f"| {name} | {len(body) / 1024:.0f} KiB | {statistics.median(times):.1f} | {p99:.1f} | {times[-1]:.1f} |")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--gib", type=int, default=1)
    ap.add_argument("--samples", type=int, default=200)
    a = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-p", "loop-cli"], cwd=HERE, check=True, capture_output=True)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    for k in [k for k in os.environ if k.startswith("LOOP_")]:
        del os.environ[k]
    cli_env = {"LOOP_CONFIG_DIR": f"{WORK}/cli"}
    data = f"{WORK}/server"
    server = subprocess.Popen(
        [LOOP, "server", "--data-dir", data, "--listen", "127.0.0.1:0"],
        stdout=open(f"{WORK}/server.out", "w"), stderr=open(f"{WORK}/server.err", "w"),
        env=dict(os.environ, LOOP_ADMIN_PASSWORD=PASSWORD, LOOP_LOG="warn"),
    )
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
        cli_env["LOOP_SERVER_FINGERPRINT"] = fingerprint
        h = Https(int(url.rsplit(":", 1)[1]), f"{data}/tls-cert.pem")
        r = h.request("POST", "/api/v1/auth/login", {"content-type": "application/json"},
                      json.dumps({"email": "admin@localhost", "password": PASSWORD}))
        admin = json.loads(r.read())["session_token"]
        cookie = f"loop_session={admin}"
        provider = h.api("GET", "/api/v1/tenants", admin)[0]["id"]

        t0 = time.time()
        customers = [
            h.api("POST", "/api/v1/tenants", admin,
                  {"parent_id": provider, "kind": "customer", "name": f"Customer {i:04}"})["id"]
            for i in range(a.customers)
        ]
        for i in range(a.devices):
            tenant = customers[i % len(customers)]
            code = h.api("POST", "/api/v1/devices/enroll-codes", admin, {"tenant_id": tenant})["code"]
            h.api("POST", "/agent/v1/enroll", None, {"code": code, "name": f"host-{i:05}"})
        made = time.time() - t0

        first = customers[0]
        run(LOOP, "login", "--server", url, "--email", "admin@localhost",
            env=dict(cli_env, LOOP_LOGIN_PASSWORD=PASSWORD))
        vault = json.loads(run(LOOP, "vault", "create", "--tenant", first, "--name", "files", "--json", env=cli_env))["id"]
        token = json.loads(run(LOOP, "token", "create", "--tenant", first, "--name", "bench", "--kind", "api",
                               "--vault", vault, "--permission", "backup", "--permission", "restore",
                               "--json", env=cli_env))["secret"]
        src = f"{WORK}/src"
        make_tree(src, a.files, a.gib)
        repo_env = dict(cli_env, LOOP_TOKEN=token, LOOP_CACHE_DIR=f"{WORK}/cache")
        repo = f"{url}/vaults/{vault}"
        run(LOOP, "-q", "-r", repo, "backup", src, env=repo_env)
        snapshot = h.api("GET", f"/api/v1/vaults/{vault}/snapshots", admin)[-1]["id"]

        here = f"/vaults/{vault}/snapshots/{snapshot}"
        pages = [
            ("provider dashboard (whole tree)", f"/t/{provider}"),
            (f"tenant tree ({a.customers} customers)", f"/t/{provider}/tenants"),
            ("customer dashboard", f"/t/{first}"),
            ("customer devices", f"/t/{first}/devices"),
            ("vault with its snapshots", f"/vaults/{vault}"),
            ("snapshot top folder", f"{here}?path=%2Fsrc"),
            ("folder of 10,000 entries (first 1,000 shown)", f"{here}?path=%2Fsrc%2Fbig"),
            ("folder of 100 entries", f"{here}?path=%2Fsrc%2Ftree%2Fd{max(a.files - 10_000, 100) // 200:04}"),
        ]
        report = [
            f"machine: {os.cpu_count()} cores; {a.customers} customers, {a.devices} devices "
            f"(made in {made:.0f} s); a snapshot of {a.files} files and {a.gib} GiB\n",
            "| page | size | p50 ms | p99 ms | max ms |",
            "|---|---|---|---|---|",
        ]
        report += timed_pages(h, cookie, pages, a.samples)
        t0 = time.perf_counter()
        r = h.request("GET", f"{here}?path=%2Fsrc&q=file-0999", {"cookie": cookie})
        r.read()
        report.append(f"\nsearch by name over the whole snapshot: {(time.perf_counter() - t0) * 1000:.0f} ms")

        size = a.gib << 30
        zips, restores = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            r = h.request("GET", f"{here}/download?as=zip&path=%2Fsrc%2Fgb", {"cookie": cookie})
            got = 0
            while chunk := r.read(1 << 20):
                got += len(chunk)
            zips.append(time.perf_counter() - t0)
            if r.status != 200 or got < size:
                sys.exit(f"the .zip: {r.status}, {got} bytes")
            target = f"{WORK}/restore"
            shutil.rmtree(target, ignore_errors=True)
            t0 = time.perf_counter()
            run(LOOP, "-q", "-r", repo, "restore", "latest", "--target", target, "--include", "/src/gb", env=repo_env)
            restores.append(time.perf_counter() - t0)
            restored = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(target) for f in fs)
            if restored != size:
                sys.exit(f"loop restore wrote {restored} bytes, not {size}")
        z, rs = min(zips), min(restores)
        report += [
            "",
            f"| {a.gib} GiB folder | seconds | MiB/s |",
            "|---|---|---|",
            f"| .zip download | {z:.2f} | {size / z / 2**20:.0f} |",
            f"| `loop restore` | {rs:.2f} | {size / rs / 2**20:.0f} |",
            f"\n.zip speed / restore speed: {rs / z:.2f}",
        ]
        print("\n".join(report))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
