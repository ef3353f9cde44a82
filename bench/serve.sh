# Sourced by the benchmarks that go through `loop server`: `serve` starts one on loopback with
# its data in $WORK/server (log level $LOOP_LOG, default warn), signs the CLI in as its
# administrator and makes a customer tenant. It sets `url`, `customer` and
# LOOP_SERVER_FINGERPRINT, and stops the server when the script exits. Needs LOOP (the binary)
# and WORK.
serve() {
  LOOP_ADMIN_PASSWORD=bench-admin-password LOOP_LOG=${LOOP_LOG:-warn} \
    "$LOOP" server --data-dir "$WORK/server" --listen 127.0.0.1:0 >"$WORK/server.out" 2>"$WORK/server.err" &
  server_pid=$!
  trap 'kill $server_pid 2>/dev/null || true' EXIT
  for _ in $(seq 100); do grep -q fingerprint "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's/^loop server listening on //p' "$WORK/server.out")
  LOOP_SERVER_FINGERPRINT=$(sed -n 's/^certificate SHA-256 fingerprint: //p' "$WORK/server.out")
  export LOOP_SERVER_FINGERPRINT
  LOOP_LOGIN_PASSWORD=bench-admin-password "$LOOP" login --server "$url" --email admin@localhost >/dev/null
  local provider
  provider=$("$LOOP" tenant list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
  customer=$("$LOOP" tenant create --parent "$provider" --kind customer --name bench --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
}
