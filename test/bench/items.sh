#!/usr/bin/env bash
# Benchmark of item strengths: bash test/bench/items.sh
# Installs the dependencies (benchmark ones too), builds and installs the
# extension, starts a throwaway cluster, generates PRM_BENCH_ROWS (default
# 1,000,000) comparisons among PRM_BENCH_ITEMS (default 1,000) items inside
# the database (test/bench/items/setup.sql), then times btl_items against a
# bare scan and against scikit-learn's LogisticRegression on a sparse one-hot
# design fetched with psycopg2, with the L2 penalty matched to btl_items'
# prior (test/bench/items/bench.py). Exits non-zero on errors and on wrong
# results (strengths that differ from scikit-learn's by more than 1e-5).
# Takes about 2 minutes on 2 cores; results are in docs/items.md.
# PRM_SKIP_DEPS=1 skips the dependency check.
set -euo pipefail
exec </dev/null
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source test/lib.sh

rows=${PRM_BENCH_ROWS:-1000000}
items=${PRM_BENCH_ITEMS:-1000}
db=pluralrm_bench_items
# Debian's python3 has scikit-learn, numpy and psycopg2; a python3 earlier on
# PATH may not.
python=/usr/bin/python3

[[ ${PRM_SKIP_DEPS:-} == 1 ]] || prm_install_deps bench
prm_build_install
prm_cluster_start

prm_header "generating $rows comparisons among $items items"
start=$SECONDS
createdb "$db"
prm_psql -d "$db" -c 'CREATE EXTENSION pluralrm'
prm_psql -d "$db" -v rows="$rows" -v items="$items" \
    -f test/bench/items/setup.sql
echo "generated in $((SECONDS - start)) s"

prm_header "measuring"
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
    "$python" test/bench/items/bench.py --dbname "$db" --items "$items"

# Backend crashes would make the numbers meaningless: show them.
if grep -E 'terminated by signal|PANIC' "$PRM_CLUSTER_LOG"; then
    prm_msg "the server log above shows crashed backends"
    exit 1
fi
