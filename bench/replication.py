#!/usr/bin/python3
"""Replication of a vault from local disk to Garage, against `rclone sync` of the same
directory to the same Garage, in the same run (docs/BENCHMARKS.md, "Replication").

    bench/replication.py [--tarball /usr/src/linux-source-6.1.tar.xz] [--rounds 3]

1. extracts the tree into WORK/tree and starts a single-node Garage (data under WORK) and a
   release `loop server` with a local destination `here` and an S3 destination `garage`;
2. backs the tree up into a managed vault at `here` (the kernel tree: about 260 MB of packs);
3. first replication, `--rounds` times, alternating with `rclone sync` of the vault's
   directory to the same bucket (--transfers 8, as the server's `replication.transfers`,
   and rclone's default 4): the replication job's own start and end times; rclone's wall
   time; between rounds the copies are removed (replica erasure, `rclone purge`);
4. changes 1% of the files, backs up again, and times the replication that the backup
   queued, then an incremental `rclone sync`.

Needs garage (`cargo install garage --locked`), rclone (Debian package) and a release build
(`cargo build --release -p loop-cli`). WORK (default /dev/shm/loop-bench-replication) is
emptied first; a tmpfs keeps the local disk out of the measurement.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("WORK", "/dev/shm/loop-bench-replication")
LOOP = os.path.join(HERE, "target/release/loop")
GARAGE = shutil.which("garage") or os.path.expanduser("~/.cargo/bin/garage")
PASSWORD = "bench-admin-password"
BUCKET = "bench"


def run(*args, env=None, check=True):
    r = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    if check and r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {r.stderr[-2000:]}")
    return r.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Garage:
    def __init__(self):
        home = f"{WORK}/garage"
        os.makedirs(home)
        self.s3, rpc = free_port(), free_port()
        self.cfg = f"{home}/garage.toml"
        with open(self.cfg, "w") as f:
            f.write(f'metadata_dir = "{home}/meta"\ndata_dir = "{home}/data"\n'
                    f'db_engine = "sqlite"\nreplication_factor = 1\n'
                    f'rpc_bind_addr = "127.0.0.1:{rpc}"\nrpc_public_addr = "127.0.0.1:{rpc}"\n'
                    f'rpc_secret = "{os.urandom(32).hex()}"\n'
                    f'[s3_api]\ns3_region = "garage"\napi_bind_addr = "127.0.0.1:{self.s3}"\n')
        self.proc = subprocess.Popen([GARAGE, "-c", self.cfg, "server"],
                                     stdout=open(f"{home}/out", "w"), stderr=open(f"{home}/err", "w"),
                                     env=dict(os.environ, RUST_LOG="warn"))
        for _ in range(600):
            r = subprocess.run([GARAGE, "-c", self.cfg, "status"], capture_output=True, text=True)
            ids = re.findall(r"^([0-9a-f]{16})", r.stdout, re.M)
            if r.returncode == 0 and ids:
                break
            time.sleep(0.1)
        else:
            sys.exit("garage did not start")
        self.cli("layout", "assign", "-z", "dc1", "-c", "10G", ids[0])
        self.cli("layout", "apply", "--version", "1")
        for _ in range(100):
            if subprocess.run([GARAGE, "-c", self.cfg, "bucket", "create", BUCKET],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        key = self.cli("key", "create", "bench-key")
        self.key_id = re.search(r"Key ID:\s*(\S+)", key).group(1)
        self.secret = re.search(r"Secret key:\s*(\S+)", key).group(1)
        self.cli("bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", "bench-key")

    def cli(self, *args):
        return run(GARAGE, "-c", self.cfg, *args)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Server:
    def __init__(self, garage):
        self.data = f"{WORK}/server"
        config = f"{WORK}/server.toml"
        with open(config, "w") as f:
            f.write(f'[[destinations]]\nname = "here"\njurisdiction = "nl"\nbackend = "local"\n'
                    f'path = "{WORK}/here"\n\n'
                    f'[[destinations]]\nname = "garage"\njurisdiction = "nl"\nbackend = "s3"\n'
                    f'bucket = "{BUCKET}"\nprefix = "loop"\nendpoint = "http://127.0.0.1:{garage.s3}"\n'
                    f'region = "garage"\naccess_key_id = "{garage.key_id}"\n'
                    f'secret_access_key = "{garage.secret}"\nallow_http = true\n')
        out = f"{WORK}/server.out"
        self.proc = subprocess.Popen(
            [LOOP, "server", "--config", config, "--data-dir", self.data, "--listen", "127.0.0.1:0"],
            stdout=open(out, "w"), stderr=open(f"{WORK}/server.err", "w"),
            env=dict(os.environ, LOOP_ADMIN_PASSWORD=PASSWORD, LOOP_LOG="warn"))
        self.url = fingerprint = None
        for _ in range(600):
            for line in open(out).read().splitlines():
                if line.startswith("loop server listening on "):
                    self.url = line.split()[-1]
                if line.startswith("certificate SHA-256 fingerprint: "):
                    fingerprint = line.split()[-1]
            if self.url and fingerprint:
                break
            time.sleep(0.1)
        self.env = {"LOOP_CONFIG_DIR": f"{WORK}/cli", "LOOP_SERVER_FINGERPRINT": fingerprint}
        run(LOOP, "login", "--server", self.url, "--email", "admin@localhost",
            env=dict(self.env, LOOP_LOGIN_PASSWORD=PASSWORD))

    def cli(self, *args):
        return json.loads(run(LOOP, *args, "--json", env=self.env))

    def job_seconds(self, job_id):
        """Waits for the job's end; its duration by its own record."""
        while True:
            j = self.cli("job", "show", job_id)
            if j["state"] not in ("queued", "running"):
                break
            time.sleep(0.05)
        if j["state"] != "succeeded":
            sys.exit(f"job {job_id} ended {j['state']}: {j.get('error')}")
        t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
        return (t(j["finished_at"]) - t(j["started_at"])).total_seconds(), j

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def rclone(garage, *args):
    env = {
        "RCLONE_CONFIG_G_TYPE": "s3", "RCLONE_CONFIG_G_PROVIDER": "Other",
        "RCLONE_CONFIG_G_ENDPOINT": f"http://127.0.0.1:{garage.s3}",
        "RCLONE_CONFIG_G_ACCESS_KEY_ID": garage.key_id,
        "RCLONE_CONFIG_G_SECRET_ACCESS_KEY": garage.secret,
        "RCLONE_CONFIG_G_REGION": "garage", "RCLONE_CONFIG_G_FORCE_PATH_STYLE": "true",
    }
    # A CA bundle for AWS tools in the environment breaks rclone's plain-HTTP client.
    env["AWS_CA_BUNDLE"] = ""
    start = time.monotonic()
    run("rclone", *args, env=env)
    return time.monotonic() - start


def change_one_percent(tree):
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(tree) for f in fs)
    picked = files[::100]
    for p in picked:
        with open(p, "ab") as f:
            f.write(b"\n/* changed */\n")
    return len(picked), len(files)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tarball", default="/usr/src/linux-source-6.1.tar.xz")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(f"{WORK}/tree")
    run("tar", "-xf", a.tarball, "-C", f"{WORK}/tree", "--strip-components=1")
    garage = Garage()
    server = Server(garage)
    try:
        provider = server.cli("tenant", "list")[0]["id"]
        customer = server.cli("tenant", "create", "--parent", provider, "--kind", "customer",
                              "--name", "bench")["id"]
        vault = server.cli("vault", "create", "--tenant", customer, "--name", "kernel",
                           "--destination", "here")["id"]
        token = server.cli("token", "create", "--tenant", customer, "--name", "w", "--kind", "api",
                           "--vault", vault, "--permission", "backup")["secret"]
        backup_env = dict(server.env, LOOP_REPOSITORY=f"{server.url}/vaults/{vault}", LOOP_TOKEN=token)
        run(LOOP, "backup", f"{WORK}/tree", env=backup_env)
        source = f"{WORK}/here/{vault}"
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(source) for f in fs)
        print(f"vault {vault}: {size / 1e6:.0f} MB in {sum(len(fs) for _, _, fs in os.walk(source))} objects")

        ours, theirs8, theirs4 = [], [], []
        for r in range(a.rounds):
            replica = server.cli("vault", "replica", "add", vault, "--destination", "garage")["id"]
            job = server.cli("job", "list", "--kind", "replication")[0]["id"]
            secs, j = server.job_seconds(job)
            ours.append(secs)
            copied = j["summary"]["replicas"][0]["report"]
            print(f"round {r + 1}: loop replication {secs:.2f} s ({copied['objects_copied']} objects, "
                  f"{copied['bytes_copied'] / 1e6:.0f} MB)")
            theirs8.append(rclone(garage, "sync", "--transfers", "8", source, f"G:{BUCKET}/rclone"))
            rclone(garage, "purge", f"G:{BUCKET}/rclone")
            theirs4.append(rclone(garage, "sync", source, f"G:{BUCKET}/rclone"))
            print(f"round {r + 1}: rclone sync --transfers 8 {theirs8[-1]:.2f} s, default {theirs4[-1]:.2f} s")
            if r + 1 < a.rounds:
                rclone(garage, "purge", f"G:{BUCKET}/rclone")
                erase = server.cli("vault", "replica", "remove", vault, replica)["id"]
                server.job_seconds(erase)

        changed, total = change_one_percent(f"{WORK}/tree")
        run(LOOP, "backup", f"{WORK}/tree", env=backup_env)
        job = server.cli("job", "list", "--kind", "replication")[0]["id"]
        inc, j = server.job_seconds(job)
        report = j["summary"]["replicas"][0]["report"]
        inc_rclone = rclone(garage, "sync", "--transfers", "8", source, f"G:{BUCKET}/rclone")
        print(f"1% change ({changed} of {total} files): loop replication {inc:.2f} s "
              f"({report['objects_copied']} objects, {report['bytes_copied'] / 1e6:.1f} MB); "
              f"rclone sync {inc_rclone:.2f} s")

        med = lambda xs: sorted(xs)[len(xs) // 2]
        print("\n| | loop replication | rclone sync --transfers 8 | rclone sync (4) | ratio (vs 8) |")
        print("|---|---|---|---|---|")
        print(f"| first copy, median of {a.rounds} | {med(ours):.2f} s | {med(theirs8):.2f} s | "
              f"{med(theirs4):.2f} s | {med(ours) / med(theirs8):.2f}x |")
        print(f"| after a 1% change | {inc:.2f} s | {inc_rclone:.2f} s | | {inc / inc_rclone:.2f}x |")
    finally:
        server.stop()
        garage.stop()


if __name__ == "__main__":
    main()
