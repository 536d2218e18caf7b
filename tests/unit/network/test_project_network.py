"""ProjectNetwork's bridge, veth and port logic against the recording netlink double (no root)."""

import ipaddress
import os
import socket

import pytest

from envtool.errors import HostError
from envtool.network import nft
from envtool.network.netlink import RecordingNetlink
from envtool.network.project import PortInUse, ProjectNetwork, bridge_name, veth_name


class FakeFirewall:
    def __init__(self):
        self.tables: dict[str, tuple] = {}

    def apply(self, project, bridge, subnet, ports, isolate_host=False, services=None, service_net=None,
              networks=None, link=None):
        self.tables[project] = (bridge, subnet, list(ports), isolate_host, services, service_net)

    def remove(self, project, bridge):
        self.tables.pop(project, None)


def fake_netns(made):
    """A real fd (the caller closes it), no namespace: the inner netlink is another double."""
    def new_netns(inside):
        made.append(inside)
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), inside()
    return new_netns


def network(**kw):
    host = RecordingNetlink(networks=["10.89.0.0/24", "192.0.2.0/24"])
    sysctls = {}
    net = ProjectNetwork.choose("shop", None, None, ["10.89.1.0/24"], fake_netns([]), host=host,
                                firewall=FakeFirewall(), sysctl=lambda p, v: sysctls.__setitem__(p, v), **kw)
    return net, host, sysctls


def test_subnet_avoids_the_hosts_and_other_projects_networks():
    net, _, _ = network()
    assert net.subnet == ipaddress.IPv4Network("10.89.2.0/24") and net.gateway == "10.89.2.1"


def test_up_makes_the_bridge_with_forwarding_and_route_localnet_for_a_stack():
    net, host, sysctls = network()
    net.up()
    assert host.ops("ensure_bridge") == [(bridge_name("shop"), "10.89.2.1", 24)]
    assert sysctls == {"/proc/sys/net/ipv4/ip_forward": "1",
                       f"/proc/sys/net/ipv4/conf/{bridge_name('shop')}/route_localnet": "1"}
    assert net.firewall.tables == {}                      # ports come with the first apply


def test_a_build_steps_network_isolates_the_host_and_has_no_route_localnet():
    net, _, sysctls = network(isolate_host=True)
    net.up()
    assert not [p for p in sysctls if "route_localnet" in p]
    assert net.firewall.tables["shop"][3] is True


def test_attach_gives_each_container_a_veth_on_the_bridge_and_keeps_its_address():
    net, host, _ = network()
    net.up()
    fd, addr = net.attach("shop-web-1")
    assert addr == "10.89.2.2" and fd > 2
    [(host_if, bridge, netns_fd, address, peer)] = host.ops("add_veth")
    assert (host_if, bridge, netns_fd, address, peer) == (veth_name("shop", "shop-web-1"), net.bridge, fd,
                                                          "10.89.2.2", "eth0")
    assert net.attach("shop-db-1")[1] == "10.89.2.3"
    net.detach("shop-web-1")
    assert veth_name("shop", "shop-web-1") not in host.links
    assert net.attach("shop-web-1")[1] == "10.89.2.2"            # a restart keeps its address
    net.release("shop-web-1")
    assert "shop-web-1" not in net.leases


def test_detach_of_a_veth_already_gone_is_fine_and_down_removes_everything():
    net, host, _ = network()
    net.up()
    net.attach("shop-web-1")
    host.fail_at["delete_link"] = 19                          # ENODEV: gone with its namespace
    net.detach("shop-web-1")
    net.apply_ports([nft.PortRule(None, 0, "tcp", "10.89.2.2", 80)])
    assert "shop" in net.firewall.tables
    net.down()
    assert net.firewall.tables == {} and bridge_name("shop") not in host.links and net.host is None


def test_a_failed_veth_is_a_host_error_naming_the_link():
    net, host, _ = network()
    net.up()
    host.fail_at["add_veth"] = 17
    with pytest.raises(HostError, match="add_veth"):
        net.attach("shop-web-1")


def test_published_ports_are_held_and_a_taken_one_is_named():
    net, _, _ = network()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        taken = s.getsockname()[1]
        with pytest.raises(PortInUse, match=f"host port {taken}/tcp is already in use"):
            net.reserve_ports([nft.PortRule("127.0.0.1", taken, "tcp", "10.89.2.2", 80)])
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    net.reserve_ports([nft.PortRule("127.0.0.1", port, "tcp", "10.89.2.2", 80)])
    with socket.socket() as s, pytest.raises(OSError):
        s.bind(("127.0.0.1", port))                           # held, listening
    net.release_ports()


def test_containers_get_the_lower_half_and_replica_slots_service_addresses_from_the_upper():
    net, host, _ = network()
    net.up()
    fd, address = net.attach("shop-web-1")
    os.close(fd)
    assert address == "10.89.2.2" and net.allocator.link == ipaddress.IPv4Network("10.89.2.0/25")
    vip = net.allocator.allocate_service("shop-web-1")
    assert vip == "10.89.2.129" and net.allocator.service_address("shop-web-1") == vip
    assert net.allocator.allocate("shop-web-1.1") == "10.89.2.3"     # an instance's own lease
    net.allocator.release_service("shop-web-1")
    assert net.allocator.service_address("shop-web-1") is None
    net.apply_ports([], {vip: address})
    assert net.firewall.tables["shop"][4:] == ({vip: address}, "10.89.2.128/25")
    text = nft.render("shop", net.bridge, "10.89.2.0/24", [], services={vip: address, "10.89.2.130": None},
                      service_net="10.89.2.128/25")
    assert f"ip daddr {vip} dnat to {address}" in text                   # one slot served
    assert "ip daddr 10.89.2.128/25 meta l4proto tcp reject with tcp reset" in text   # the rest refused
