#!/usr/bin/env bash
# Benchmark of the mixture models: bash test/bench/mixture.sh
# Installs the dependencies (benchmark ones too, R's flexmix among them),
# builds and installs the extension, starts a throwaway cluster, generates
# comparisons with planted groups inside the database
# (test/bench/mixture/setup.sql), exports the two small data sets to CSV
# for R, then test/bench/mixture/bench.py times
#   - mixture_fit against R's flexmix (1,000 users x 20 comparisons, d = 8,
#     K = 2 and 3; flexmix.R) with their log-likelihoods,
#   - the 1,000,000-row fit (100,000 users, d = 64, K = 4) against a bare
#     scan, serial and with 2 parallel workers,
#   - reward_score over a 100,000 users x 10 responses join against the
#     bare join,
# and prints the ratios and whether each target is met. Exits 0 when
# targets are missed, non-zero on errors and wrong results. Takes about
# 5 minutes of CPU time on 2 cores, longer when other jobs share the
# machine; results are in docs/performance-mixture.md.
# PRM_SKIP_DEPS=1 skips the dependency check.
set -euo pipefail
exec </dev/null
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source test/lib.sh

db=pluralrm_mixture_bench
# Debian's python3 has numpy and psycopg2; a python3 earlier on PATH may not.
python=/usr/bin/python3

[[ ${PRM_SKIP_DEPS:-} == 1 ]] || prm_install_deps bench
prm_build_install
prm_cluster_start
csv_dir=$(mktemp -d "${TMPDIR:-/tmp}/pluralrm-mixture.XXXXXX")
prm_on_exit "rm -rf -- '$csv_dir'"

prm_header "generating the data sets"
start=$SECONDS
createdb "$db"
prm_psql -d "$db" -f test/bench/mixture/setup.sql
# flexmix's input: user, y, x with x = chosen - rejected when y = 1 and
# rejected - chosen when y = 0 (every other row), one comparison a line
for t in mix2 mix3; do
    prm_psql -d "$db" -c "\\copy (SELECT concat_ws(',', user_id, id % 2,
        array_to_string(ARRAY(SELECT CASE WHEN s.id % 2 = 1 THEN c - r
                                          ELSE r - c END
                                FROM unnest(s.chosen, s.rejected) AS v(c, r)),
                        ',')) FROM $t AS s ORDER BY id)
        TO '$csv_dir/$t.csv'"
done
echo "generated in $((SECONDS - start)) s"

prm_header "measuring"
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
    "$python" test/bench/mixture/bench.py --dbname "$db" \
    --csv-dir "$csv_dir"

# Backend crashes would make the numbers meaningless: show them.
if grep -E 'terminated by signal|PANIC' "$PRM_CLUSTER_LOG"; then
    prm_msg "the server log above shows crashed backends"
    exit 1
fi
