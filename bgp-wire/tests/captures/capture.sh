#!/usr/bin/env bash
# Captures real BGP messages between BIRD 2 (AS 65001) and GoBGP (AS 65002) in two private network
# namespaces, then writes each direction's messages as hex lines (`# comment` lines are notes).
# Needs root, bird2, gobgpd, tcpdump, python3. Usage: capture.sh OUTDIR
set -euo pipefail
out=${1:?output directory}
W=$(mktemp -d)
A=bgpwA$$; B=bgpwB$$
cleanup() {
  for f in "$W"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  sleep 1; ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$A"; ip netns add "$B"
ip link add va$$ type veth peer name vb$$
ip link set va$$ netns "$A"; ip link set vb$$ netns "$B"
ip -n "$A" addr add 192.0.2.1/30 dev va$$; ip -n "$B" addr add 192.0.2.2/30 dev vb$$
ip -n "$A" addr add fd00::1/64 dev va$$ nodad; ip -n "$B" addr add fd00::2/64 dev vb$$ nodad
for n in "$A" "$B"; do ip -n "$n" link set lo up; done
ip -n "$A" link set va$$ up; ip -n "$B" link set vb$$ up

cat >"$W/bird.conf" <<CONF
router id 192.0.2.1;
protocol device { scan time 10; }
protocol static pods4 { ipv4; route 10.244.1.0/26 blackhole; route 10.244.1.64/26 blackhole; }
protocol static pods6 { ipv6; route fd00:10:244:1::/64 blackhole; }
protocol bgp peer_b {
  local 192.0.2.1 as 65001;
  neighbor 192.0.2.2 as 65002;
  hold time 9; connect retry time 2;
  ipv4 { import all; export where source = RTS_STATIC; };
  ipv6 { import all; export where source = RTS_STATIC; next hop address fd00::1; };
}
CONF
cat >"$W/gobgp.toml" <<CONF
[global.config]
  as = 65002
  router-id = "192.0.2.2"
  port = 179
  local-address-list = ["192.0.2.2"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "192.0.2.1"
    peer-as = 65001
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 2
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
CONF
ip netns exec "$A" tcpdump -i va$$ -U -s 0 -w "$W/bgp.pcap" 'tcp port 179' >"$W/tcpdump.log" 2>&1 &
echo $! >"$W/tcpdump.pid"
sleep 1
ip netns exec "$A" bird -c "$W/bird.conf" -s "$W/bird.ctl" -P "$W/bird.pid"
ip netns exec "$B" gobgpd -f "$W/gobgp.toml" -t toml -p -l warn --api-hosts 127.0.0.1:50051 --pprof-disable >"$W/gobgpd.log" 2>&1 &
echo $! >"$W/gobgpd.pid"
poll() { for _ in $(seq 1 60); do if eval "$1"; then return 0; fi; sleep 0.5; done; echo "timeout: $1" >&2; return 1; }
poll "ip netns exec $B gobgp -j global rib -a ipv4 2>/dev/null | grep -q 10.244.1.64/26"
poll "ip netns exec $B gobgp -j global rib -a ipv6 2>/dev/null | grep -q fd00:10:244:1::/64"
ip netns exec "$B" gobgp global rib add -a ipv4 10.244.2.0/26 nexthop 192.0.2.2 community 65002:100 large-community 65002:1:2
ip netns exec "$B" gobgp global rib add -a ipv6 fd00:10:244:2::/64 nexthop fd00::2
poll "birdc -s $W/bird.ctl show route 10.244.2.0/26 | grep -q 10.244.2.0"
ip netns exec "$B" gobgp neighbor 192.0.2.1 softresetin -a ipv4
ip netns exec "$B" gobgp global rib del -a ipv4 10.244.2.0/26
poll "! birdc -s $W/bird.ctl show route 10.244.2.0/26 | grep -q 10.244.2.0"
birdc -s "$W/bird.ctl" disable peer_b \"maintenance window\" || true
sleep 2
kill "$(cat "$W/tcpdump.pid")"; sleep 1
python3 - "$W/bgp.pcap" "$out" <<'PY'
import struct, sys
pcap, out = sys.argv[1], sys.argv[2]
data = open(pcap, 'rb').read()
off, streams, seen = 24, {}, set()
while off + 16 <= len(data):
    _, _, incl, _ = struct.unpack('<IIII', data[off:off + 16]); pkt = data[off + 16:off + 16 + incl]; off += 16 + incl
    eth = struct.unpack('!H', pkt[12:14])[0]
    if eth == 0x0800:
        ihl = (pkt[14] & 15) * 4; src = '.'.join(map(str, pkt[26:30])); l4 = pkt[14 + ihl:]
    elif eth == 0x86dd:
        src = pkt[22:38].hex(); l4 = pkt[54:]
    else:
        continue
    sport, dport, seq = struct.unpack('!HHI', l4[:8]); doff = (l4[12] >> 4) * 4; payload = l4[doff:]
    if payload and (src, sport, seq) not in seen:
        seen.add((src, sport, seq)); streams.setdefault(src, bytearray()).extend(payload)
names = {'192.0.2.1': 'bird2', '192.0.2.2': 'gobgpd'}
for src, buf in streams.items():
    lines, i = [], 0
    while i + 19 <= len(buf):
        n = struct.unpack('!H', buf[i + 16:i + 18])[0]
        lines.append(bytes(buf[i:i + n]).hex()); i += n
    open(f"{out}/{names.get(src, src)}.hex", 'w').write(
        f"# BGP messages sent by {names.get(src, src)} ({src}), captured with tcpdump by capture.sh\n" + '\n'.join(lines) + '\n')
    print(names.get(src, src), len(lines), 'messages')
PY
