//! Resource allocators: VLAN/VXLAN/id ranges, IPv4/IPv6 address pools, range formatting, MAC derivation (no I/O)
