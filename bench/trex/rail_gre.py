# TRex STL profile: the traffic of `railbench gen` for a real NIC.
#
# GRE-in IPv4 frames from a router to a Rail node's local_address, with an
# inner IPv4/TCP packet to the VIP whose source address and port vary over
# `flows` flows (the Maglev/conntrack path sees as many 5-tuples), padded to
# `size` bytes (Ethernet, without FCS). Loaded by TRex's stateless server:
#
#   trex-console> start -f bench/trex/rail_gre.py -m 1mpps -t size=128,flows=1000,local=10.0.0.2,vip=192.0.2.10
#
# Tunables (-t key=value,...): size, flows, router (outer source), local
# (the node's local_address), vip, port, plain=1 (no GRE: inner packets
# straight to the VIP, the plain form of docs/reference.md, Packet model).
# Use TRex's per-stream latency (flow_stats=STLFlowLatencyStats) on a second
# stream at a low rate to get the latency percentiles railbench reports.

from trex_stl_lib.api import (STLProfile, STLStream, STLPktBuilder, STLTXCont,
                              STLScVmRaw, STLVmFlowVar, STLVmWrFlowVar, STLVmFixIpv4)
from scapy.layers.l2 import Ether
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import GRE


class RailGRE(object):
    def get_streams(self, tunables=None, **kwargs):
        t = dict(size=128, flows=1000, router="10.0.0.1", local="10.0.0.2",
                 vip="192.0.2.10", port=80, plain=0)
        for k, v in (tunables or kwargs or {}).items():
            t[k] = v
        size, flows, plain = int(t["size"]), int(t["flows"]), int(t["plain"])

        inner = IP(src="198.18.0.0", dst=t["vip"], flags="DF", ttl=63) / TCP(sport=1024, dport=int(t["port"]), flags="A")
        if plain:
            base = Ether() / inner
            inner_off = 14
        else:
            base = Ether() / IP(src=t["router"], dst=t["local"], ttl=64) / GRE(proto=0x0800) / inner
            inner_off = 14 + 20 + 4
        pad = max(0, size - len(base)) * b"\x00"

        # Flow f: inner source 198.18.0.0 + f, source port 1024 + f/65536,
        # as loadgen.c does, with the inner IPv4 checksum fixed.
        vm = STLScVmRaw([
            STLVmFlowVar(name="f", min_value=0, max_value=flows - 1, size=4, op="inc"),
            STLVmWrFlowVar(fv_name="f", pkt_offset=inner_off + 12, add_value=(198 << 24) | (18 << 16)),
            STLVmFixIpv4(offset=inner_off),
        ] + ([] if plain else [STLVmFixIpv4(offset=14)]))
        return [STLStream(packet=STLPktBuilder(pkt=base / pad, vm=vm), mode=STLTXCont())]


def register():
    return RailGRE()
