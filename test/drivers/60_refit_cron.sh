#!/usr/bin/env bash
# Scheduled refits through pg_cron: a job scheduled every minute refits a
# model by name and advances its version; a job whose refit fails shows as
# failed in cron.job_run_details and leaves its model's version current.
# Usage: test/drivers/60_refit_cron.sh REPO_ROOT, with the PG* variables of
# a running throwaway cluster exported whose pg_cron database is
# pluralrm_cron (test/lib.sh). Waits up to 65 s for the minute to turn.
# Prints TAP lines and "N passed, N failed".
set -euo pipefail
root=${1:?usage: $0 REPO_ROOT}
db=pluralrm_refit_cron
cron_db=pluralrm_cron
jobs=(pluralrm_test_refit pluralrm_test_refit_fails)

# shellcheck source=test/drivers/common/tap.bash
source "$root/test/drivers/common/tap.bash"

# One value from a query in the test database, or in the cron database
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
qc() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$cron_db" -c "$1"; }

ok_job='' bad_job=''

# Remove our jobs and their history, then the test database
cleanup() {
    local j
    for j in "${jobs[@]}"; do
        qc "DELETE FROM cron.job_run_details WHERE jobid IN
              (SELECT jobid FROM cron.job WHERE jobname = '$j');
            SELECT cron.unschedule(jobid) FROM cron.job
             WHERE jobname = '$j'" >/dev/null 2>&1 || true
    done
    for j in $ok_job $bad_job; do
        qc "DELETE FROM cron.job_run_details WHERE jobid = $j" \
            >/dev/null 2>&1 || true
    done
    dropdb --if-exists --force "$db" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup

createdb "$db"
q "CREATE EXTENSION pluralrm;
   CREATE TABLE comparisons AS
   SELECT i, (i % 20)::bigint AS user_id,
          ARRAY[sin(i * 1.1), cos(i * 0.7), sin(i * 0.3)] AS chosen,
          ARRAY[cos(i * 1.3), sin(i * 0.5), cos(i * 0.9)] AS rejected
     FROM generate_series(1, 2000) i;
   UPDATE comparisons SET chosen = rejected, rejected = chosen
    WHERE chosen[1] - rejected[1] < 0.3 * (chosen[3] - rejected[3]);
   SELECT pluralrm.define_model('nightly', 'btl', 'comparisons');
   SELECT pluralrm.define_model('broken', 'btl', 'comparisons');
   CALL pluralrm.refit('nightly');
   CALL pluralrm.refit('broken');" >/dev/null
report "$(q "SELECT count(*) = 2 AND bool_and(version = 1)
               FROM pluralrm.model_list")" \
    "nightly and broken are at version 1 after a refit by hand"

# New comparisons arrive; broken's recipe now reads a query with no rows.
q "INSERT INTO comparisons SELECT i + 2000, user_id, rejected, chosen
     FROM comparisons WHERE i <= 500;
   SELECT pluralrm.define_model('broken', 'btl',
       query => 'SELECT * FROM public.comparisons WHERE i < 0')" >/dev/null

ok_job=$(qc "SELECT cron.schedule_in_database('${jobs[0]}', '* * * * *',
                 \$\$CALL pluralrm.refit('nightly')\$\$, '$db')")
bad_job=$(qc "SELECT cron.schedule_in_database('${jobs[1]}', '* * * * *',
                  \$\$CALL pluralrm.refit('broken')\$\$, '$db')")
report "$([[ -n $ok_job && -n $bad_job ]] && echo t || echo f)" \
    "two jobs scheduled every minute from the pg_cron database"

# Wait for a finished run of both jobs (the minute turns within 60 s)
start=$SECONDS
done_runs=0
while ((SECONDS - start < 65)); do
    done_runs=$(qc "SELECT count(DISTINCT jobid) FROM cron.job_run_details
                     WHERE jobid IN ($ok_job, $bad_job)
                       AND status IN ('succeeded', 'failed')")
    ((done_runs == 2)) && break
    sleep 1
done
echo "# waited $((SECONDS - start)) s for the jobs to run"
report "$( ((done_runs == 2)) && echo t || echo f)" \
    "both jobs ran within 65 s"

# the jobs fire every minute; stop them before checking
for j in "${jobs[@]}"; do
    qc "SELECT cron.unschedule('$j')" >/dev/null
done

report "$(qc "SELECT status = 'succeeded' FROM cron.job_run_details
               WHERE jobid = $ok_job ORDER BY runid LIMIT 1")" \
    "the refit job succeeded"
report "$(q "SELECT version >= 2 AND n = 2500 FROM pluralrm.model_list
              WHERE name = 'nightly'")" \
    "nightly advanced to a new version fitted on all 2500 comparisons"
report "$(q "SELECT max(abs(x - y)) < 1e-12
               FROM pluralrm.model_list l, pluralrm.model_versions v,
                    (SELECT (pluralrm.btl_fit(chosen, rejected)).weights
                       FROM comparisons) f,
                    unnest(v.base_rewards, f.weights) u(x, y)
              WHERE l.name = 'nightly' AND v.model_id = l.model_id")" \
    "its weights equal btl_fit run directly on the same rows"
report "$(q "SELECT max(abs(pluralrm.reward_score('nightly', c.i, c.chosen)
                            - (SELECT sum(x * y)
                                 FROM unnest(v.base_rewards, c.chosen) u(x, y)
                              ))) < 1e-12
               FROM comparisons c, pluralrm.model_list l
               JOIN pluralrm.model_versions v USING (model_id)
              WHERE l.name = 'nightly'")" \
    "reward_score serves the new version"

report "$(qc "SELECT status = 'failed'
                     AND return_message LIKE '%has no comparisons%'
                FROM cron.job_run_details
               WHERE jobid = $bad_job ORDER BY runid LIMIT 1")" \
    "the failing refit job is recorded as failed, with the reason"
report "$(q "SELECT version = 1 AND versions = 1 FROM pluralrm.model_list
              WHERE name = 'broken'")" \
    "broken still serves version 1"

tap_summary
