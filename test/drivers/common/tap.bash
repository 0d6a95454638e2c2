# TAP helpers shared by test/drivers/*.sh: source this file.
# report t|f DESCRIPTION prints one TAP line; tap_summary prints the plan
# and "N passed, N failed" and returns 1 if any failed.
n=0 passed=0 failed=0

report() {
    n=$((n + 1))
    if [[ $1 == t ]]; then
        echo "ok $n - $2"
        passed=$((passed + 1))
    else
        echo "not ok $n - $2"
        failed=$((failed + 1))
    fi
}

tap_summary() {
    echo "1..$n"
    echo "$passed passed, $failed failed"
    if declare -F prm_report >/dev/null; then
        prm_report "$passed" "$failed"
    fi
    ((failed == 0))
}
