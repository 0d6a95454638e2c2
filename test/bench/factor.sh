#!/usr/bin/env bash
# Benchmark of the factorized models: bash test/bench/factor.sh
# Installs the dependencies (benchmark ones too), builds and installs the
# extension, starts a throwaway cluster, generates planted factorized
# comparisons inside the database (test/bench/factor/generate.sql: K = 8
# base rewards in d = 64, per-user coefficients from a Gaussian prior),
# then test/bench/factor/bench.py measures
#   - the onboarding curves: held-out accuracy of 200 new users after 0 to
#     20 answers, questions chosen by next_questions against random ones,
#   - fit_user latency for 10, 20 and 50 comparisons,
#   - next_questions latency for 10,000 candidates (prebuilt arrays),
#   - factor_fit on 1,000,000 comparisons of 100,000 users against the
#     bare scan, serial,
# and prints a table of the targets, each MET or NOT MET. Exits 0 when
# targets are missed, non-zero on errors and wrong results. Takes 10 to
# 15 minutes on 2 cores; results are in docs/performance-factor.md.
# PRM_SKIP_DEPS=1 skips the dependency check; arguments are passed on to
# bench.py (for example --skip big, or --big-users 10000 30000 to add
# smaller fits for the scaling).
set -euo pipefail
exec </dev/null
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source test/lib.sh

db=pluralrm_factor_bench
# Debian's python3 has numpy and psycopg2; a python3 earlier on PATH may not.
python=/usr/bin/python3

[[ ${PRM_SKIP_DEPS:-} == 1 ]] || prm_install_deps bench
prm_build_install
prm_cluster_start

prm_header "generating the data"
start=$SECONDS
createdb "$db"
prm_psql -d "$db" -v users=100000 -v each=10 -v train=2000 \
    -v train_each=40 -v dim=64 -v k=8 -v new=200 -v asked=50 \
    -v pool=2000 -v test=200 -v cands=10000 -v seed=0.5 \
    -f test/bench/factor/generate.sql >/dev/null
echo "generated in $((SECONDS - start)) s"

prm_header "measuring"
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
    "$python" test/bench/factor/bench.py --dbname "$db" "$@"

# Backend crashes would make the numbers meaningless: show them.
if grep -E 'terminated by signal|PANIC' "$PRM_CLUSTER_LOG"; then
    prm_msg "the server log above shows crashed backends"
    exit 1
fi
