#!/bin/sh
# install-cni: run by the calico-node DaemonSet's init container (deploy/calico.yaml). Copies
# the CNI plugins of this image (PLUGIN_DIR) to the host's CNI binary directory (HOST_BIN_DIR) and writes the network
# configuration from CNI_NETWORK_CONFIG, with __KUBERNETES_NODE_NAME__, __ETCD_ENDPOINTS__ and
# __CNI_MTU__ replaced, as <HOST_NET_DIR>/<CNI_CONF_NAME>. Exits non-zero with a message on any
# failure, so the pod does not start half installed.
set -eu

PLUGIN_DIR=${PLUGIN_DIR:-/opt/cni/bin}
HOST_BIN_DIR=${HOST_BIN_DIR:-/host/opt/cni/bin}
HOST_NET_DIR=${HOST_NET_DIR:-/host/etc/cni/net.d}
CNI_CONF_NAME=${CNI_CONF_NAME:-10-calico.conflist}

fail() { echo "install-cni: $*" >&2; exit 1; }

[ -n "${CNI_NETWORK_CONFIG:-}" ] || fail "CNI_NETWORK_CONFIG is empty: the conflist to install"
[ -n "${KUBERNETES_NODE_NAME:-}" ] || fail "KUBERNETES_NODE_NAME is empty (set it from spec.nodeName)"
mkdir -p "$HOST_BIN_DIR" "$HOST_NET_DIR" || fail "cannot create $HOST_BIN_DIR or $HOST_NET_DIR"

for plugin in calico calico-ipam; do
    # Copy then rename, so a kubelet running the plugin never sees a half-written file.
    cp "$PLUGIN_DIR/$plugin" "$HOST_BIN_DIR/.$plugin.tmp" || fail "copying $plugin"
    chmod 0755 "$HOST_BIN_DIR/.$plugin.tmp"
    mv -f "$HOST_BIN_DIR/.$plugin.tmp" "$HOST_BIN_DIR/$plugin" || fail "installing $plugin"
    echo "install-cni: installed $HOST_BIN_DIR/$plugin"
done

conf=$(printf '%s' "$CNI_NETWORK_CONFIG" \
    | sed -e "s|__KUBERNETES_NODE_NAME__|${KUBERNETES_NODE_NAME}|g" \
          -e "s|__ETCD_ENDPOINTS__|${ETCD_ENDPOINTS:-}|g" \
          -e "s|__CNI_MTU__|${CNI_MTU:-1500}|g")
printf '%s\n' "$conf" >"$HOST_NET_DIR/.$CNI_CONF_NAME.tmp" || fail "writing the network configuration"
mv -f "$HOST_NET_DIR/.$CNI_CONF_NAME.tmp" "$HOST_NET_DIR/$CNI_CONF_NAME" \
    || fail "installing $HOST_NET_DIR/$CNI_CONF_NAME"
echo "install-cni: wrote $HOST_NET_DIR/$CNI_CONF_NAME"
