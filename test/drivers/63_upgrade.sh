#!/usr/bin/env bash
# Upgrades: a database that installed every earlier release of pluralrm
# and saved models with it reaches the current version through ALTER
# EXTENSION UPDATE, then matches a fresh install object for object
# (test/drivers/sql/catalog.sql), serves its old models with the same
# scores, refits them, and survives pg_dump and restore.
# Usage: test/drivers/63_upgrade.sh REPO_ROOT, with the PG* variables of a
# running throwaway cluster exported. Prints TAP lines and "N passed,
# N failed".
set -euo pipefail
root=${1:?usage: $0 REPO_ROOT}
old_db=pluralrm_upgrade_old new_db=pluralrm_upgrade_new
dump_db=pluralrm_upgrade_dump
work=$(mktemp -d "${TMPDIR:-/tmp}/pluralrm-upgrade.XXXXXX")
cleanup() {
    local d
    for d in "$old_db" "$new_db" "$dump_db"; do
        dropdb --if-exists --force "$d" >/dev/null 2>&1 || true
    done
}
trap 'cleanup; rm -rf -- "$work"' EXIT
# shellcheck source=test/drivers/common/tap.bash
source "$root/test/drivers/common/tap.bash"

# One value from a query: q DB SQL
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

current=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" \
    "$root/pluralrm.control")
# The releases before the current one: the frozen install scripts in sql/
mapfile -t releases < <(cd "$root/sql" && ls pluralrm--*.sql |
    sed -n 's/^pluralrm--\([0-9.]*\)\.sql$/\1/p' |
    grep -vx "$current" | sort -V)
echo "# current version $current; earlier releases: ${releases[*]:-none}"
report "$(((${#releases[@]} > 0)) && echo t || echo f)" \
    "at least one earlier release ships its frozen install script"

# Models saved by the old version, scored before and after the update
setup_models="
CREATE TABLE cmp AS
SELECT user_id, chosen, rejected
  FROM pluralrm.synthetic_comparisons(users => 60,
           comparisons_per_user => 30, d => 4,
           group_shares => '{0.5,0.5}', seed => 7);
CREATE TABLE probes AS
SELECT p AS id, (p % 70)::bigint AS user_id,
       ARRAY[cos(p), sin(p * 2.0), cos(p * 3.0), sin(p * 0.5)] AS x
  FROM generate_series(1, 40) p;
SELECT pluralrm.define_model('b', 'btl', 'cmp');
SELECT pluralrm.define_model('m', 'mixture', 'cmp', user_column => 'user_id',
                             params => '{\"k\": 2}');
SELECT pluralrm.define_model('f', 'factor', 'cmp', user_column => 'user_id',
                             params => '{\"k\": 2}');
CALL pluralrm.refit('b');
CALL pluralrm.refit('m');
CALL pluralrm.refit('f');"
scores="
SELECT string_agg(name || ':' || s::text, ' ' ORDER BY name, id)
  FROM (VALUES ('b'), ('m'), ('f')) n(name),
       LATERAL (SELECT p.id, pluralrm.reward_score(n.name, p.user_id, p.x) s
                  FROM probes p) t"
close_scores() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        n = split(a, x, " "); m = split(b, y, " ");
        if (n != m || n == 0) { print "f"; exit }
        for (i = 1; i <= n; i++) {
            split(x[i], u, ":"); split(y[i], v, ":");
            if (u[1] != v[1]) { print "f"; exit }
            d = u[2] - v[2]; if (d < 0) d = -d
            if (d > 1e-12 * (1 + (u[2] < 0 ? -u[2] : u[2]))) { print "f"; exit }
        }
        print "t" }'
}

cleanup
createdb "$new_db"
q "$new_db" "CREATE EXTENSION pluralrm" >/dev/null
psql -X -q -At -v ON_ERROR_STOP=1 -d "$new_db" \
    -f "$root/test/drivers/sql/catalog.sql" >"$work/fresh.txt"

for old in "${releases[@]}"; do
    dropdb --if-exists --force "$old_db" >/dev/null 2>&1 || true
    createdb "$old_db"
    q "$old_db" "CREATE EXTENSION pluralrm VERSION '$old'" >/dev/null
    report "$([[ $(q "$old_db" "SELECT extversion FROM pg_extension
                                  WHERE extname = 'pluralrm'") == "$old" ]] &&
        echo t || echo f)" "$old installs from its frozen script"
    q "$old_db" "$setup_models" >/dev/null
    before=$(q "$old_db" "$scores")

    out=$(q "$old_db" "ALTER EXTENSION pluralrm UPDATE" 2>&1) || true
    report "$([[ $(q "$old_db" "SELECT extversion FROM pg_extension
                                  WHERE extname = 'pluralrm'") == \
        "$current" ]] && echo t || echo f)" \
        "ALTER EXTENSION UPDATE goes from $old to $current ${out:+($out)}"
    psql -X -q -At -v ON_ERROR_STOP=1 -d "$old_db" \
        -f "$root/test/drivers/sql/catalog.sql" >"$work/upgraded.txt"
    if diff -u "$work/fresh.txt" "$work/upgraded.txt" >"$work/diff.txt"; then
        report t "after the update from $old every object matches a fresh install ($(wc -l <"$work/fresh.txt") properties)"
    else
        report f "after the update from $old every object matches a fresh install"
        echo "# fresh (-) against upgraded (+), first 40 lines:"
        head -n 40 "$work/diff.txt" | sed 's/^/#   /'
    fi
    after=$(q "$old_db" "$scores")
    report "$(close_scores "$before" "$after")" \
        "models saved by $old score the same after the update (1e-12)"
    report "$([[ $(q "$old_db" "CALL pluralrm.refit('m')") == 2 ]] &&
        [[ $(q "$old_db" "CALL pluralrm.refit('f')") == 2 ]] &&
        echo t || echo f)" "models saved by $old refit after the update"

    # pg_dump keeps every table the extension registered, restores cleanly
    dropdb --if-exists --force "$dump_db" >/dev/null 2>&1 || true
    createdb "$dump_db"
    if pg_dump -d "$old_db" >"$work/dump.sql" 2>"$work/dump.err" &&
        psql -X -q -v ON_ERROR_STOP=1 -d "$dump_db" -f "$work/dump.sql" \
            >/dev/null 2>>"$work/dump.err"; then
        report "$(close_scores "$(q "$old_db" "$scores")" \
            "$(q "$dump_db" "$scores")")" \
            "a dump of the upgraded database restores with the same scores"
    else
        report f "a dump of the upgraded database restores with the same scores"
        sed 's/^/#   /' "$work/dump.err" | head -n 20
    fi
done

tap_summary
