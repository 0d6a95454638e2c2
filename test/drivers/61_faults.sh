#!/usr/bin/env bash
# Faults: cancel and statement_timeout stop long fits (btl_fit, mixture_fit,
# factor_fit) within a second; a backend killed with SIGKILL in the middle
# of a refit (during the fit, and after the new version is written but
# before commit) leaves the previous version current and intact after crash
# recovery; clients scoring under pgbench while refits run see whole
# versions only; a fit over pluralrm.max_fit_memory fails with an error
# and its session goes on.
# Usage: test/drivers/61_faults.sh REPO_ROOT, with the PG* variables of a
# running throwaway cluster exported. Kills a backend, so the whole cluster
# restarts twice: never point it at a server that matters.
# Prints TAP lines and "N passed, N failed".
set -euo pipefail
root=${1:?usage: $0 REPO_ROOT}
db=pluralrm_faults
work=$(mktemp -d "${TMPDIR:-/tmp}/pluralrm-faults.XXXXXX")
trap 'jobs -p | xargs -r kill 2>/dev/null || true
      dropdb --if-exists --force "$db" >/dev/null 2>&1 || true
      rm -rf -- "$work"' EXIT

# shellcheck source=test/drivers/common/tap.bash
source "$root/test/drivers/common/tap.bash"

# One value from a query in the test database
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }

# Seconds since the epoch, with fractions
now() { date +%s.%N; }

# Is the expression (floating point, awk syntax) true? prints t or f
holds() { awk "BEGIN { print (($1) ? \"t\" : \"f\") }"; }

# Run psql commands in the background as application APP:
# start APP -c SQL [-c SQL ...]; leaves APP.err, APP.rc and APP.end
start() {
    local app=$1
    shift
    (
        rc=0
        PGAPPNAME=$app psql -X -q -d "$db" "$@" >"$work/$app.out" \
            2>"$work/$app.err" || rc=$?
        now >"$work/$app.end"
        echo "$rc" >"$work/$app.rc"
    ) &
}

# Backend pid of APP once its statement has run SECS seconds (or its wait
# event is WAIT); fails if that does not happen within 60 s
backend() {
    local app=$1 secs=$2 wait=${3:-} pid i
    for ((i = 0; i < 1200; i++)); do
        pid=$(q "SELECT pid FROM pg_stat_activity
                  WHERE application_name = '$app' AND state = 'active'
                    AND now() - query_start >= interval '$secs s'
                    AND ('$wait' = '' OR wait_event = '$wait')")
        if [[ -n $pid ]]; then
            echo "$pid"
            return 0
        fi
        if [[ -s $work/$app.end ]]; then
            echo "# $app ended early: $(cat "$work/$app.err")" >&2
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# Wait for a background psql to finish (its .end file)
finished() {
    local app=$1 i
    for ((i = 0; i < 1200; i++)); do
        [[ -s $work/$app.end ]] && return 0
        sleep 0.05
    done
    return 1
}

# Start time of the checkpointer: changes when the cluster reinitializes
checkpointer_start() {
    q "SELECT backend_start FROM pg_stat_activity
        WHERE backend_type = 'checkpointer'" 2>/dev/null || true
}

# kill -9 a backend, then wait until the cluster has gone through crash
# recovery and accepts connections again (at most 60 s)
crash() {
    local pid=$1 before after i
    before=$(checkpointer_start)
    # test/all.sh reports crashed backends, except the ones killed here
    if [[ -n ${PRM_CLUSTER_DIR:-} ]]; then
        echo "$pid" >>"$PRM_CLUSTER_DIR/killed_pids"
    fi
    kill -9 "$pid"
    for ((i = 0; i < 600; i++)); do
        sleep 0.1
        after=$(checkpointer_start)
        if [[ -n $after && $after != "$before" ]] &&
            [[ $(q "SELECT NOT pg_is_in_recovery()" 2>/dev/null) == t ]]; then
            return 0
        fi
    done
    return 1
}

dropdb --if-exists --force "$db" >/dev/null 2>&1 || true
createdb "$db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
    -f "$root/test/drivers/sql/faults_setup.sql" >/dev/null

# --- cancel and statement_timeout ------------------------------------------

solver=(-c "SET pluralrm.tolerance = 1e-15"
    -c "SET pluralrm.max_iterations = 100000")
btl="SELECT pluralrm.btl_fit(chosen, rejected) FROM long_comparisons"
mixture="SELECT pluralrm.mixture_fit(user_id, chosen, rejected, 2, 1.0, 1.0,
                                     1000, 0) FROM long_comparisons"
factor="SELECT pluralrm.factor_fit(user_id, chosen, rejected, 2)
          FROM long_comparisons"

# Reading the rows takes at most the time of a one-iteration fit; cancel
# a second after that, when the fit can only be in its solver.
t0=$(now)
psql -X -q -d "$db" -c "SET pluralrm.max_iterations = 1" -c "$btl" \
    >/dev/null 2>&1
read_secs=$(awk "BEGIN { s = $(now) - $t0 + 1; print (s < 2 ? 2 : s) }")
echo "# cancelling after $read_secs s: reading the rows takes less"

# Cancel the fit APP runs after read_secs; report the time it took to stop
cancel_test() {
    local app=$1 what=$2 pid t1 t2 secs
    shift 2
    start "$app" "$@"
    if ! pid=$(backend "$app" "$read_secs"); then
        report f "$what was running when cancelled"
        return
    fi
    t1=$(now)
    q "SELECT pg_cancel_backend($pid)" >/dev/null
    finished "$app"
    t2=$(cat "$work/$app.end")
    secs=$(awk "BEGIN { printf \"%.3f\", $t2 - $t1 }")
    report "$(grep -q 'canceling statement due to user request' \
        "$work/$app.err" && echo t || echo f)" \
        "$what was still running and was cancelled (57014)"
    report "$(holds "$secs < 1.0")" \
        "$what stopped ${secs} s after pg_cancel_backend (< 1 s)"
}

cancel_test cancel_btl "a long btl_fit" "${solver[@]}" -c "$btl"
cancel_test cancel_mixture "a long mixture_fit" -c "$mixture"
cancel_test cancel_factor "a long factor_fit" -c "$factor"

# Run a fit under statement_timeout SECS; report how long it overran
timeout_test() {
    local what=$1 secs=$2 t1 t2 over rc=0
    shift 2
    t1=$(now)
    psql -X -q -d "$db" -c "SET statement_timeout = '${secs}s'" "$@" \
        >/dev/null 2>"$work/timeout.err" || rc=$?
    t2=$(now)
    over=$(awk "BEGIN { printf \"%.3f\", $t2 - $t1 - $secs }")
    report "$( ((rc != 0)) && grep -q 'statement timeout' \
        "$work/timeout.err" && echo t || echo f)" \
        "$what hits statement_timeout (57014)"
    report "$(holds "$over < 1.0")" \
        "$what stopped ${over} s after its ${secs} s timeout (< 1 s)"
}

timeout_test "a long btl_fit" "$read_secs" "${solver[@]}" -c "$btl"
timeout_test "a long mixture_fit" "$read_secs" -c "$mixture"

# --- a refit that fails or is killed leaves the previous version ---------

# Report whether model kept still serves version 1 exactly as before
check_kept() {
    local when=$1
    report "$(q "SELECT version = 1 AND versions = 1 FROM pluralrm.model_list
                  WHERE name = 'kept'")" \
        "$when: version 1 of kept is current and the only one"
    report "$(q "SELECT e.scores = r.scores FROM expected_scores('kept') e,
                        kept_reference r")" \
        "$when: its stored arrays are unchanged"
    report "$(q "SELECT maxdiff(served_scores('kept'), r.scores) < 1e-12
                   FROM kept_reference r")" \
        "$when: reward_score gives the old answers"
}

q "SELECT pluralrm.define_model('kept', 'mixture', 'long_comparisons',
        user_column => 'user_id', params => '{\"k\": 2, \"restarts\": 4}')" \
    >/dev/null
start timed_refit -c "SET statement_timeout = '${read_secs}s'" \
    -c "CALL pluralrm.refit('kept')"
if backend timed_refit 0.5 >/dev/null; then
    report "$(psql -X -q -At -d "$db" -c "SET lock_timeout = '1s'" \
        -c "SELECT pluralrm.set_current_version('kept', 1)" \
        -c "SELECT 't'" 2>/dev/null | tail -n 1)" \
        "set_current_version is not blocked by a running refit"
    out=$(psql -X -q -d "$db" -c "SET lock_timeout = '1s'" \
        -c "SELECT pluralrm.drop_model('kept')" 2>&1) || true
    report "$([[ $out == *"lock timeout"* ]] && echo t || echo f)" \
        "drop_model waits for a running refit"
else
    report f "set_current_version is not blocked by a running refit"
    report f "drop_model waits for a running refit"
fi
finished timed_refit || true
report "$([[ $(cat "$work/timed_refit.rc") != 0 ]] &&
    grep -q 'statement timeout' "$work/timed_refit.err" &&
    echo t || echo f)" "a refit stopped by statement_timeout fails"
check_kept "after a timed-out refit"

start kill_fit -c "CALL pluralrm.refit('kept')"
if pid=$(backend kill_fit 1.5) && crash "$pid"; then
    report t "SIGKILL of a backend in the middle of a refit's fit, recovered"
    check_kept "after SIGKILL during the fit"
else
    report f "SIGKILL of a backend in the middle of a refit's fit, recovered"
fi
finished kill_fit || true

q "SELECT pluralrm.define_model('kept', 'mixture', 'small_comparisons',
        user_column => 'user_id', params => '{\"k\": 2, \"restarts\": 4}')" \
    >/dev/null
start kill_commit -c "BEGIN" -c "CALL pluralrm.refit('kept')" \
    -c "SELECT pg_sleep(300)"
if pid=$(backend kill_commit 0 PgSleep); then
    report "$(q "SELECT backend_xid IS NOT NULL FROM pg_stat_activity
                  WHERE pid = $pid")" \
        "a refit wrote its version and waits before its commit"
    check_kept "before that commit"
    if crash "$pid"; then
        report t "SIGKILL of that backend before its commit, recovered"
        check_kept "after SIGKILL before the commit"
    else
        report f "SIGKILL of that backend before its commit, recovered"
    fi
else
    report f "a refit wrote its version and waits before its commit"
fi
finished kill_commit || true
report "$([[ $(q "CALL pluralrm.refit('kept')") == 2 ]] && echo t || echo f)" \
    "after the crashes the next refit writes version 2"

# --- scoring under pgbench while refits run ---------------------------------

# Model live: refitted over and over on growing data, keeping 3 versions;
# expected holds each version's probe scores computed in SQL.
q "CREATE TABLE live_comparisons AS SELECT * FROM make_comparisons(1, 1000);
   SELECT pluralrm.define_model('live', 'mixture', 'live_comparisons',
       user_column => 'user_id', params => '{\"k\": 2, \"restarts\": 2}',
       keep_versions => 3);
   CREATE TABLE expected (version integer PRIMARY KEY, scores float8[]);
   CREATE TABLE score_log (scores float8[]);" >/dev/null
# one transaction, so a version is never visible without its expected row
refit_live() {
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "BEGIN" \
        -c "CALL pluralrm.refit('live')" \
        -c "INSERT INTO expected SELECT * FROM expected_scores('live')" \
        -c "COMMIT" >/dev/null
}
refit_live
cat >"$work/score.sql" <<'SQL'
INSERT INTO score_log (scores)
SELECT array_agg(pluralrm.reward_score('live', p.user_id, p.x) ORDER BY p.id)
  FROM probes p;
SQL
(
    pgbench -n -c 4 -j 2 -T 20 -f "$work/score.sql" "$db" \
        >"$work/pgbench.out" 2>&1
    echo $? >"$work/pgbench.rc"
) &
pgbench_pid=$!
refits=0 refit_errors=0 next=1001
while kill -0 "$pgbench_pid" 2>/dev/null; do
    q "INSERT INTO live_comparisons
       SELECT * FROM make_comparisons($next, 200)" >/dev/null
    next=$((next + 200))
    if refit_live 2>>"$work/refit_live.err"; then
        refits=$((refits + 1))
    else
        refit_errors=$((refit_errors + 1))
    fi
done
wait "$pgbench_pid" || true
echo "# $refits refits while pgbench ran; pgbench said:"
grep -E 'processed|failed|aborted' "$work/pgbench.out" | sed 's/^/#   /'
if [[ -s $work/refit_live.err ]]; then
    echo "# the failed refits said:"
    sed 's/^/#   /' "$work/refit_live.err" | head -n 20
fi
report "$([[ $(cat "$work/pgbench.rc") == 0 ]] &&
    grep -q 'number of failed transactions: 0' "$work/pgbench.out" &&
    echo t || echo f)" "4 pgbench clients scored for 20 s without an error"
report "$( ((refits >= 3 && refit_errors == 0)) && echo t || echo f)" \
    "$refits refits ran meanwhile without an error"
report "$(q "SELECT count(*) > 0 AND bool_and(EXISTS (
                   SELECT 1 FROM expected e
                    WHERE maxdiff(l.scores, e.scores) < 1e-9))
               FROM score_log l")" \
    "every score vector equals the one of a saved version (no mixed model)"
seen=$(q "SELECT count(DISTINCT e.version) FROM score_log l JOIN expected e
            ON maxdiff(l.scores, e.scores) < 1e-9")
report "$( ((seen >= 2)) && echo t || echo f)" \
    "the clients saw $seen different versions"
report "$(q "SELECT bool_and(maxdiff(a.scores, b.scores) > 1e-6)
               FROM expected a
               JOIN expected b ON b.version = a.version + 1")" \
    "successive versions score the probes differently (mixes would show)"
report "$(q "SELECT count(*) = 3 FROM pluralrm.model_versions
              WHERE name = 'live'")" \
    "pruning kept the newest 3 versions of live under load"

# A roll-back that waits for a prune must see the pruned version as gone,
# or the model would point at a version that no longer exists.
oldest=$(q "SELECT min(version) FROM pluralrm.model_versions
             WHERE name = 'live'")
start prune -c "BEGIN" -c "SELECT pluralrm.prune_versions('live', 1)" \
    -c "SELECT pg_sleep(2)" -c "COMMIT"
if backend prune 0 PgSleep >/dev/null; then
    out=$(psql -X -q -d "$db" \
        -c "SELECT pluralrm.set_current_version('live', $oldest)" 2>&1) ||
        true
    report "$([[ $out == *"has no version $oldest"* ]] && echo t || echo f)" \
        "a roll-back waiting on a prune of its version is refused"
else
    report f "a roll-back waiting on a prune of its version is refused"
fi
finished prune || true
report "$(q "SELECT count(*) = 1 FROM pluralrm.model_list l
               JOIN pluralrm.model_versions v USING (model_id)
              WHERE l.name = 'live'")" \
    "live still points at a version that exists"

# --- memory ----------------------------------------------------------------

# A fit that would go over pluralrm.max_fit_memory: SQLSTATE and survival
over_limit() {
    local what=$1 sql=$2 out rc=0
    out=$(psql -X -q -v VERBOSITY=verbose -d "$db" \
        -c "SET pluralrm.max_fit_memory = '16MB'" -c "$sql" \
        -c "SELECT 'alive'" 2>&1) || rc=$?
    report "$([[ $out == *"53400"*"max_fit_memory"* ]] && echo t || echo f)" \
        "$what of 200 MB of comparisons under a 16 MB limit: 53400"
    report "$([[ $out == *alive* ]] && echo t || echo f)" \
        "the session goes on after that error"
}
over_limit "btl_fit" "$btl"
over_limit "mixture_fit" "$mixture"
report "$(psql -X -q -At -d "$db" -c "SET pluralrm.max_fit_memory = '600MB'" \
    -c "SET pluralrm.max_iterations = 1" \
    -c "SELECT (pluralrm.btl_fit(chosen, rejected)).n FROM long_comparisons" \
    2>&1 | tail -n 1 | sed 's/^50000$/t/')" \
    "the same fit runs under a limit above its 200 MB"

tap_summary
