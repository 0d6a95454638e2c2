#!/usr/bin/env bash
# Memory checks of the numerical core: its unit tests (test/core) run under
# valgrind's memcheck, where any invalid access, use of an uninitialised
# value or definite leak fails, and built with AddressSanitizer and UBSan
# (clang), where any report fails. The two run side by side.
# Usage: test/drivers/70_memcheck.sh [REPO_ROOT]. Installs valgrind, clang
# and its sanitizer runtimes when missing. Prints TAP lines and "N passed,
# N failed". Takes several minutes: valgrind slows the core about 50 times.
set -euo pipefail
exec </dev/null
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

# The Debian packages this driver needs (test/lib.sh installs what is missing)
# shellcheck source=test/lib.sh
source "$root/test/lib.sh"
prm_install_packages valgrind clang-14 libclang-rt-14-dev
work=$(mktemp -d "${TMPDIR:-/tmp}/pluralrm-memcheck.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

passed=0 failed=0 n=0
# Print one TAP line and count it: report OK DESCRIPTION [LOG]
report() {
    n=$((n + 1))
    if (($1)); then
        echo "ok $n - $2"
        passed=$((passed + 1))
    else
        echo "not ok $n - $2"
        failed=$((failed + 1))
        if [[ -n ${3:-} && -f $3 ]]; then
            echo "# last lines of $(basename "$3"):"
            tail -n 40 "$3" | sed 's/^/#   /'
        fi
    fi
}

# Unit checks that passed in a log: "N passed, M failed"
checks() { sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 passed, \2 failed/p' "$1" | tail -n 1; }

start=$SECONDS
make -s -C "$root/test/core" valgrind O="$work" >"$work/valgrind.log" 2>&1 &
vg_pid=$!
make -s -C "$root/test/core" asan O="$work" >"$work/asan.log" 2>&1 &
asan_pid=$!

asan_rc=0
wait "$asan_pid" || asan_rc=$?
asan_secs=$((SECONDS - start))
vg_rc=0
wait "$vg_pid" || vg_rc=$?
vg_secs=$((SECONDS - start))

# valgrind exits 3 on a memory error, 1 when a unit check failed
if ((vg_rc == 3)) || grep -q '^==[0-9]*== ' "$work/valgrind.log"; then
    report 0 "valgrind: memory errors in the core unit tests" \
        "$work/valgrind.log"
else
    report $((vg_rc == 0)) "valgrind: no memory error or definite leak;\
 unit checks $(checks "$work/valgrind.log") (${vg_secs} s)" \
        "$work/valgrind.log"
fi
if grep -qE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' \
    "$work/asan.log"; then
    report 0 "ASan and UBSan: reports in the core unit tests" \
        "$work/asan.log"
else
    report $((asan_rc == 0)) "ASan and UBSan: no report; unit checks\
 $(checks "$work/asan.log") (${asan_secs} s)" "$work/asan.log"
fi

echo "1..$n"
echo "$passed passed, $failed failed"
if declare -F prm_report >/dev/null; then prm_report "$passed" "$failed"; fi
((failed == 0))
