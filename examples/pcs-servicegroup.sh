#!/bin/sh
# A sample rais service group made with pcs (0.11, Pacemaker 2.1).  Run on
# one node of a running cluster, after installing the rais package on every
# node.  Adapt the names, addresses and paths: n1..n3 are the cluster's node
# names (`crm_node -l`), 192.0.2.0/24 a subnet every node has an interface
# in.  n3 has no address: it is a hot spare.
set -e

GROUP=web

# The group: one primitive, cloned so that a raisd runs on every node.
pcs resource create "$GROUP" ocf:rais:servicegroup \
    addresses="n1=192.0.2.11/24 n2=192.0.2.12/24" \
    tests="tcp:80" \
    load=cpu \
    op monitor interval=10s timeout=20s
# Clone it in a separate step (pcs 0.11 puts meta attributes given to
# `create ... clone` on the primitive), then let other clones order against
# it instance by instance.
pcs resource clone "$GROUP"
pcs resource meta "$GROUP-clone" interleave=true

# Keep the group off nodes that cannot serve it, e.g. a quorum-only node:
#   pcs constraint location "$GROUP-clone" avoids qnode

# Parameters change on the primitive, not the clone; every parameter but
# group and nic is reloaded without dropping an address:
#   pcs resource update "$GROUP" addresses="n1=192.0.2.11/24 n2=192.0.2.12/24 n4=192.0.2.14/24"

# Events (acquire, release, test_failed, ...) to a log file through the
# sample alert agent; Pacemaker runs it as hacluster.
pcs alert create id=rais-log path=/usr/libexec/rais/rais-alert-log.sh \
    description="rais events to /var/log/pacemaker/rais-alerts.log"
pcs alert recipient add rais-log id=rais-log-file value=/var/log/pacemaker/rais-alerts.log

# SNMP traps (RAIS-MIB, /usr/share/snmp/mibs/RAIS-MIB.txt) to a manager:
#   pcs resource update "$GROUP" snmp_traps="192.0.2.200:162" snmp_community=public

# Watch it.
crm_mon -A1
raisctl -g "$GROUP" status
