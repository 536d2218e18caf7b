"""Private bridge networks: IPAM, the network plan, netlink (pyroute2), nftables, service DNS."""
