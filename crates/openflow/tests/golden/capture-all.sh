#!/usr/bin/env bash
# Regenerates every *.golden file here from ovs-ofctl (Open vSwitch 3.1, Debian 12) talking to
# capture.py's fake switch. Each file's first line is the exact command. Run from this directory.
set -euo pipefail
T='tcp:127.0.0.1:{port}'
cap() { local n=$1; shift; python3 capture.py "$n" -- ovs-ofctl -O OpenFlow13 --no-names "$@"; }
cap output add-flow "$T" 'table=0,priority=100,in_port=1,actions=output:2'
cap arp_punt add-flow "$T" 'table=0,priority=100,arp,arp_op=1,actions=CONTROLLER:65535'
cap dns_punt add-flow "$T" 'table=0,priority=100,udp,dl_src=02:02:00:00:00:00/ff:ff:00:00:00:00,tp_dst=53,actions=CONTROLLER:65535'
cap vlan_metadata add-flow "$T" 'table=1,priority=100,in_port=3,dl_vlan=10,actions=pop_vlan,write_metadata:0x100010002/0xff7ffffffe,goto_table:2'
cap policy add-flow "$T" 'table=5,priority=20,cookie=0x1234,idle_timeout=30,hard_timeout=60,send_flow_rem,tcp,metadata=0x20/0x7ffe,nw_src=10.1.0.0/16,nw_dst=10.1.1.5,tp_dst=80,actions=goto_table:6'
cap udp_ports add-flow "$T" 'table=5,priority=30,udp,nw_dst=10.1.1.0/24,tp_src=53,tp_dst=5353,actions=drop'
cap regs_ct add-flow "$T" 'table=2,priority=50,ip,reg0=0x5/0xff,ct_state=+trk+est-new,ct_zone=7,ct_mark=0x1/0xf,actions=load:0x3->NXM_NX_REG1[0..7],move:NXM_NX_REG0[0..15]->NXM_NX_REG2[16..31],resubmit(,7)'
cap ct_nat add-flow "$T" 'table=3,priority=10,ip,actions=ct(commit,zone=5,table=4,nat(dst=10.0.0.10-10.0.0.20:8080-8090))'
cap ct_plain add-flow "$T" 'table=3,priority=11,ip,actions=ct(table=4,zone=9)'
cap set_fields add-flow "$T" 'table=4,priority=5,ip,ct_label=0x1/0x1,tun_id=0x64,actions=set_field:00:00:11:11:11:11->eth_src,set_field:5->reg3,dec_ttl,push_vlan:0x8100,set_field:4106->vlan_vid,output:4'
cap arp_reply add-flow "$T" 'table=0,priority=200,arp,arp_tpa=10.1.1.5,arp_spa=10.1.1.0/24,arp_sha=02:02:0a:01:01:06,arp_tha=00:00:00:00:00:00,arp_op=1,actions=set_field:02:02:0a:01:01:05->eth_src,set_field:2->arp_op,set_field:02:02:0a:01:01:05->arp_sha,set_field:10.1.1.5->arp_spa,IN_PORT'
cap write_actions add-flow "$T" 'table=6,priority=1,eth_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=group:3,clear_actions,write_actions(output:1),goto_table:9'
cap mod_loose mod-flows "$T" 'table=1,in_port=3,actions=drop'
cap mod_strict mod-flows --strict "$T" 'table=1,priority=100,in_port=3,actions=output:5'
cap del_strict del-flows --strict "$T" 'table=5,priority=20,tcp,tp_dst=80,out_port=2'
cap del_cookie del-flows "$T" 'cookie=0x100/0xff00'
cap group_all add-group "$T" 'group_id=1,type=all,bucket=output:1,bucket=output:2'
cap group_select add-group "$T" 'group_id=2,type=select,bucket=weight:10,actions=output:1,bucket=weight:20,actions=output:2'
cap bundle add-flow --bundle "$T" 'table=0,priority=100,in_port=1,actions=output:2'
cap packet_out packet-out "$T" 'in_port=1 packet=ffffffffffff02020a0101050806 actions=output:2'
