# Shared by scripts/test and scripts/demo: install what is missing, start and stop etcd.
# shellcheck shell=bash

# Debian packages the suite and the demo use (real peers, real netfilter, real etcd).
FABRIC_PACKAGES=(
    etcd-server protobuf-compiler bird2 gobgpd frr iptables ipset nftables
    containernetworking-plugins iproute2 iputils-ping tcpdump netcat-openbsd socat jq sqlite3
    procps kmod curl
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs every package of FABRIC_PACKAGES that is not installed yet.
ensure_packages() {
    local missing=()
    for p in "${FABRIC_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
}

# cargo-nextest runs the suite; install it if this machine lacks it.
ensure_nextest() {
    if ! cargo nextest --version >/dev/null 2>&1; then
        log "installing cargo-nextest"
        cargo install cargo-nextest --locked
    fi
}

# Starts a private etcd on loopback for the suite; exports FABRIC_TEST_ETCD.
start_etcd() {
    ETCD_DIR=$(mktemp -d /tmp/fabric-etcd.XXXXXX)
    local client=http://127.0.0.1:23790 peer=http://127.0.0.1:23800
    etcd --name suite --data-dir "$ETCD_DIR/data" \
        --listen-client-urls $client --advertise-client-urls $client \
        --listen-peer-urls $peer --initial-advertise-peer-urls $peer \
        --initial-cluster suite=$peer --log-level error >"$ETCD_DIR/etcd.log" 2>&1 &
    ETCD_PID=$!
    for _ in $(seq 1 100); do
        if curl -fsS $client/health 2>/dev/null | grep -q '"health":"true"'; then
            export FABRIC_TEST_ETCD=$client
            log "etcd running at $client (pid $ETCD_PID)"
            return 0
        fi
        sleep 0.1
    done
    echo "etcd did not start; its log:" >&2
    cat "$ETCD_DIR/etcd.log" >&2
    return 1
}

stop_etcd() {
    if [[ -n "${ETCD_PID:-}" ]]; then
        kill "$ETCD_PID" 2>/dev/null || true
        wait "$ETCD_PID" 2>/dev/null || true
        ETCD_PID=
    fi
    [[ -n "${ETCD_DIR:-}" ]] && rm -rf "$ETCD_DIR"
    return 0
}
