#!/usr/bin/env bash
# Reference test of btl_items against R: BradleyTerry2's BTm on its
# baseball and citations data (strengths, standard errors, log-likelihood)
# and Davidson's tie model on its football data, fitted in R as the
# equivalent Poisson log-linear model (pooled, per season with GROUP BY,
# and under a parallel plan).
# Usage: test/drivers/40_items_reference.sh REPO_ROOT, with the PG*
# variables of a running cluster exported. Installs R and BradleyTerry2
# when they are missing. Prints TAP lines and "N passed, N failed".
set -euo pipefail
root=${1:?usage: $0 REPO_ROOT}
here=$root/test/reference/items
db=pluralrm_items_reference

# The Debian packages this driver needs (test/lib.sh installs what is missing)
# shellcheck source=test/lib.sh
source "$root/test/lib.sh"
prm_install_packages r-base-core r-cran-bradleyterry2
work=$(mktemp -d "${TMPDIR:-/tmp}/pluralrm-items-ref.XXXXXX")
trap 'rm -rf -- "$work"; dropdb --if-exists "$db" >/dev/null 2>&1 || true' \
    EXIT

Rscript "$here/reference.R" "$work"
dropdb --if-exists "$db" >/dev/null 2>&1
createdb "$db"
(cd "$work" && psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
    -f "$here/compare.sql") >"$work/checks.txt"

passed=0 failed=0 n=0
while IFS='|' read -r ok what; do
    n=$((n + 1))
    if [[ $ok == t ]]; then
        echo "ok $n - $what"
        passed=$((passed + 1))
    else
        echo "not ok $n - $what"
        failed=$((failed + 1))
    fi
done <"$work/checks.txt"
echo "1..$n"
if ((n == 0)); then
    echo "no checks ran"
    failed=1
fi
echo "$passed passed, $failed failed"
if declare -F prm_report >/dev/null; then prm_report "$passed" "$failed"; fi
((failed == 0))
