#!/usr/bin/env bash
# Benchmark of the linear BTL fit: bash test/bench/btl.sh
# Installs the dependencies (benchmark ones too), builds and installs the
# extension, starts a throwaway cluster, generates PRM_BENCH_ROWS (default
# 1,000,000) comparisons with d = 64 inside the database, in a float8[] and a
# real[] table (test/bench/btl/setup.sql), then times btl_fit, its solver and
# reward_score against bare scans, scikit-learn and the export path
# (test/bench/btl/bench.py) and prints the ratios and whether each target is
# met. Exits 0 when targets are missed, non-zero on errors and wrong results.
# Takes about 6 minutes on 2 cores; results are in docs/performance.md.
# PRM_SKIP_DEPS=1 skips the dependency check.
set -euo pipefail
exec </dev/null
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source test/lib.sh

rows=${PRM_BENCH_ROWS:-1000000}
dim=64
db=pluralrm_bench
# Debian's python3 has scikit-learn, numpy and psycopg2; a python3 earlier on
# PATH may not.
python=/usr/bin/python3

[[ ${PRM_SKIP_DEPS:-} == 1 ]] || prm_install_deps bench
prm_build_install
prm_cluster_start

prm_header "generating $rows comparisons with d = $dim"
start=$SECONDS
createdb "$db"
prm_psql -d "$db" -v rows="$rows" -v dim="$dim" -f test/bench/btl/setup.sql
echo "generated in $((SECONDS - start)) s"

prm_header "measuring"
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
    "$python" test/bench/btl/bench.py --dbname "$db" --dim "$dim"

# Backend crashes would make the numbers meaningless: show them.
if grep -E 'terminated by signal|PANIC' "$PRM_CLUSTER_LOG"; then
    prm_msg "the server log above shows crashed backends"
    exit 1
fi
