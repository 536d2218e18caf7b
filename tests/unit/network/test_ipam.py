import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envtool.network.ipam import Allocator, IpamError, choose_subnet

subnets = st.builds(lambda a, b, p: f"10.{a}.{b}.0/{p}", st.integers(0, 255), st.integers(0, 255),
                    st.sampled_from([8, 16, 20, 24, 28]))


@settings(max_examples=200, deadline=None)
@given(st.lists(subnets, max_size=20))
def test_chosen_subnet_never_overlaps_what_is_used(used):
    try:
        net = choose_subnet(used)
    except IpamError:
        assert any(ipaddress.ip_network(u, strict=False).overlaps(ipaddress.ip_network("10.89.0.0/16"))
                   for u in used)
        return
    assert net.prefixlen == 24 and net.subnet_of(ipaddress.ip_network("10.89.0.0/16"))
    assert not any(ipaddress.ip_network(u, strict=False).overlaps(net) for u in used)


def test_pinned_subnet_must_not_overlap():
    with pytest.raises(IpamError, match="overlaps"):
        choose_subnet(["10.1.0.0/16"], pinned="10.1.2.0/24")
    assert str(choose_subnet(["10.1.0.0/16"], pinned="10.2.0.0/24")) == "10.2.0.0/24"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([f"c{i}" for i in range(30)]), max_size=60), st.sampled_from([24, 27, 28]))
def test_allocation_is_unique_stable_and_avoids_the_gateway(ops, prefix):
    a = Allocator(ipaddress.IPv4Network(f"10.89.0.0/{prefix}"))
    for name in ops:
        try:
            addr = a.allocate(name)
        except IpamError:                        # the lower half is full: all but network, gateway, broadcast
            assert len([k for k in a.leases if not k.startswith("service:")]) == a.link.num_addresses - 3
            continue
        assert a.allocate(name) == addr
        assert addr != a.gateway and ipaddress.ip_address(addr) in a.link
        vip = a.allocate_service(name)           # a slot's service address: the upper half, never a container's
        assert ipaddress.ip_address(vip) in a.services and vip not in {v for k, v in a.leases.items()
                                                                       if not k.startswith("service:")}
    assert len(set(a.leases.values())) == len(a.leases)
    for name in list(a.leases)[::2]:
        a.release(name)
    assert len(set(a.leases.values())) == len(a.leases)
