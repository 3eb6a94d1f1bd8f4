# shellcheck shell=bash
# testbed-install.sh — the install overlay, part of the cluster testbed.
# Source tests/cluster/testbed.sh, not this file.
#
# Owns: staging rais's built files as an install tree (tb_stage_install) and
# the overlay list each host's anchor mounts read-only over
# TB_OVERLAY_POINTS (tb__install_setup): the testbed's own layer (the fence
# agent's wrapper), then the --install directory, then the machine's files.
# Nothing is installed on the machine itself.

# tb_stage_install DIR SRCROOT BUILDDIR: make DIR a staging tree of rais's
# installed files, as symbolic links (absolute, so that they resolve inside
# the hosts too, and a rebuild is picked up without staging again):
#   DIR/usr/sbin/raisd, DIR/usr/sbin/raisctl     <- BUILDDIR (or BUILDDIR/src)
#   DIR/usr/lib/ocf/resource.d/rais/servicegroup <- BUILDDIR/ocf/servicegroup
#                                                   (else SRCROOT/ocf/servicegroup)
#   DIR/usr/sbin/fence_raistest                  <- SRCROOT/tests/cluster
# What is not found is reported and left out (status 0). Then pass DIR to
# tb_create --install DIR (or TB_INSTALL=DIR).
tb_stage_install() {
    local dir=$1 src=$2 build=$3 f c found sb
    if [ -z "$dir" ] || [ -z "$src" ] || [ -z "$build" ]; then
        tb__err "usage: tb_stage_install DIR SRCROOT BUILDDIR"
        return 2
    fi
    src=$(cd "$src" && pwd) || return 1
    build=$(cd "$build" && pwd) || return 1
    mkdir -p "$dir/usr/sbin" || return 1
    dir=$(cd "$dir" && pwd) || return 1
    for f in raisd raisctl; do
        found=""
        for c in "$build/$f" "$build/src/$f" "$build/src/daemon/$f" "$build/src/$f/$f"; do
            if [ -f "$c" ] && [ -x "$c" ]; then found=$c; break; fi
        done
        if [ -n "$found" ]; then
            ln -sfn "$found" "$dir/usr/sbin/$f" || return 1
        else
            tb__say "tb_stage_install: no $f built in $build: not staged"
        fi
    done
    found=""
    for c in "$build/ocf/servicegroup" "$src/ocf/servicegroup"; do
        if [ -f "$c" ]; then found=$c; break; fi
    done
    if [ -n "$found" ]; then
        mkdir -p "$dir/usr/lib/ocf/resource.d/rais" || return 1
        ln -sfn "$found" "$dir/usr/lib/ocf/resource.d/rais/servicegroup" || return 1
        [ -x "$found" ] || tb__say "tb_stage_install: $found is not executable"
        # The generated agent runs @sbindir@/raisd: with another prefix than
        # /usr (e.g. /usr/local), stage the programs there too.
        # shellcheck disable=SC2016   # a literal ${RAISD:-...}
        sb=$(sed -n 's|^RAISD="${RAISD:-\(/.*\)/raisd}".*|\1|p' "$found" | head -n 1)
        if [ -n "$sb" ] && [ "$sb" != /usr/sbin ]; then
            mkdir -p "$dir$sb" || return 1
            for f in raisd raisctl; do
                if [ -L "$dir/usr/sbin/$f" ]; then
                    ln -sfn "$(readlink "$dir/usr/sbin/$f")" "$dir$sb/$f" || return 1
                fi
            done
            case " $TB_OVERLAY_POINTS " in
                *" $sb "*) ;;
                *) tb__say "tb_stage_install: the agent runs $sb/raisd: add $sb to TB_OVERLAY_POINTS" ;;
            esac
        fi
    else
        tb__say "tb_stage_install: no ocf/servicegroup in $build or $src: not staged"
    fi
    if [ -f "$src/tests/cluster/fence_raistest" ]; then
        ln -sfn "$src/tests/cluster/fence_raistest" "$dir/usr/sbin/fence_raistest" || return 1
    fi
    return 0
}

# tb__install_setup INSTALL_DIR: the testbed's own layer ($TB_DIR/install:
# the fence agent's wrapper) and $TB_DIR/overlays, read by each anchor.
tb__install_setup() {
    local inst=$1 p lower f
    mkdir -p "$TB_DIR/install/usr/sbin" || return 1
    # pacemaker-fenced runs agents with a clean environment: the wrapper
    # tells the agent where the testbed is.
    cat >"$TB_DIR/install/usr/sbin/fence_raistest" <<EOW || return 1
#!/bin/sh
# Written by testbed.sh: the testbed's fence agent (see fence_raistest).
TB_DIR='$TB_DIR'
export TB_DIR
exec /bin/bash '$(dirname "$TB__SELF")/fence_raistest' "\$@"
EOW
    chmod 0755 "$TB_DIR/install/usr/sbin/fence_raistest" || return 1
    if [ -n "$inst" ]; then
        case $inst in
            /*) ;;
            *) inst=$(cd "$inst" 2>/dev/null && pwd) || { tb__err "--install: no directory '$1'"; return 1; } ;;
        esac
        [ -d "$inst" ] || { tb__err "--install: no directory '$inst'"; return 1; }
        case $inst in
            *[:,[:space:]]*) tb__err "--install: the path may not contain ':', ',' or blanks: '$inst'"; return 1 ;;
        esac
        # Files outside the overlay points would silently not be visible.
        while IFS= read -r f; do
            local ok=0
            for p in $TB_OVERLAY_POINTS; do
                case ${f#"$inst"} in "$p"/*) ok=1 ;; esac
            done
            [ $ok = 1 ] || tb__say "--install: ${f#"$inst"} is outside the overlay points ($TB_OVERLAY_POINTS): not visible in the hosts"
        done < <(find "$inst" \( -type f -o -type l \) 2>/dev/null)
    fi
    : >"$TB_DIR/overlays" || return 1
    for p in $TB_OVERLAY_POINTS; do
        lower=""
        [ -d "$TB_DIR/install$p" ] && lower="$TB_DIR/install$p"
        if [ -n "$inst" ] && [ -d "$inst$p" ]; then lower="${lower:+$lower:}$inst$p"; fi
        [ -n "$lower" ] || continue
        [ -d "$p" ] || { tb__err "$p does not exist on this machine: cannot overlay it"; return 1; }
        echo "$p $lower:$p" >>"$TB_DIR/overlays"
    done
    echo "$inst" >"$TB_DIR/install-dir"
}
