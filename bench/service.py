#!/usr/bin/python3
"""The service running by itself, measured: one release `loop server` on 127.0.0.1.

    bench/service.py [--items 10000] [--agents 8] [--h2load-requests 20000]

Prints a Markdown report of four measurements (docs/BENCHMARKS.md, "The service"):

1. notifications: from an agent's report that a job failed to the webhook's arrival and to
   the e-mail's arrival at an SMTP server (aiosmtpd, python3-aiosmtpd), 20 times;
2. scheduler overhead: the server's CPU time per minute with N scheduled protected items
   (the scheduler's ticks and the notifier's missed-item checks), idle otherwise;
3. agents: N `loop agent run` processes back up their own 64 MiB trees into one vault at
   once (wall time, failed jobs);
4. the vault protocol under h2load (nghttp2-client): 32 clients reading listings and
   objects of that vault as restoring agents would (requests/s, p50/p99 latency, the
   server's peak RSS and CPU while it runs).

Needs root (to reset the server's peak-RSS counter), python3-aiosmtpd and nghttp2-client.
WORK (default /tmp/loop-bench-service) holds everything; it is emptied first.
"""

import argparse
import http.client
import http.server
import json
import os
import shutil
import sqlite3
import ssl
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("WORK", "/tmp/loop-bench-service")
LOOP = os.path.join(HERE, "target/release/loop")
PASSWORD = "bench-admin-password"


def run(*args, env=None, check=True):
    e = dict(os.environ, **(env or {}))
    r = subprocess.run(args, capture_output=True, text=True, env=e)
    if check and r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {r.stderr[-2000:]}")
    return r.stdout


def cli(*args):
    return json.loads(run(LOOP, *args, "--json", env=CLI_ENV))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Https:
    """Keep-alive HTTPS to the server, trusting its generated certificate."""

    def __init__(self, host, port, cafile):
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = False
        self.conn = http.client.HTTPSConnection(host, port, context=ctx)

    def call(self, method, path, token=None, body=None):
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        payload = json.dumps(body) if body is not None else None
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            r = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closes idle connections (connections.idle_seconds): reconnect.
            self.conn.close()
            self.conn.request(method, path, body=payload, headers=headers)
            r = self.conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)


def start_receivers():
    """A webhook receiver and an SMTP server that note when each message arrives."""
    arrivals = {"webhook": {}, "mail": {}}

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            at = time.time()
            event = json.loads(body)["event"]
            arrivals["webhook"][event["subject_id"]] = at
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()

    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            at = time.time()
            text = envelope.content.decode("utf-8", "replace")
            for word in text.replace("\r\n", " ").replace("\n", " ").split():
                if word.startswith("jb_"):
                    arrivals["mail"].setdefault(word.strip(".,"), at)
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    return arrivals, hook.server_address[1], smtp_port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--h2load-requests", type=int, default=20_000)
    ap.add_argument("--idle-seconds", type=int, default=120)
    a = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-p", "loop-cli"], cwd=HERE, check=True, capture_output=True)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    global CLI_ENV
    CLI_ENV = {"LOOP_CONFIG_DIR": f"{WORK}/cli"}
    for k in [k for k in os.environ if k.startswith("LOOP_")]:
        del os.environ[k]

    arrivals, hook_port, smtp_port = start_receivers()
    data = f"{WORK}/server"
    with open(f"{WORK}/server.toml", "w") as f:
        f.write(
            f'[notify]\nallow_private_webhooks = true\n'
            f'[mail]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
            f'from = "Loop Backup <backup@bench.example>"\n'
        )
    out = open(f"{WORK}/server.out", "w")
    server = subprocess.Popen(
        [LOOP, "server", "--config", f"{WORK}/server.toml", "--data-dir", data, "--listen", "127.0.0.1:0"],
        stdout=out, stderr=open(f"{WORK}/server.err", "w"),
        env=dict(os.environ, LOOP_ADMIN_PASSWORD=PASSWORD, LOOP_LOG="warn"),
    )
    try:
        url = fingerprint = None
        for _ in range(300):
            text = open(f"{WORK}/server.out").read()
            for line in text.splitlines():
                if line.startswith("loop server listening on "):
                    url = line.split()[-1]
                if line.startswith("certificate SHA-256 fingerprint: "):
                    fingerprint = line.split()[-1]
            if url and fingerprint:
                break
            time.sleep(0.1)
        CLI_ENV["LOOP_SERVER_FINGERPRINT"] = fingerprint
        port = int(url.rsplit(":", 1)[1])
        run(LOOP, "login", "--server", url, "--email", "admin@localhost", env=dict(CLI_ENV, LOOP_LOGIN_PASSWORD=PASSWORD))
        provider = cli("tenant", "list")[0]["id"]
        customer = cli("tenant", "create", "--parent", provider, "--kind", "customer", "--name", "bench")["id"]
        vault = cli("vault", "create", "--tenant", customer, "--name", "bench")["id"]
        api = Https("127.0.0.1", port, f"{data}/tls-cert.pem")

        report = []
        report.append(f"machine: {os.cpu_count()} cores; {a.items} items, {a.agents} agents\n")

        # 1. Notification latency.
        cli("notify", "target", "create", "--tenant", customer, "--name", "hook",
            "--webhook", f"http://127.0.0.1:{hook_port}/", "--kind", "job-failed")
        cli("notify", "target", "create", "--tenant", customer, "--name", "mail",
            "--email", "ops@bench.example", "--kind", "job-failed")

        def enrol(name):
            code = cli("device", "enroll-code", "--tenant", customer)["code"]
            _, r = api.call("POST", "/agent/v1/enroll", body={"code": code, "name": name})
            return r["device_id"], r["token"]

        device, token = enrol("notifier")
        item = cli("item", "create", "--tenant", customer, "--device", device, "--vault", vault,
                   "--name", "n", "--path", "/nonexistent")["id"]
        ended_at = {}
        for _ in range(20):
            job = cli("item", "run", item)["id"]
            _, claimed = api.call("POST", "/agent/v1/jobs/claim", token=token, body={})
            t0 = time.time()
            api.call("POST", f"/agent/v1/jobs/{job}/finish", token=token,
                     body={"fence": claimed["fence"], "state": "failed", "error": "bench"})
            ended_at[job] = t0
        deadline = time.time() + 60
        while time.time() < deadline and (
            len(arrivals["webhook"]) < 20 or len([j for j in ended_at if j in arrivals["mail"]]) < 20
        ):
            time.sleep(0.05)
        for kind in ("webhook", "mail"):
            lat = sorted((arrivals[kind][j] - t) * 1000 for j, t in ended_at.items() if j in arrivals[kind])
            report.append(
                f"notification by {kind}: {len(lat)}/20 arrived; from the job's end "
                f"median {statistics.median(lat):.0f} ms, max {max(lat):.0f} ms"
                if lat else f"notification by {kind}: none arrived"
            )

        # 2. Scheduler overhead with many scheduled items (rows copied from one made by the API),
        # against the same server idle with one item.
        def idle_cpu_per_minute():
            time.sleep(5)
            c0, w0 = cpu_seconds(server.pid), time.time()
            time.sleep(a.idle_seconds)
            c1, w1 = cpu_seconds(server.pid), time.time()
            return (c1 - c0) / (w1 - w0) * 60

        baseline = idle_cpu_per_minute()
        template = cli("item", "create", "--tenant", customer, "--device", device, "--vault", vault,
                       "--name", "template", "--path", "/srv", "--schedule", "mon..fri 22:00")["id"]
        db = sqlite3.connect(f"{data}/loop.db", timeout=30)
        cols = [r[1] for r in db.execute("PRAGMA table_info(protected_items)")]
        rest = [c for c in cols if c not in ("id", "name")]
        with db:
            for n in range(a.items - 1):
                db.execute(
                    f"INSERT INTO protected_items (id, name, {', '.join(rest)}) "
                    f"SELECT ?, ?, {', '.join(rest)} FROM protected_items WHERE id = ?",
                    (f"pi_{n:032x}", f"item-{n}", template),
                )
        db.close()
        per_min = idle_cpu_per_minute()
        extra = per_min - baseline
        report.append(
            f"scheduler with {a.items} scheduled items, idle: {per_min:.2f} CPU s per minute "
            f"against {baseline:.2f} with one item: {extra:.2f} s more, {extra / 60 * 100:.2f}% "
            f"of a core ({a.idle_seconds} s windows)"
        )

        # 3. Agents backing up at once.
        agents = []
        items = []
        for i in range(a.agents):
            dev, _ = None, None
            code = cli("device", "enroll-code", "--tenant", customer)["code"]
            state = f"{WORK}/agent-{i}"
            dev = json.loads(run(LOOP, "agent", "enroll", "--server", url, "--code", code, "--name", f"pc-{i}",
                                 "--state-dir", state, "--json", env=CLI_ENV))["device_id"]
            src = f"{WORK}/src-{i}"
            os.makedirs(src)
            for f in range(64):
                with open(f"{src}/f{f}", "wb") as fh:
                    fh.write(os.urandom(1 << 20))
            items.append(cli("item", "create", "--tenant", customer, "--device", dev, "--vault", vault,
                             "--name", f"data-{i}", "--path", src)["id"])
            agents.append(subprocess.Popen(
                [LOOP, "agent", "run", "--poll-seconds", "1", "--state-dir", state],
                stdout=subprocess.DEVNULL, stderr=open(f"{WORK}/agent-{i}.err", "w"),
                env=dict(os.environ, **CLI_ENV),
            ))
        t0 = time.time()
        jobs = [cli("item", "run", it)["id"] for it in items]
        states = {}
        while len(states) < len(jobs) and time.time() - t0 < 1800:
            for j in jobs:
                if j not in states:
                    s = cli("job", "show", j)["state"]
                    if s not in ("queued", "running"):
                        states[j] = s
            time.sleep(0.2)
        wall = time.time() - t0
        failed = sum(1 for s in states.values() if s != "succeeded")
        for p in agents:
            p.kill()
        report.append(
            f"{a.agents} agents backing up 64 MiB each at once: {wall:.1f} s wall, "
            f"{failed} of {len(jobs)} jobs not succeeded"
        )

        # 4. The vault protocol under h2load.
        reader = cli("token", "create", "--tenant", customer, "--name", "h2load", "--kind", "api",
                     "--vault", vault, "--permission", "restore")["secret"]
        uris = [f"{url}/vaults/{vault}/v1/{k}" for k in ("snapshots", "index", "keys")]
        for kind in ("snapshots", "index"):
            _, names = api.call("GET", f"/vaults/{vault}/v1/{kind}", token=reader)
            uris += [f"{url}/vaults/{vault}/v1/{kind}/{o['name']}" for o in names[:50]]
        with open(f"{WORK}/uris", "w") as f:
            f.write("\n".join(uris) + "\n")
        with open(f"/proc/{server.pid}/clear_refs", "w") as f:
            f.write("5")
        c0, w0 = cpu_seconds(server.pid), time.time()
        out = run("h2load", "-i", f"{WORK}/uris", "-n", str(a.h2load_requests), "-c", "32", "-m", "4",
                  "-H", f"authorization: Bearer {reader}", "--log-file", f"{WORK}/h2load.log")
        c1, w1 = cpu_seconds(server.pid), time.time()
        durations = []
        statuses = {}
        for line in open(f"{WORK}/h2load.log"):
            parts = line.split()
            statuses[parts[1]] = statuses.get(parts[1], 0) + 1
            durations.append(int(parts[2]) / 1000)
        durations.sort()
        rps = [l for l in out.splitlines() if "req/s" in l and "finished" in l]
        report.append(
            f"h2load, 32 clients x 4 streams, {a.h2load_requests} reads of {len(uris)} URIs: "
            f"{rps[0].split(',')[1].strip() if rps else '?'}; latency p50 "
            f"{durations[len(durations) // 2]:.1f} ms, p99 {durations[int(len(durations) * 0.99)]:.1f} ms; "
            f"statuses {statuses}; server peak RSS {peak_rss_mib(server.pid):.0f} MiB, "
            f"CPU {(c1 - c0) / (w1 - w0) * 100:.0f}% of a core"
        )
        print("\n".join(report))
    finally:
        server.kill()


if __name__ == "__main__":
    main()
