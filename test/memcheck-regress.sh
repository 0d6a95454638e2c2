#!/usr/bin/env bash
# The regression suite (sql/*.sql against expected/*.out) run once against
# a server under valgrind: bash test/memcheck-regress.sh
# Builds and installs the extension, starts a throwaway cluster whose
# postmaster and every backend run under valgrind's memcheck (one log per
# process), runs pg_regress, stops the server and reports every "Invalid
# read" and "Invalid write" in the logs, with the stacks that touch
# pluralrm. Exits non-zero when one is found or a regression test fails.
# Slow: valgrind slows the server about 30 times (about 15 minutes on 2
# cores). The result of the last run is in docs/checking.md.
#
# Debian's server is not built with USE_VALGRIND, so memory handed out by
# palloc is not checked chunk by chunk: an overrun inside an allocation
# block goes unseen, one past the block does not. The core's own tests
# under valgrind and ASan (test/drivers/70_memcheck.sh) cover the rest.
# PRM_SKIP_DEPS=1 skips the dependency check; PRM_KEEP_LOGS=DIR copies the
# valgrind logs there.
set -euo pipefail
exec </dev/null
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source test/lib.sh

[[ ${PRM_SKIP_DEPS:-} == 1 ]] || prm_install_deps
prm_build_install

dir=$(mktemp -d "${TMPDIR:-/tmp}/pluralrm-vg.XXXXXX")
data=$dir/data
port=$((5400 + $$ % 500))
owner=postgres
[[ $EUID -eq 0 ]] || owner=$(id -un)
[[ $EUID -ne 0 ]] || chown "$owner": "$dir"
PRM_CLUSTER_OWNER=$owner  # for _prm_as_owner

# Stop the server (the postmaster under valgrind) and remove the folder.
cleanup() {
    if [[ -f $data/postmaster.pid ]]; then
        _prm_as_owner "$PRM_PG_BIN/pg_ctl" -D "$data" -m fast -w -t 300 \
            stop >/dev/null 2>&1 || true
    fi
    if [[ -n ${PRM_KEEP_LOGS:-} ]]; then
        mkdir -p "$PRM_KEEP_LOGS" && cp "$dir"/vg.*.log "$PRM_KEEP_LOGS"/ ||
            true
    fi
    rm -rf -- "$dir"
}
prm_on_exit cleanup

# The dynamic loader's strncmp reads 8 bytes at a time past the end of
# short strings (harmless, and known to valgrind's users); it shows up when
# a backend loads the JIT provider.
cat >"$dir/loader.supp" <<'EOF'
{
   loader-strncmp-reads-words
   Memcheck:Addr8
   fun:strncmp
   fun:is_dst
}
EOF

prm_header "starting the server under valgrind"
_prm_as_owner "$PRM_PG_BIN/initdb" --no-sync -U postgres -A trust -E UTF8 \
    --locale=C -D "$data" >"$dir/initdb.log" 2>&1
cat >>"$data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
fsync = off
synchronous_commit = off
full_page_writes = off
max_parallel_workers_per_gather = 2
log_min_messages = warning
EOF
start=$SECONDS
(
    cd / && exec runuser -u "$owner" -- env OPENBLAS_NUM_THREADS=1 \
        valgrind --quiet --trace-children=yes --leak-check=no \
        --error-limit=no --num-callers=40 --log-file="$dir/vg.%p.log" \
        --suppressions="$dir/loader.supp" \
        "$PRM_PG_BIN/postgres" -D "$data"
) >"$dir/server.log" 2>&1 &
export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
for ((i = 0; i < 300; i++)); do
    pg_isready -q && break
    sleep 1
done
pg_isready -q || { prm_msg "the server did not start"; cat "$dir/server.log"; exit 1; }
echo "started in $((SECONDS - start)) s"

prm_header "pg_regress under valgrind"
start=$SECONDS
rc=0
make -s installcheck PG_CONFIG="$PRM_PG_CONFIG" \
    EXTRA_REGRESS_OPTS="--outputdir=$dir/regress" 2>&1 | tee "$dir/regress.log" || rc=$?
echo "pg_regress took $((SECONDS - start)) s"
if ((rc)) && [[ -f $dir/regress/regression.diffs ]]; then
    head -n 100 "$dir/regress/regression.diffs"
fi

prm_header "stopping the server"
_prm_as_owner "$PRM_PG_BIN/pg_ctl" -D "$data" -m fast -w -t 300 stop >/dev/null
wait

prm_header "valgrind's findings"
logs=("$dir"/vg.*.log)
errors=$(cat "${logs[@]}" | grep -cE '== (Invalid read|Invalid write)') || true
ours=0
for f in "${logs[@]}"; do
    # an error's block runs from its first line to the next blank one
    if grep -qE '== (Invalid read|Invalid write)' "$f"; then
        if awk '/== (Invalid read|Invalid write)/ { on = 1 }
                on && /pluralrm/ { found = 1 }
                on && /^==[0-9]+== $/ { on = 0 }
                END { exit !found }' "$f"; then
            ours=$((ours + 1))
            awk '/== (Invalid read|Invalid write)/ { on = 1 }
                 on { print }
                 on && /^==[0-9]+== $/ { on = 0 }' "$f" | head -n 80
        fi
    fi
done
other=$(cat "${logs[@]}" | grep -cE '== (Conditional jump|Use of uninitialised|Syscall param)') || true
echo "processes logged: ${#logs[@]}"
echo "Invalid read or write: $errors (in logs touching pluralrm: $ours)"
echo "other reports (uninitialised values, syscall parameters): $other"
grep -E '\.\.\. +(ok|FAILED|failed)' "$dir/regress.log" | sed 's/^/  /' || true
((rc == 0 && errors == 0))
