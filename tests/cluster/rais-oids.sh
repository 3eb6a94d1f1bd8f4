# rais-oids.sh — numeric OIDs of RAIS-MIB (mib/RAIS-MIB.txt) as snmptrapd
# -On prints them, for the cluster tests' greps. tests/mib/check-mib checks
# that the code sends exactly the MIB's OIDs.
TRAP_OID_PREFIX=.1.3.6.1.4.1.8072.9999.9999.7247
# snmpTrapOID.0 = OID: PREFIX.0.N followed by a tab (so .0.1 is not .0.10)
trap_oid() { printf '.1.3.6.1.6.3.1.1.4.1.0 = OID: %s.0.%s\t' "$TRAP_OID_PREFIX" "$1"; }
TRAP_OID_ACQUIRE=$(trap_oid 1)
TRAP_OID_RELEASE=$(trap_oid 2)
TRAP_OID_CANNOT=$(trap_oid 7)
TRAP_OBJ_ADDRESS=$TRAP_OID_PREFIX.1.3.0
