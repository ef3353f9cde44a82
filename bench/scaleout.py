#!/usr/bin/python3
"""Scale-out, measured: the same load against three layouts of release `loop server`.

    bench/scaleout.py [--requests 20000] [--tenants 10000] [--devices 100000]
                      [--audit-events 1000000]

Prints a Markdown report (docs/BENCHMARKS.md, "Scale-out"):

1. The vault protocol under h2load (nghttp2-client), 32 clients x 4 streams, against
   (a) one node on SQLite, (b) one node on PostgreSQL, (c) two nodes on PostgreSQL behind
   HAProxy (TCP, TLS passed through, PROXY protocol v2). Two phases each: `reads` (GET of a
   vault's listings and objects, as restoring agents) and `opens` (POST .../v1/open, as agents
   starting a backup: a token check, the token's last use and an audit event written).
   Per phase: requests/s, p50/p99 latency, answers other than 200, the server processes' CPU
   per 1000 requests and, on PostgreSQL, the statements each request ran (pg_stat_statements).
2. Listings at scale: N tenants and M devices seeded into (a) and (b); every page of
   `GET /api/v1/tenants` and `GET /api/v1/devices` (100 per page, by cursor) and one
   customer's devices, replayed by h2load as 4 clients: p50/p99 per listing.
3. Audit export: K `vault.open` events made through the API (h2load, on (a)), then
   `GET /api/v1/audit/export` streamed to the end: time, bytes, and the server's resident
   memory sampled every 50 ms during the export (flat means it streams).

Needs root (PostgreSQL runs as `nobody` via setpriv), postgresql, haproxy, nghttp2-client.
WORK (default /tmp/loop-bench-scaleout) holds everything; it is emptied first.
"""

import argparse
import glob
import json
import os
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("WORK", "/tmp/loop-bench-scaleout")
# LOOP_BIN runs another build (a debug one, to try the script quickly); numbers are for release.
LOOP = os.environ.get("LOOP_BIN") or os.path.join(HERE, "target/release/loop")
PASSWORD = "bench-admin-password"
NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]


def run(*args, env=None, check=True, input=None):
    e = dict(os.environ, **(env or {}))
    r = subprocess.run(args, capture_output=True, text=True, env=e, input=input)
    if check and r.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed: {r.stderr[-2000:]}")
    return r.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_mib(pid):
    return proc_status(pid, "VmRSS") / 1024


class Postgres:
    """A throw-away cluster with pg_stat_statements, run as nobody."""

    def __init__(self):
        self.bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))[-1]
        self.dir = f"{WORK}/pg"
        os.makedirs(self.dir)
        os.chmod(WORK, 0o755)
        os.chown(self.dir, 65534, 65534)
        run(*NOBODY, f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-U", "loop", "--auth=trust",
            "-E", "UTF8", "--no-sync")
        with open(f"{self.dir}/data/postgresql.conf", "a") as f:
            f.write("shared_preload_libraries = 'pg_stat_statements'\nmax_connections = 300\n"
                    "pg_stat_statements.track = all\n")
        self.port = free_port()
        run(*NOBODY, f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/log", "-w",
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def client(self, program, *args):
        return [f"{self.bin}/{program}", "-h", "127.0.0.1", "-p", str(self.port), "-U", "loop", *args]

    def database(self, name):
        run(*self.client("createdb", name))
        self.sql(name, "CREATE EXTENSION pg_stat_statements")
        return f"postgres://loop@127.0.0.1:{self.port}/{name}"

    def sql(self, db, text):
        return run(*self.client("psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", text))

    def statements(self, db):
        """Statements run in database `db` since the last reset (every node's)."""
        out = self.sql(db, "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s "
                           "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database()")
        return int(out.strip())

    def reset(self, db):
        self.sql(db, "SELECT pg_stat_statements_reset()")

    def stop(self):
        run(*NOBODY, f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "stop", check=False)


class Node:
    def __init__(self, name, data_dir, database_url=None, trusted_proxy=False, extra=""):
        self.name = name
        config = f"{WORK}/{name}.toml"
        with open(config, "w") as f:
            f.write(f'node_id = "{name}"\n{extra}')
            if trusted_proxy:
                f.write('[connections]\ntrusted_proxies = ["127.0.0.1"]\n')
        env = dict(os.environ, LOOP_ADMIN_PASSWORD=PASSWORD, LOOP_LOG="warn")
        if database_url:
            env["LOOP_DATABASE_URL"] = database_url
        out = f"{WORK}/{name}.out"
        self.proc = subprocess.Popen(
            [LOOP, "server", "--config", config, "--data-dir", data_dir, "--listen", "127.0.0.1:0"],
            stdout=open(out, "w"), stderr=open(f"{WORK}/{name}.err", "w"), env=env)
        self.url = self.fingerprint = None
        for _ in range(600):
            for line in open(out).read().splitlines():
                if line.startswith("loop server listening on "):
                    self.url = line.split()[-1]
                if line.startswith("certificate SHA-256 fingerprint: "):
                    self.fingerprint = line.split()[-1]
            if self.url and self.fingerprint:
                break
            if self.proc.poll() is not None:
                sys.exit(f"{name} exited: {open(f'{WORK}/{name}.err').read()[-2000:]}")
            time.sleep(0.1)
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def haproxy(nodes):
    port = free_port()
    cfg = (f"global\n    maxconn 4096\ndefaults\n    mode tcp\n    timeout connect 5s\n"
           f"    timeout client 300s\n    timeout server 300s\n"
           f"frontend loop\n    bind 127.0.0.1:{port}\n    default_backend nodes\n"
           f"backend nodes\n    balance roundrobin\n")
    for i, n in enumerate(nodes):
        cfg += f"    server node{i} 127.0.0.1:{n.port} send-proxy-v2 check inter 1s\n"
    with open(f"{WORK}/haproxy.cfg", "w") as f:
        f.write(cfg)
    proc = subprocess.Popen(["haproxy", "-db", "-f", f"{WORK}/haproxy.cfg"],
                            stdout=subprocess.DEVNULL, stderr=open(f"{WORK}/haproxy.err", "w"))
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(1.5)  # the first health checks
    return proc, port


class Layout:
    """Nodes serving one URL, with a customer, a vault holding a backup, and tokens."""

    def __init__(self, name, nodes, url, database=None, pg=None):
        self.name, self.nodes, self.url, self.database, self.pg = name, nodes, url, database, pg
        self.env = {"LOOP_CONFIG_DIR": f"{WORK}/cli-{name}", "LOOP_SERVER_FINGERPRINT": nodes[0].fingerprint}
        run(LOOP, "login", "--server", url, "--email", "admin@localhost",
            env=dict(self.env, LOOP_LOGIN_PASSWORD=PASSWORD))
        self.provider = self.cli("tenant", "list")[0]["id"]
        self.customer = self.cli("tenant", "create", "--parent", self.provider, "--kind", "customer",
                                 "--name", "bench")["id"]
        self.vault = self.cli("vault", "create", "--tenant", self.customer, "--name", "bench")["id"]
        writer = self.token("backup")
        self.reader = self.token("restore")
        run(LOOP, "backup", f"{WORK}/tree", env=dict(self.env, LOOP_REPOSITORY=f"{url}/vaults/{self.vault}",
                                                    LOOP_TOKEN=writer))
        with open(f"{WORK}/cli-{name}/session.json") as f:
            self.session = json.load(f)["session_token"]

    def cli(self, *args):
        return json.loads(run(LOOP, *args, "--json", env=self.env))

    def token(self, permission):
        return self.cli("token", "create", "--tenant", self.customer, "--name", permission, "--kind", "api",
                        "--vault", self.vault, "--permission", permission)["secret"]

    def get(self, path, token):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(f"{self.url}{path}", headers={"authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, context=ctx) as r:
            return json.loads(r.read()), r.headers.get("link")

    def cpu(self):
        return sum(cpu_seconds(n.proc.pid) for n in self.nodes)

    def stop(self):
        for n in self.nodes:
            n.stop()


def h2load(uris, token, requests, clients, streams, body=None):
    """Runs h2load over `uris`: (requests/s, p50 ms, p99 ms, {status: count})."""
    with open(f"{WORK}/uris", "w") as f:
        f.write("\n".join(uris) + "\n")
    if os.path.exists(f"{WORK}/h2load.log"):
        os.remove(f"{WORK}/h2load.log")  # h2load appends to it
    args = ["h2load", "-i", f"{WORK}/uris", "-n", str(requests), "-c", str(clients), "-m", str(streams),
            "-H", f"authorization: Bearer {token}", "--log-file", f"{WORK}/h2load.log"]
    if body is not None:
        with open(f"{WORK}/body.json", "w") as f:
            f.write(body)
        args += ["-d", f"{WORK}/body.json", "-H", "content-type: application/json"]
    out = run(*args)
    durations, statuses = [], {}
    for line in open(f"{WORK}/h2load.log"):
        parts = line.split()
        statuses[parts[1]] = statuses.get(parts[1], 0) + 1
        durations.append(int(parts[2]) / 1000)
    durations.sort()
    rps = next((l.split(",")[1].strip().split()[0] for l in out.splitlines() if "finished" in l and "req/s" in l), "0")
    pct = lambda q: durations[min(len(durations) - 1, int(len(durations) * q))]
    return float(rps), pct(0.5), pct(0.99), statuses


def protocol_load(layout, requests):
    """The two h2load phases against `layout`: report rows."""
    base = f"{layout.url}/vaults/{layout.vault}/v1"
    uris = [f"{base}/{k}" for k in ("snapshots", "index", "keys")]
    for kind in ("snapshots", "index", "data"):
        names, _ = layout.get(f"/vaults/{layout.vault}/v1/{kind}", layout.reader)
        uris += [f"{base}/{kind}/{o['name']}" for o in names[:50] if kind != "data" or o["size"] < 1 << 20]
    rows = []
    for phase, phase_uris, body in (("reads", uris, None),
                                    ("opens", [f"{base}/open"], '{"operation":"backup","host":"bench"}')):
        if layout.pg:
            layout.pg.reset(layout.database)
        c0 = layout.cpu()
        rps, p50, p99, statuses = h2load(phase_uris, layout.reader, requests, 32, 4, body)
        cpu = layout.cpu() - c0
        done = sum(statuses.values())
        per_request = f"{layout.pg.statements(layout.database) / done:.2f}" if layout.pg else "n/a"
        bad = done - statuses.get("200", 0)
        rows.append(f"| {layout.name} | {phase} | {rps:,.0f} | {p50:.1f} | {p99:.1f} | {bad} | "
                    f"{cpu / done * 1000:.2f} | {per_request} |")
    return rows


def id_sql(backend, prefix, expr):
    if backend == "sqlite":
        return f"printf('{prefix}_%032x', {expr})"
    return f"'{prefix}_' || lpad(to_hex({expr}), 32, '0')"


def seed(layout, backend, tenants, devices):
    """Copies the bench customer `tenants` times and adds `devices` devices spread over them."""
    t = layout.customer
    tid = id_sql(backend, "tn", "i")
    did = id_sql(backend, "dv", "i")
    owner = id_sql(backend, "tn", f"(i % {tenants}) + 1")
    statements = [
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {tenants}) "
        f"INSERT INTO tenants (id, parent_id, path, kind, name, status, time_zone, created_at) "
        f"SELECT {tid}, t.parent_id, replace(t.path, t.id, {tid}), t.kind, 'Bench ' || i, t.status, "
        f"t.time_zone, t.created_at + i FROM tenants t, n WHERE t.id = '{t}'",
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {devices}) "
        f"INSERT INTO devices (id, tenant_id, name, created_at) "
        f"SELECT {did}, {owner}, 'pc-' || i, 1764000000000 + i FROM n",
    ]
    if backend == "sqlite":
        db = sqlite3.connect(f"{WORK}/data-a/loop.db", timeout=60)
        with db:
            for s in statements:
                db.execute(s)
        db.close()
    else:
        for s in statements:
            layout.pg.sql(layout.database, s)
        layout.pg.sql(layout.database, "ANALYZE")


def listing_load(layout):
    """Every page of three listings, replayed by h2load: report rows."""
    rows = []
    one = f"tn_{1:032x}"  # a seeded customer
    for what, first in (("tenants", "/api/v1/tenants?limit=100"),
                        ("devices", "/api/v1/devices?limit=100"),
                        ("one customer's devices", f"/api/v1/devices?tenant_id={one}&limit=100")):
        uris, path, pages = [], first, 0
        while path:
            uris.append(f"{layout.url}{path}")
            _, link = layout.get(path, layout.session)
            pages += 1
            path = link.split(">")[0].lstrip("<") if link else None
        rps, p50, p99, statuses = h2load(uris, layout.session, max(2000, len(uris)), 4, 1)
        bad = sum(statuses.values()) - statuses.get("200", 0)
        rows.append(f"| {layout.name} | {what} | {pages} | {p50:.1f} | {p99:.1f} | {rps:,.0f} | {bad} |")
    return rows


def audit_export(layout, events):
    """`events` opens through h2load, then the export streamed: report lines."""
    base = f"{layout.url}/vaults/{layout.vault}/v1"
    t0 = time.time()
    made = 0
    while made < events:
        n = min(200_000, events - made)
        _, _, _, statuses = h2load([f"{base}/open"], layout.reader, n, 32, 4,
                                   '{"operation":"backup","host":"bench"}')
        made += statuses.get("200", 0)
    fill = time.time() - t0
    pid = layout.nodes[0].proc.pid
    before, threads_before = rss_mib(pid), proc_status(pid, "Threads")
    samples, done = [], threading.Event()

    def sample():
        while not done.is_set():
            samples.append(rss_mib(pid))
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(f"{layout.url}/api/v1/audit/export?format=jsonl",
                                 headers={"authorization": f"Bearer {layout.session}"})
    t0 = time.time()
    lines = size = 0
    marks = {}
    with urllib.request.urlopen(req, context=ctx) as r:
        for line in r:
            lines += 1
            size += len(line)
            for q in (0.1, 0.5, 0.9):
                if q not in marks and lines >= events * q:
                    marks[q] = rss_mib(pid)
    took = time.time() - t0
    done.set()
    after, threads_after = rss_mib(pid), proc_status(pid, "Threads")
    return [
        f"{made:,} `vault.open` events made through the API in {fill:.0f} s ({made / fill:,.0f}/s)",
        f"export: {lines:,} lines, {size / 2**20:,.0f} MiB in {took:.1f} s ({lines / took:,.0f} events/s)",
        f"server resident memory: {before:.0f} MiB before; at 10% / 50% / 90% of the export "
        f"{marks.get(0.1, 0):.0f} / {marks.get(0.5, 0):.0f} / {marks.get(0.9, 0):.0f} MiB; "
        f"peak {max(samples or [0]):.0f} MiB, {after:.0f} MiB after; "
        f"server threads {threads_before} before, {threads_after} after",
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--tenants", type=int, default=10_000)
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--audit-events", type=int, default=1_000_000)
    a = ap.parse_args()

    if not os.environ.get("LOOP_BIN"):
        subprocess.run(["cargo", "build", "--release", "-p", "loop-cli"], cwd=HERE, check=True, capture_output=True)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(f"{WORK}/tree")
    for k in [k for k in os.environ if k.startswith("LOOP_") and k != "LOOP_BIN"]:
        del os.environ[k]
    # A small tree to back up: 500 files of 16 KiB (random) in 20 directories.
    for i in range(500):
        d = f"{WORK}/tree/d{i % 20}"
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/f{i}", "wb") as f:
            f.write(os.urandom(16 << 10))

    pg = Postgres()
    layouts = []
    try:
        a_node = Node("sqlite", f"{WORK}/data-a")
        layouts.append(Layout("1 node, SQLite", [a_node], a_node.url))
        b_db = pg.database("single")
        b_node = Node("pg-single", f"{WORK}/data-b", b_db)
        layouts.append(Layout("1 node, PostgreSQL", [b_node], b_node.url, "single", pg))
        c_db = pg.database("pair")
        c_nodes = [Node(f"pg-node-{x}", f"{WORK}/data-c", c_db, trusted_proxy=True) for x in "ab"]
        balancer, port = haproxy(c_nodes)
        layouts.append(Layout("2 nodes, PostgreSQL, HAProxy", c_nodes, f"https://127.0.0.1:{port}", "pair", pg))

        report = [f"machine: {os.cpu_count()} cores; h2load 32 clients x 4 streams, {a.requests} requests a phase\n",
                  "| layout | phase | requests/s | p50 ms | p99 ms | not 200 | server CPU ms / request | "
                  "SQL statements / request |",
                  "|---|---|---|---|---|---|---|---|"]
        for layout in layouts:
            report += protocol_load(layout, a.requests)
        report += ["", f"listings with {a.tenants:,} more tenants and {a.devices:,} devices "
                       f"(every page, 100 a page, replayed by h2load as 4 clients):\n",
                   "| layout | listing | pages | p50 ms | p99 ms | requests/s | not 200 |",
                   "|---|---|---|---|---|---|---|"]
        seed(layouts[0], "sqlite", a.tenants, a.devices)
        seed(layouts[1], "postgres", a.tenants, a.devices)
        for layout in layouts[:2]:
            report += listing_load(layout)
        if a.audit_events:
            report += ["", "audit export (1 node, SQLite):", ""]
            report += [f"- {line}" for line in audit_export(layouts[0], a.audit_events)]
        print("\n".join(report))
    finally:
        for layout in layouts:
            layout.stop()
        if "balancer" in locals():
            balancer.kill()
        pg.stop()


if __name__ == "__main__":
    main()
