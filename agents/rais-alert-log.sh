#!/bin/sh
# rais-alert-log.sh: a sample Pacemaker alert agent that logs rais events.
#
# raisd runs every alert agent of the CIB for each event of its group (as
# hacluster, with the alert's timeout), with Pacemaker's CRM_alert_*
# variables (kind=resource, rsc=GROUP:ADDRESS, task=EVENT, desc=REASON, node,
# rc, timestamp) plus CRM_alert_rais_group and CRM_alert_rais_address.  This
# agent appends one line per rais event to the recipient, a file (default:
# syslog through logger, tag rais-alert); Pacemaker's own alerts (no
# CRM_alert_rais_group) are ignored unless the alert has the option
# rais_all=true.
#
#   pcs alert create id=rais-log path=/usr/libexec/rais/rais-alert-log.sh
#   pcs alert recipient add rais-log value=/var/log/pacemaker/rais-alerts.log
#
# The file must be writable by hacluster (/var/log/pacemaker is).  Line:
#   TIMESTAMP GROUP EVENT NODE ADDRESS rc=RC: REASON

if [ -z "${CRM_alert_rais_group:-}" ]; then
	case "${rais_all:-}" in
	true | yes | 1) ;;
	*) exit 0 ;;
	esac
fi

line="${CRM_alert_timestamp:-$(date '+%Y-%m-%d %H:%M:%S')}"
line="$line ${CRM_alert_rais_group:-pacemaker} ${CRM_alert_task:-${CRM_alert_kind:-?}}"
line="$line ${CRM_alert_node:--} ${CRM_alert_rais_address:-${CRM_alert_rsc:--}}"
line="$line rc=${CRM_alert_rc:-0}: ${CRM_alert_desc:-}"

case "${CRM_alert_recipient:-}" in
"")
	logger -t rais-alert -- "$line"
	;;
/*)
	# One write per line: concurrent agents do not interleave their lines.
	printf '%s\n' "$line" >>"$CRM_alert_recipient" || exit 1
	;;
*)
	echo "rais-alert-log.sh: recipient '$CRM_alert_recipient' is not an absolute file name" >&2
	exit 1
	;;
esac
exit 0
