# Three NATS JetStream servers clustered on loopback, on free ports, for the
# scripts that need a real stream (fleet-demo, bench-ship). Source it, then:
#   cluster_init DIR       write the configs under DIR; sets CLUSTER_URLS
#   cluster_start [I...]   start servers (all by default)
#   cluster_stop [I...]    stop them (SIGTERM, then wait)
#   cluster_kill_all       SIGKILL every server started (for an EXIT trap)

NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
CLUSTER_DIR=
CLUSTER_URLS=
declare -a CLUSTER_PIDS=()

# A loopback port nothing listens on (nothing answers a connection there).
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

cluster_init() {
  CLUSTER_DIR=$1
  mkdir -p "$CLUSTER_DIR"
  local ports=() cports=() i j routes
  for i in 0 1 2; do ports+=("$(free_port)"); cports+=("$(free_port)"); done
  CLUSTER_URLS="nats://127.0.0.1:${ports[0]}, nats://127.0.0.1:${ports[1]}, nats://127.0.0.1:${ports[2]}"
  for i in 0 1 2; do
    routes=""
    for j in 0 1 2; do [ "$j" != "$i" ] && routes+=$'\n    nats-route://127.0.0.1:'"${cports[$j]}"; done
    cat > "$CLUSTER_DIR/nats$i.conf" <<CONF
server_name: s$i
listen: 127.0.0.1:${ports[$i]}
jetstream { store_dir: "$CLUSTER_DIR/js$i" }
cluster {
  name: local
  listen: 127.0.0.1:${cports[$i]}
  routes: [$routes
  ]
}
CONF
  done
}

cluster_start() {
  local i list=("$@")
  [ ${#list[@]} -eq 0 ] && list=(0 1 2)
  for i in "${list[@]}"; do
    "$NATS_SERVER" -c "$CLUSTER_DIR/nats$i.conf" >> "$CLUSTER_DIR/nats$i.log" 2>&1 &
    CLUSTER_PIDS[$i]=$!
  done
}

cluster_stop() {
  local i list=("$@")
  [ ${#list[@]} -eq 0 ] && list=(0 1 2)
  for i in "${list[@]}"; do
    [ -n "${CLUSTER_PIDS[$i]:-}" ] || continue
    kill -TERM "${CLUSTER_PIDS[$i]}" 2>/dev/null || true
    wait "${CLUSTER_PIDS[$i]}" 2>/dev/null || true
    CLUSTER_PIDS[$i]=
  done
}

cluster_kill_all() {
  local p
  for p in "${CLUSTER_PIDS[@]}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
}
