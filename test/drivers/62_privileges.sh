#!/usr/bin/env bash
# Least privilege: a scoring role can score but not refit, save, roll back
# or drop; a refitting role can define recipes, refit and roll back but not
# drop, and refit reads its source with the caller's rights only; a recipe
# runs only for callers whose privileges its writer holds. No role used
# here is a superuser. The grants are those of docs/operations.md
# (test/drivers/sql/privileges_grants.sql).
# Usage: test/drivers/62_privileges.sh REPO_ROOT, with the PG* variables of
# a running throwaway cluster exported (trust authentication). Creates and
# drops the roles prm_t62_*. Prints TAP lines and "N passed, N failed".
set -euo pipefail
root=${1:?usage: $0 REPO_ROOT}
db=pluralrm_privileges
roles=(prm_t62_app prm_t62_analyst prm_t62_analyst2 prm_t62_scoring
    prm_t62_refitting)

# shellcheck source=test/drivers/common/tap.bash
source "$root/test/drivers/common/tap.bash"

# One value from a query run as ROLE: as ROLE SQL
as() {
    psql -X -q -At -v ON_ERROR_STOP=1 -U "$1" -d "$db" -c "$2"
}

# The SQLSTATE a statement run as ROLE fails with, or "ok": state ROLE SQL
state() {
    local out
    if out=$(psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate \
        -U "$1" -d "$db" -c "$2" 2>&1 >/dev/null); then
        echo ok
    else
        sed -n 's/^.*ERROR: *\([0-9A-Z]\{5\}\).*$/\1/p' <<<"$out" | head -n 1
    fi
}

# Report that ROLE gets SQLSTATE from SQL: expect ROLE SQLSTATE SQL WHAT
expect() {
    local got
    got=$(state "$1" "$3")
    report "$([[ $got == "$2" ]] && echo t || echo f)" "$4 ($got)"
}

# Drop the test database and roles (also before starting)
cleanup() {
    local r
    dropdb --if-exists --force "$db" >/dev/null 2>&1 || true
    for r in "${roles[@]}"; do
        psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" \
            >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT
cleanup

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "
    CREATE ROLE prm_t62_scoring NOLOGIN;
    CREATE ROLE prm_t62_refitting NOLOGIN;
    CREATE ROLE prm_t62_app LOGIN IN ROLE prm_t62_scoring;
    CREATE ROLE prm_t62_analyst LOGIN IN ROLE prm_t62_refitting;
    CREATE ROLE prm_t62_analyst2 LOGIN IN ROLE prm_t62_refitting;"
createdb "$db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
CREATE EXTENSION pluralrm;
CREATE TABLE comparisons AS
SELECT i, (i % 20)::bigint AS user_id,
       ARRAY[sin(i * 1.1), cos(i * 0.7), sin(i * 0.3)] AS chosen,
       ARRAY[cos(i * 1.3), sin(i * 0.5), cos(i * 0.9)] AS rejected
  FROM generate_series(1, 2000) i;
UPDATE comparisons SET chosen = rejected, rejected = chosen
 WHERE (user_id % 2 = 0 AND chosen[1] - rejected[1] < 0)
    OR (user_id % 2 = 1 AND chosen[2] - rejected[2] < 0);
CREATE TABLE secret AS SELECT * FROM comparisons;
GRANT SELECT ON comparisons TO prm_t62_refitting;
SELECT pluralrm.define_model('secret_model', 'btl', 'secret');
CALL pluralrm.refit('secret_model');
SQL
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -v scoring=prm_t62_scoring \
    -v refitting=prm_t62_refitting \
    -f "$root/test/drivers/sql/privileges_grants.sql"
report "$(psql -X -q -At -d "$db" -c "SELECT bool_or(rolsuper) = false
           FROM pg_roles WHERE rolname LIKE 'prm_t62_%'")" \
    "none of the test roles is a superuser"

# the analyst defines and refits a mixture
report "$([[ $(state prm_t62_analyst "SELECT pluralrm.define_model('m',
        'mixture', 'comparisons', user_column => 'user_id',
        params => '{\"k\": 2, \"restarts\": 3}',
        keep_versions => 2)") == ok ]] &&
    echo t || echo f)" "the refitting role defines a recipe"
report "$([[ $(as prm_t62_analyst "CALL pluralrm.refit('m')") == 1 &&
    $(as prm_t62_analyst "CALL pluralrm.refit('m')") == 2 &&
    $(as prm_t62_analyst "CALL pluralrm.refit('m')") == 3 ]] &&
    echo t || echo f)" "the refitting role refits (versions 1, 2, 3)"
report "$(as prm_t62_analyst "SELECT array_agg(version ORDER BY version)
          = '{2,3}' FROM pluralrm.model_versions WHERE name = 'm'")" \
    "its refits pruned to the newest 2 versions"
expect prm_t62_analyst ok "SELECT pluralrm.set_current_version('m', 2)" \
    "the refitting role rolls back to version 2"
expect prm_t62_analyst 42501 "SELECT pluralrm.drop_model('m')" \
    "the refitting role cannot drop a model"
expect prm_t62_analyst 42501 "SELECT pluralrm.define_model('s2', 'btl',
    'secret')" "the refitting role cannot define a recipe on a hidden table"
out=$(psql -X -q -U prm_t62_analyst -d "$db" \
    -c "CALL pluralrm.refit('secret_model')" 2>&1) || true
report "$([[ $out == *"ERROR:  permission denied for table secret"* ]] &&
    echo t || echo f)" \
    "refit reads with the caller's rights: permission denied for table secret"
report "$(as prm_t62_analyst "SELECT version = 1 FROM pluralrm.model_list
          WHERE name = 'secret_model'")" \
    "and secret_model keeps its version"

# the application scores, and can do nothing else
expected=$(psql -X -q -At -d "$db" -c "SELECT pluralrm.reward_score('m', 7,
    ARRAY[0.5, -1, 2.0])")
report "$([[ $(as prm_t62_app "SELECT pluralrm.reward_score('m', 7,
    ARRAY[0.5, -1, 2.0])") == "$expected" ]] && echo t || echo f)" \
    "the scoring role gets the same score as the owner"
report "$(as prm_t62_app "SELECT version = 2 FROM pluralrm.model_list
          WHERE name = 'm'")" "the scoring role reads model_list"
expect prm_t62_app 42501 "CALL pluralrm.refit('m')" \
    "the scoring role cannot refit"
expect prm_t62_app 42501 "SELECT pluralrm.drop_model('m')" \
    "the scoring role cannot drop a model"
expect prm_t62_app 42501 "SELECT pluralrm.set_current_version('m', 3)" \
    "the scoring role cannot change the current version"
expect prm_t62_app 42501 "SELECT pluralrm.save_model('x',
    pluralrm.btl_fit(ARRAY[1.0], ARRAY[0.0]))" \
    "the scoring role cannot save a model"
expect prm_t62_app 42501 "SELECT pluralrm.define_model('x', 'btl',
    'comparisons')" "the scoring role cannot define a recipe"
expect prm_t62_app 42501 "SELECT pluralrm.prune_versions('m', 1)" \
    "the scoring role cannot prune versions"
expect prm_t62_app 42501 "SELECT count(*) FROM pluralrm.model_recipes" \
    "the scoring role cannot read recipes (their queries)"
expect prm_t62_app 42501 "UPDATE pluralrm.model_versions
    SET base_rewards = '{{0,0,0}}'" "the scoring role cannot edit versions"

# a recipe runs only for callers whose privileges its writer holds
expect prm_t62_analyst2 42501 "CALL pluralrm.refit('m')" \
    "another refitting role cannot run the analyst's recipe"
expect postgres 42501 "CALL pluralrm.refit('m')" \
    "a superuser cannot run it either (it would run as superuser)"
report "$([[ $(psql -X -q -At -d "$db" -c "SET ROLE prm_t62_analyst" \
    -c "CALL pluralrm.refit('m')") == 4 ]] && echo t || echo f)" \
    "the superuser refits it as the analyst (version 4)"
expect prm_t62_analyst ok "UPDATE pluralrm.model_recipes
    SET query = 'SELECT * FROM public.comparisons', source = NULL
    WHERE name = 'secret_model'" \
    "the analyst rewrites the superuser's recipe"
report "$(as prm_t62_analyst "SELECT defined_by::text = 'prm_t62_analyst'
          FROM pluralrm.model_recipes WHERE name = 'secret_model'")" \
    "the rewritten recipe is stamped with the analyst"
expect postgres 42501 "CALL pluralrm.refit('secret_model')" \
    "so the superuser no longer runs it"

tap_summary
