# test/lib.sh: shared shell helpers for pluralrm's test and demo scripts.
# Source it from bash (safe under `set -euo pipefail`):
#   source test/lib.sh
# Every function checks its own errors, so it also behaves inside `if`.

# Sourcing twice in one shell keeps the state of the first time.
[[ -n ${_PRM_LIB_LOADED:-} ]] && return 0
_PRM_LIB_LOADED=1

PRM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# PRM_PG_BIN may point at a relocated copy of PostgreSQL 15 (a developer
# who must not touch the system install); CI uses Debian's.
PRM_PG_BIN=${PRM_PG_BIN:-/usr/lib/postgresql/15/bin}
PRM_PG_CONFIG=$PRM_PG_BIN/pg_config
export PRM_ROOT PRM_PG_BIN PRM_PG_CONFIG
# Use PostgreSQL 15's binaries, not Debian's version-picking wrappers.
case ":$PATH:" in
    *":$PRM_PG_BIN:"*) ;;
    *) export PATH="$PRM_PG_BIN:$PATH" ;;
esac

_PRM_CLEANUP=()       # commands to run at exit, newest first
_PRM_TRAPS_SET=       # non-empty once our traps are installed
declare -gA _PRM_PREV_TRAP=() # traps found before ours, chained
_PRM_RESULTS=()       # one "STATUS|NAME|PASSED|FAILED|SECONDS" per stage
PRM_RUN_DIR=          # scratch folder of this run (stage reports, logs)
PRM_LAST_RC=0         # exit status of the last prm_stage command

# Print a message on stderr, prefixed with "prm:".
prm_msg() { printf 'prm: %s\n' "$*" >&2; }

# Print a section header.
prm_header() { printf '\n==== %s ====\n' "$*"; }

# Run a command as root: directly, through sudo, or fail clearly.
_prm_sudo() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        prm_msg "need root or sudo to run: $*"
        return 1
    fi
}

# Run the queued cleanup commands once, then any trap found before ours.
_prm_on_signal() {
    local rc=$? sig=$1 i
    for ((i = ${#_PRM_CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${_PRM_CLEANUP[i]}" || true
    done
    _PRM_CLEANUP=()
    if [[ -n ${_PRM_PREV_TRAP[$sig]:-} ]]; then
        eval "${_PRM_PREV_TRAP[$sig]}" || true
    fi
    case $sig in
        INT) exit 130 ;;
        TERM) exit 143 ;;
        *) exit "$rc" ;;
    esac
}

# Queue a command (a string, eval'ed) to run on EXIT, INT or TERM.
prm_on_exit() {
    local sig t
    _PRM_CLEANUP+=("$1")
    [[ -z $_PRM_TRAPS_SET ]] || return 0
    _PRM_TRAPS_SET=1
    for sig in EXIT INT TERM; do
        t=$(trap -p "$sig")  # trap -- 'command' SIG
        if [[ -n $t ]]; then
            eval "set -- $t"
            _PRM_PREV_TRAP[$sig]=$3
        fi
        # shellcheck disable=SC2064  # $sig is meant to expand now
        trap "_prm_on_signal $sig" "$sig"
    done
}

# Scratch folder for this run, removed at exit.
_prm_run_dir() {
    if [[ -z $PRM_RUN_DIR || ! -d $PRM_RUN_DIR ]]; then
        PRM_RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pluralrm-run.XXXXXX") ||
            return 1
        prm_on_exit "rm -rf -- '$PRM_RUN_DIR'"
    fi
}

# Install the missing Debian packages (argument "bench": benchmark ones too).
prm_install_deps() {
    local pkgs=(make gcc postgresql-15 postgresql-server-dev-15
        libopenblas-dev postgresql-15-pgtap postgresql-15-cron
        libtap-parser-sourcehandler-pgtap-perl valgrind)
    if [[ ${1:-} == bench ]]; then
        pkgs+=(python3-sklearn python3-psycopg2 python3-numpy r-base-core
            r-cran-flexmix r-cran-bradleyterry2)
    fi
    prm_install_packages "${pkgs[@]}"
}

# Install those of the named Debian packages that are missing (as root or
# through sudo); the drivers call it for what only they need.
prm_install_packages() {
    local missing=() p st log rc=0
    for p in "$@"; do
        st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) ||
            st=
        [[ $st == ii* ]] || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    if [[ $EUID -ne 0 ]] && ! command -v sudo >/dev/null 2>&1; then
        prm_msg "missing packages (${missing[*]}): need root or sudo"
        return 1
    fi
    prm_msg "installing ${missing[*]}"
    log=$(mktemp) || return 1
    _prm_apt() {
        _prm_sudo env DEBIAN_FRONTEND=noninteractive apt-get "$@" \
            </dev/null >>"$log" 2>&1
    }
    local opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=300
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    if ! _prm_apt install "${opts[@]}" "${missing[@]}"; then
        _prm_apt update -q &&
            _prm_apt install "${opts[@]}" "${missing[@]}" || rc=$?
    fi
    if ((rc)); then
        prm_msg "package installation failed; apt-get output:"
        tail -n 50 "$log" >&2
    fi
    rm -f -- "$log"
    unset -f _prm_apt
    return "$rc"
}

# Build the extension and install it into PostgreSQL 15 (quiet if it works).
prm_build_install() {
    local log rc=0
    log=$(mktemp) || return 1
    (
        cd "$PRM_ROOT" &&
            make -j"$(nproc)" PG_CONFIG="$PRM_PG_CONFIG" &&
            _prm_sudo make install PG_CONFIG="$PRM_PG_CONFIG"
    ) </dev/null >"$log" 2>&1 || rc=$?
    if ((rc)); then
        prm_msg "build or install failed; log:"
        cat -- "$log" >&2
    fi
    rm -f -- "$log"
    return "$rc"
}

# Run a command as the cluster owner (postgres when we are root).
_prm_as_owner() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u "$PRM_CLUSTER_OWNER" -- "$@")
    else
        "$@"
    fi
}

# Start a throwaway socket-only cluster with pg_cron; stopped at exit.
prm_cluster_start() {
    if [[ -n ${PRM_CLUSTER_DIR:-} ]]; then
        prm_msg "a cluster is already running in $PRM_CLUSTER_DIR"
        return 1
    fi
    _prm_cluster_start || { prm_cluster_stop; return 1; }
}

# The work of prm_cluster_start; the caller cleans up if it fails.
_prm_cluster_start() {
    local dir data port
    dir=$(mktemp -d "${TMPDIR:-/tmp}/pluralrm.XXXXXX") || return 1
    data=$dir/data
    port=$((5400 + $$ % 500))
    PRM_CLUSTER_DIR=$dir
    PRM_CLUSTER_LOG=$dir/server.log
    if [[ $EUID -eq 0 ]]; then
        PRM_CLUSTER_OWNER=postgres
    else
        PRM_CLUSTER_OWNER=$(id -un)
    fi
    export PRM_CLUSTER_DIR PRM_CLUSTER_LOG PRM_CLUSTER_OWNER
    prm_on_exit prm_cluster_stop
    if [[ $EUID -eq 0 ]]; then
        chown postgres: "$dir" || return 1
    fi

    # Initialise; create the cron database before pg_cron is preloaded so
    # its launcher finds it at once (single-user mode, no socket needed).
    if ! _prm_as_owner "$PRM_PG_BIN/initdb" --no-sync -U postgres -A trust \
        -E UTF8 --locale=C -D "$data" >"$dir/initdb.log" 2>&1 ||
        ! _prm_as_owner "$PRM_PG_BIN/postgres" --single -D "$data" \
            -c fsync=off postgres <<<'CREATE DATABASE pluralrm_cron;' \
            >>"$dir/initdb.log" 2>&1; then
        prm_msg "initdb failed:"
        cat -- "$dir/initdb.log" >&2
        return 1
    fi
    cat >>"$data/postgresql.conf" <<EOF || return 1

# pluralrm test cluster (test/lib.sh)
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
fsync = off
synchronous_commit = off
full_page_writes = off
shared_preload_libraries = 'pg_cron'
cron.database_name = 'pluralrm_cron'
cron.use_background_workers = on
max_worker_processes = 32
max_parallel_workers = 8
max_parallel_workers_per_gather = 2
shared_buffers = '1GB'
work_mem = '64MB'
maintenance_work_mem = '512MB'
max_wal_size = '4GB'
log_min_messages = warning
EOF
    if ! _prm_as_owner env OPENBLAS_NUM_THREADS=1 "$PRM_PG_BIN/pg_ctl" \
        -D "$data" -w -t 60 -l "$PRM_CLUSTER_LOG" start >/dev/null; then
        prm_msg "server failed to start; log:"
        cat -- "$PRM_CLUSTER_LOG" >&2 || true
        return 1
    fi

    unset PGHOSTADDR PGSERVICE
    export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
    prm_psql -d pluralrm_cron -c 'CREATE EXTENSION pg_cron' || return 1
}

# Stop the throwaway cluster and remove its folder (safe to call twice).
prm_cluster_stop() {
    local dir=${PRM_CLUSTER_DIR:-}
    [[ -n $dir ]] || return 0
    if [[ -f $dir/data/postmaster.pid ]]; then
        _prm_as_owner "$PRM_PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 \
            stop >/dev/null 2>&1 ||
            _prm_as_owner "$PRM_PG_BIN/pg_ctl" -D "$dir/data" -m immediate \
                -w stop >/dev/null 2>&1 ||
            prm_msg "could not stop the server in $dir"
    fi
    rm -rf -- "$dir"
    unset PRM_CLUSTER_DIR PRM_CLUSTER_LOG PRM_CLUSTER_OWNER
    unset PGHOST PGPORT PGUSER PGDATABASE
}

# psql against the throwaway cluster, stopping at the first error.
prm_psql() { psql -X -v ON_ERROR_STOP=1 -q -P pager=off "$@"; }

# From inside a stage: report individual test counts (PASSED FAILED).
prm_report() {
    [[ -n ${PRM_STAGE_REPORT:-} ]] || return 0
    printf '%d %d\n' "$1" "$2" >>"$PRM_STAGE_REPORT"
}

# From inside a stage: report the TAP results ("ok"/"not ok") in FILE.
prm_report_tap() {
    local ok bad
    ok=$(grep -cE '^ok\b' -- "$1") || true
    bad=$(grep -E '^not ok\b' -- "$1" | grep -cv '# *TODO') || true
    ((ok + bad == 0)) || prm_report "$ok" "$bad"
}

# Record a stage result: NAME RC SECONDS [REPORTFILE].
_prm_record() {
    local name=$1 rc=$2 secs=$3 report=${4:-} p=0 f=0 a b
    if [[ -n $report && -s $report ]]; then
        while read -r a b; do
            p=$((p + a)) f=$((f + b))
        done <"$report"
        ((rc == 0 || f > 0)) || f=1  # failed without saying which test
    elif ((rc == 0)); then
        p=1
    else
        f=1
    fi
    _PRM_RESULTS+=("$( ((f)) && echo FAIL || echo PASS)|$name|$p|$f|$secs")
}

# Run a test stage: prm_stage NAME CMD... (records the result, never aborts).
prm_stage() {
    local name=$1 report rc errexit='' start=$SECONDS
    shift
    prm_header "$name"
    _prm_run_dir || return 0
    report=$(mktemp "$PRM_RUN_DIR/report.XXXXXX") || return 0
    [[ $- == *e* ]] && errexit=1
    set +e
    # A subshell not in a condition, so `set -e` works inside CMD.
    (
        set -e
        export PRM_STAGE_REPORT=$report
        "$@"
    )
    rc=$?
    [[ -z $errexit ]] || set -e
    # shellcheck disable=SC2034  # read by the scripts that source this
    PRM_LAST_RC=$rc
    _prm_record "$name" "$rc" $((SECONDS - start)) "$report"
    rm -f -- "$report"
    return 0
}

# Record a stage that could not run as failed: prm_stage_skip NAME REASON.
prm_stage_skip() {
    prm_header "$1"
    printf 'not run: %s\n' "$2"
    _prm_record "$1" 1 0
}

# Print each stage's result and "N passed, N failed"; fail if any failed.
prm_summary() {
    local r st name p f secs tp=0 tf=0
    prm_header summary
    for r in "${_PRM_RESULTS[@]}"; do
        IFS='|' read -r st name p f secs <<<"$r"
        printf '%-4s  %-36s %4d passed %4d failed %5ss\n' \
            "$st" "$name" "$p" "$f" "$secs"
        tp=$((tp + p)) tf=$((tf + f))
    done
    printf '%d passed, %d failed\n' "$tp" "$tf"
    ((tf == 0))
}

# Make the client helpers usable from test/drivers/*.sh run as commands.
export -f prm_msg prm_header prm_psql prm_report prm_report_tap
