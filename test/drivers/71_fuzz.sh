#!/usr/bin/env bash
# Fuzzing of the numerical core: each libFuzzer target of test/fuzz (the
# BTL solver, the mixture EM, factorized rewards and onboarding, item
# strengths, rater consistency) runs for a bounded time from its seeds,
# built with AddressSanitizer and UBSan; a crash, a sanitizer report or a
# failed check of a result fails it.
# Usage: test/drivers/71_fuzz.sh [REPO_ROOT]. PRM_FUZZ_SECONDS sets the time
# per target (default 12). Installs clang and libFuzzer when missing.
# Prints TAP lines and "N passed, N failed". Fuzz longer by hand with
#   make -C test/fuzz run TARGET=fuzz_mixture TIME=3600
set -euo pipefail
exec </dev/null
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
seconds=${PRM_FUZZ_SECONDS:-12}

# The Debian packages this driver needs (test/lib.sh installs what is missing)
# shellcheck source=test/lib.sh
source "$root/test/lib.sh"
prm_install_packages clang-14 libclang-rt-14-dev
work=$(mktemp -d "${TMPDIR:-/tmp}/pluralrm-fuzz.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
fuzz=(make -s -C "$root/test/fuzz" O="$work")

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
            grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|INITED)' "$3" |
                tail -n 40 | sed 's/^/#   /'
        fi
    fi
}

read -r -a targets < <("${fuzz[@]}" list)
if ! "${fuzz[@]}" -j"$(nproc)" all >"$work/build.log" 2>&1; then
    report 0 "fuzz targets build" "$work/build.log"
else
    for t in "${targets[@]}"; do
        log=$work/$t.log
        rc=0
        "${fuzz[@]}" run TARGET="$t" TIME="$seconds" >"$log" 2>&1 || rc=$?
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        if ((rc == 0)); then
            report 1 "$t: ${runs:-?} inputs in $seconds s, no failure"
        else
            crash=$(ls "$work/crash" 2>/dev/null | grep "^$t-" | head -n 1)
            report 0 "$t failed${crash:+ on input $crash}" "$log"
            if [[ -n $crash ]]; then
                echo "# the input, in hex:"
                od -An -tx1 -v "$work/crash/$crash" | tr -d ' \n' |
                    fold -w 72 | sed 's/^/#   /'
                echo
            fi
        fi
    done
fi

echo "1..$n"
echo "$passed passed, $failed failed"
if declare -F prm_report >/dev/null; then prm_report "$passed" "$failed"; fi
((failed == 0))
