#!/usr/bin/env bash
# Reference test of btl_item_classes against R: flexmix's EM for a mixture
# of logistic regressions (FLXMRglm, binomial) on the +-1 one-hot design of
# item comparisons, with the rater as grouping, no ties and no prior.
# flexmix starts from the planted classes; btl_item_classes from 20 seeded
# random starts. Compares log-likelihood, mixing weights, strengths
# (relative to item 1) and every rater's responsibilities.
# Usage: test/drivers/41_item_classes_reference.sh REPO_ROOT, with the PG*
# variables of a running cluster exported. Installs R and flexmix when
# they are missing. Prints TAP lines and "N passed, N failed".
set -euo pipefail
root=${1:?usage: $0 REPO_ROOT}
here=$root/test/reference/item_classes
db=pluralrm_item_classes_reference

# shellcheck source=test/drivers/common/tap.bash
source "$root/test/drivers/common/tap.bash"

# The Debian packages this driver needs (test/lib.sh installs what is missing)
# shellcheck source=test/lib.sh
source "$root/test/lib.sh"
prm_install_packages r-base-core r-cran-flexmix
work=$(mktemp -d "${TMPDIR:-/tmp}/pluralrm-item-classes-ref.XXXXXX")
trap 'rm -rf -- "$work"; dropdb --if-exists "$db" >/dev/null 2>&1 || true' \
    EXIT

Rscript "$here/reference.R" "$work"
dropdb --if-exists "$db" >/dev/null 2>&1
createdb "$db"
(cd "$work" && psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
    -f "$here/compare.sql") >"$work/checks.txt"

while IFS='|' read -r ok what; do
    report "$([[ $ok == t || $ok == true ]] && echo t || echo f)" "$what"
done <"$work/checks.txt"
if ((n == 0)); then
    report f "no checks ran"
fi
tap_summary
