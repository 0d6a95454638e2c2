#!/usr/bin/env bash
# THE test command: bash test/all.sh
# Installs dependencies, builds and installs the extension, runs the core
# unit tests, then pg_regress, pgTAP and test/drivers/*.sh against a
# throwaway cluster. Ends with "N passed, N failed"; exit status 0 iff all
# passed. PRM_SKIP_DEPS=1 skips the dependency check; PRM_ONLY=REGEX runs
# only the stages whose name matches (for development; CI runs them all).
# shellcheck disable=SC2119,SC2317  # functions called through prm_stage
set -euo pipefail
exec </dev/null  # nothing here may wait for input
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source test/lib.sh

# Files matching a glob, in C-locale order, one per line.
sorted_glob() {
    local f
    for f in $1; do
        if [[ -e $f ]]; then printf '%s\n' "$f"; fi
    done | LC_ALL=C sort
}

# Unit tests of the numerical core (test/core/Makefile, target run).
run_unittest() {
    local out=$PRM_RUN_DIR/unittest.out rc=0
    make -s unittest PG_CONFIG="$PRM_PG_CONFIG" 2>&1 | tee "$out" || rc=$?
    prm_report_tap "$out"
    return "$rc"
}

# pg_regress: sql/*.sql against expected/*.out.
run_regress() {
    local out=$PRM_RUN_DIR/regress.out rc=0 ok bad
    rm -f regression.diffs regression.out
    make installcheck PG_CONFIG="$PRM_PG_CONFIG" 2>&1 | tee "$out" || rc=$?
    ok=$(grep -cE '\.\.\. +ok' "$out") || true
    bad=$(grep -cE '\.\.\. +(FAILED|failed)' "$out") || true
    if ((ok + bad == 0)); then
        echo "no regression test ran (sql/NAME.sql + expected/NAME.out)"
        return $((rc ? rc : 1))
    fi
    prm_report "$ok" "$bad"
    if ((rc)) && [[ -f regression.diffs ]]; then
        echo "---- regression.diffs (first 200 lines) ----"
        head -n 200 regression.diffs
    fi
    return "$rc"
}

# pgTAP: test/pgtap/*.sql with pg_prove in a fresh database.
run_pgtap() {
    local out=$PRM_RUN_DIR/pgtap.out rc=0 files tests bad
    mapfile -t files < <(sorted_glob 'test/pgtap/*.sql')
    if ((${#files[@]} == 0)); then
        echo "no pgTAP test files (test/pgtap/*.sql)"
        return 1
    fi
    PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" \
        dropdb --if-exists pluralrm_tap
    createdb pluralrm_tap
    pg_prove -h "$PGHOST" -p "$PGPORT" -U postgres -d pluralrm_tap \
        "${files[@]}" 2>&1 | tee "$out" || rc=$?
    # "Files=2, Tests=7, ..." and, per failing file, "(... Failed: 1)"
    read -r tests bad < <(awk '
        /^Files=[0-9]+, Tests=/ { s = $0; sub(/.*Tests=/, "", s);
                                  sub(/,.*/, "", s); t = s + 0 }
        /\(Wstat: .*Failed: [0-9]+\)/ { s = $0; sub(/.*Failed: /, "", s);
                                        sub(/\).*/, "", s); f += s }
        END { print t + 0, f + 0 }' "$out")
    prm_report "$((tests - bad))" "$bad"
    return "$rc"
}

# Whether stage NAME is selected by PRM_ONLY (all are when it is unset).
wanted() { [[ -z ${PRM_ONLY:-} || $1 =~ $PRM_ONLY ]]; }

[[ ${PRM_SKIP_DEPS:-} == 1 ]] || prm_install_deps

prm_stage "build and install" prm_build_install
built=$PRM_LAST_RC

if wanted "core unit tests"; then
    prm_stage "core unit tests" run_unittest
fi

# Stages that need the installed extension and a server.
later=()
for s in "pg_regress" "pgTAP"; do
    if wanted "$s"; then later+=("$s"); fi
done
mapfile -t drivers < <(sorted_glob 'test/drivers/*.sh')
for d in "${drivers[@]}"; do
    if [[ -x $d ]] && wanted "driver $(basename "$d" .sh)"; then
        later+=("driver $(basename "$d" .sh)")
    fi
done

if ((built != 0)); then
    for s in "${later[@]}"; do prm_stage_skip "$s" "build failed"; done
elif ! prm_cluster_start; then
    for s in "${later[@]}"; do prm_stage_skip "$s" "no server"; done
else
    if wanted "pg_regress"; then prm_stage "pg_regress" run_regress; fi
    if wanted "pgTAP"; then prm_stage "pgTAP" run_pgtap; fi
    for d in "${drivers[@]}"; do
        if ! wanted "driver $(basename "$d" .sh)"; then
            continue
        elif [[ -x $d ]]; then
            prm_stage "driver $(basename "$d" .sh)" "$d" "$PRM_ROOT"
        else
            prm_msg "skipping $d: not executable"
        fi
    done
    # Backend crashes may hide behind passing tests: show them (not the
    # backends the fault driver killed on purpose, listed in killed_pids).
    if grep -E 'terminated by signal|PANIC' "$PRM_CLUSTER_LOG" |
        grep -vE "\(PID ($(paste -sd'|' "$PRM_CLUSTER_DIR/killed_pids" \
            2>/dev/null || echo 0))\)"; then
        prm_msg "the server log above shows crashed backends"
    fi
    prm_cluster_stop
fi

rc=0
prm_summary || rc=$?
exit "$rc"
