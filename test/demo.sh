#!/usr/bin/env bash
# THE demo command: bash test/demo.sh
# Builds and installs pluralrm, starts a throwaway cluster, runs
# test/demo.sql in database pluralrm_demo; the cluster is removed at exit.
# PRM_SKIP_DEPS=1 skips the dependency check.
# shellcheck disable=SC2119  # prm_install_deps takes no argument here
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source test/lib.sh

if [[ ! -f test/demo.sql ]]; then
    prm_msg "test/demo.sql is missing: nothing to demonstrate"
    exit 1
fi
[[ ${PRM_SKIP_DEPS:-} == 1 ]] || prm_install_deps
prm_build_install
prm_cluster_start
createdb pluralrm_demo
psql -X -v ON_ERROR_STOP=1 -P pager=off -d pluralrm_demo -f test/demo.sql
