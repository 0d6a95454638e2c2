"""Benchmark of pluralrm's linear BTL fit (run by test/bench/btl.sh).

Needs the tables of test/bench/btl/setup.sql in the database that libpq's
environment (PGHOST, PGPORT, PGUSER) and --dbname point to. Run it with
Debian's /usr/bin/python3, which has scikit-learn, numpy and psycopg2.

For each of the float8[] and real[] tables it times, in one session with
serial plans (max_parallel_workers_per_gather = 0):
  - the floor: a bare scan reading both arrays of every row;
  - btl_fit end to end, and its solve_ms (the solver after the rows are
    collected); btl_fit with 2 parallel workers;
  - sum(reward_score(...)) over all rows and its floor, a bare scan of the
    chosen column;
and in Python:
  - scikit-learn's LogisticRegression (lbfgs, no intercept, C = 1 / l2) on
    the same difference vectors already in memory: stopped at pluralrm's
    gradient test ("converged"), and as a user gets it with tol = 1e-10
    ("as shipped"), where scipy's default test on the decrease of the
    objective stops it first;
  - the export path: rows fetched with psycopg2 into numpy (binary COPY, and
    a server-side cursor), then the same scikit-learn fit.
The serial queries run in rounds (floor, fit, floor, score; a warm-up round
first, then --runs rounds) so that each sees the same conditions; parallel
fits run --fit-runs times, and so do scikit-learn's, each just after a
btl_fit run whose solve_ms it is compared with; the export paths run once.
Ratios use the best run of each, the least disturbed by other work on the
machine.

Prints the measurements, the ratios and whether each target is met. Exits 0
whether targets are met or not; exits 1 when a result is wrong (the fit does
not converge, coefficients differ from scikit-learn's by more than 1e-4,
parallel and serial fits differ by more than 1e-9, scores disagree).
"""
import os

# Serial against serial: one BLAS thread here, as in the server.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import contextlib
import io
import platform
import statistics
import subprocess
import sys
import time
import types
import warnings

import numpy as np
import psycopg2
import scipy
import scipy.optimize
import scipy.special
import sklearn
import sklearn.linear_model._logistic as sklearn_logistic
from sklearn.linear_model import LogisticRegression

MODEL = "bench"
L2 = 1.0  # btl_fit's default L2 strength

FLOOR_BOTH = "SELECT sum(cardinality(chosen) + cardinality(rejected)) FROM {t}"
FIT = ("SELECT (m).n, (m).iterations, (m).converged, (m).accuracy, "
       "(m).solve_ms, (m).method, (m).weights "
       "FROM (SELECT pluralrm.btl_fit(chosen, rejected) AS m FROM {t}) AS s")
FLOOR_CHOSEN = "SELECT sum(cardinality(chosen)) FROM {t}"
SCORE = ("SELECT sum(pluralrm.reward_score('" + MODEL + "', 0, chosen)) "
         "FROM {t}")
SAVE = ("SELECT pluralrm.save_model('" + MODEL + "', "
        "pluralrm.btl_fit(chosen, rejected)) FROM {t}")

# Tolerances of the correctness checks (errors, not targets)
COEF_TOL = 1e-4      # pluralrm vs converged scikit-learn, per coefficient
SAME_TOL = 1e-9      # parallel vs serial, real[] vs float8[], scores

# Targets of the issue: (key, label, bound, True when lower is better)
TARGETS = [
    ("fit_floor", "btl_fit / floor (scan of both arrays)", 1.5, True),
    ("solve_sklearn", "solve_ms / scikit-learn fit (converged)", 1.0, True),
    ("coef_diff", "coefficients: max relative difference", COEF_TOL, True),
    ("export_copy", "export path (binary COPY) / btl_fit", 50.0, False),
    ("export_cursor", "export path (cursor) / btl_fit", 50.0, False),
    ("score_floor", "sum(reward_score) / floor (scan of chosen)", 1.3, True),
]


class BenchError(Exception):
    """A result that is wrong, not merely slow."""


def fail(message):
    """Stop the benchmark with a correctness error."""
    raise BenchError(message)


def max_rel_diff(a, b):
    """Largest |a_j - b_j| / |b_j| over the coefficients."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def run_query(cur, sql):
    """Run sql and fetch its one row: (seconds, row)."""
    t0 = time.perf_counter()
    cur.execute(sql)
    row = cur.fetchone()
    return time.perf_counter() - t0, row


def fit_facts(row):
    """The facts of a btl_fit row."""
    n, iterations, converged, accuracy, solve_ms, method, weights = row
    return {"n": n, "iterations": iterations, "converged": converged,
            "accuracy": accuracy, "method": method,
            "weights": np.array(weights, dtype=np.float64)}


def timed_rounds(cur, queries, runs):
    """Run every query once per round: a warm-up round, then runs rounds.

    Interleaving the queries exposes each to the same conditions, so other
    work on the machine disturbs the ratios less. Returns the seconds of
    each query, the solve_ms of each fit in seconds, and each last row.
    """
    seconds = {k: [] for k in queries}
    solve = []
    rows = {}
    for i in range(runs + 1):
        for key, sql in queries.items():
            t, rows[key] = run_query(cur, sql)
            if i > 0:
                seconds[key].append(t)
                if key == "fit":
                    solve.append(rows[key][4] / 1000.0)
    return seconds, solve, rows


def read_binary_copy(conn, table, d, elem):
    """Fetch chosen and rejected with binary COPY and parse them in numpy."""
    size = np.dtype(elem).itemsize
    array = [("len", ">i4"), ("ndim", ">i4"), ("hasnull", ">i4"),
             ("elemtype", ">u4"), ("dim", ">i4"), ("lbound", ">i4"),
             ("el", [("len", ">i4"), ("v", elem)], (d,))]
    record = np.dtype([("fields", ">i2"), ("chosen", array),
                       ("rejected", array)])
    buf = io.BytesIO()
    with conn.cursor() as cur:
        cur.copy_expert("COPY (SELECT chosen, rejected FROM %s) TO STDOUT "
                        "(FORMAT binary)" % table, buf)
    raw = buf.getbuffer()

    # 19-byte header, fixed-size records (no NULLs), a 2-byte trailer
    if bytes(raw[:11]) != b"PGCOPY\n\xff\r\n\x00" or \
            bytes(raw[15:19]) != b"\x00\x00\x00\x00" or \
            (len(raw) - 21) % record.itemsize != 0:
        fail("unexpected binary COPY layout from %s" % table)
    n = (len(raw) - 21) // record.itemsize
    rec = np.frombuffer(raw, dtype=record, count=n, offset=19)
    for side in ("chosen", "rejected"):
        a = rec[side]
        if not ((rec["fields"] == 2).all() and (a["ndim"] == 1).all() and
                (a["hasnull"] == 0).all() and (a["dim"] == d).all() and
                (a["len"] == 20 + d * (4 + size)).all() and
                (a["el"]["len"] == size).all()):
            fail("unexpected array layout in the binary COPY of %s" % table)
    chosen = a_float64(rec["chosen"]["el"]["v"])
    rejected = a_float64(rec["rejected"]["el"]["v"])
    return chosen, rejected


def a_float64(values):
    """A C-ordered float64 copy of an array view."""
    return np.ascontiguousarray(values, dtype=np.float64)


def read_cursor(conn, table, elem):
    """Fetch chosen and rejected through a server-side cursor, as lists."""
    chosen, rejected = [], []
    with conn.cursor(name="btl_bench_export") as cur:
        cur.itersize = 10000
        cur.execute("SELECT chosen, rejected FROM %s" % table)
        for c, r in cur:
            chosen.append(c)
            rejected.append(r)
    conn.rollback()
    # real[] values come back as decimal text: float32 restores them exactly
    native = np.float32 if elem == ">f4" else np.float64
    z = (np.array(chosen, dtype=native).astype(np.float64) -
         np.array(rejected, dtype=native).astype(np.float64))
    return z


def sklearn_problem(z):
    """X and y with the BTL likelihood: z labelled 1, -z labelled 0."""
    x = z.copy()
    x[1::2] *= -1.0
    y = np.ones(len(z))
    y[1::2] = 0.0
    return x, y


@contextlib.contextmanager
def lbfgs_options(extra, log):
    """Inside LogisticRegression.fit, add extra to scipy's L-BFGS-B options
    and log each scipy result (scikit-learn 1.2 lets no ftol through)."""
    minimize = scipy.optimize.minimize

    def wrapped(*args, **kwargs):
        kwargs["options"] = dict(kwargs.get("options") or {}, **extra)
        res = minimize(*args, **kwargs)
        log.append(res)
        return res

    saved = sklearn_logistic.optimize
    sklearn_logistic.optimize = types.SimpleNamespace(minimize=wrapped)
    try:
        yield
    finally:
        sklearn_logistic.optimize = saved


def sklearn_fit(x, y, tol, extra):
    """Fit LogisticRegression (lbfgs, no intercept, C = 1 / l2)."""
    log = []
    clf = LogisticRegression(C=1.0 / L2, fit_intercept=False,
                             solver="lbfgs", tol=tol, max_iter=1000)
    with lbfgs_options(extra, log), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        clf.fit(x, y)
        seconds = time.perf_counter() - t0
    if len(log) != 1:
        fail("could not observe scikit-learn's call of scipy's L-BFGS-B")
    return {"seconds": seconds, "weights": clf.coef_.ravel().copy(),
            "n_iter": int(clf.n_iter_[0]), "stop": str(log[0].message)}


def gradient_scale(z):
    """max(1, ||grad f(0)||), the scale of pluralrm's stopping test."""
    return max(1.0, float(np.linalg.norm(-0.5 * z.sum(axis=0))))


def relative_gradient(z, w):
    """||grad f(w)|| / max(1, ||grad f(0)||), pluralrm's stopping measure."""
    g = z.T @ -scipy.special.expit(-(z @ w)) + L2 * w
    return float(np.linalg.norm(g)) / gradient_scale(z)


def setting(cur, name):
    """Current value of a server setting."""
    cur.execute("SELECT current_setting(%s)", (name,))
    return cur.fetchone()[0]


def machine():
    """CPU model and core count."""
    model = platform.processor() or "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True,
                                   text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return "%s, %d cores" % (model, os.cpu_count())


def bench_sql(cur, table, runs, par_runs, save_model):
    """The SQL measurements of one table."""
    r = {}
    if save_model:
        cur.execute(SAVE.format(t=table))
    cur.execute("SELECT pluralrm.model_weights(%s)", (MODEL,))
    r["model_weights"] = np.array(cur.fetchone()[0][0], dtype=np.float64)

    queries = {"floor": FLOOR_BOTH, "fit": FIT, "floor_chosen": FLOOR_CHOSEN,
               "score": SCORE}
    seconds, solve, rows = timed_rounds(
        cur, {k: q.format(t=table) for k, q in queries.items()}, runs)
    r.update(seconds)
    r["fit"] = fit_facts(rows["fit"])
    r["fit"]["seconds"] = seconds["fit"]
    r["fit"]["solve"] = solve
    r["score_sum"] = rows["score"][0]
    fit = r["fit"]
    print("  btl_fit: %d rows, %s, %d iterations, converged %s, "
          "accuracy %.4f" % (fit["n"], fit["method"], fit["iterations"],
                             fit["converged"], fit["accuracy"]), flush=True)
    if not fit["converged"]:
        fail("btl_fit did not converge on %s" % table)

    # two parallel workers; the warm-up run shows that they started
    cur.execute("SET max_parallel_workers_per_gather = 2; "
                "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0")
    cur.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " +
                FIT.format(t=table))
    plan = "\n".join(row[0] for row in cur.fetchall())
    if "Partial Aggregate" not in plan or "Workers Launched: 2" not in plan:
        fail("no parallel plan with 2 workers for btl_fit:\n" + plan)
    par = [run_query(cur, FIT.format(t=table)) for _ in range(par_runs)]
    r["parallel"] = fit_facts(par[-1][1])
    r["parallel"]["seconds"] = [t for t, _ in par]
    cur.execute("SET max_parallel_workers_per_gather = 0; "
                "RESET parallel_setup_cost; RESET parallel_tuple_cost")
    r["parallel_diff"] = max_rel_diff(r["parallel"]["weights"],
                                      fit["weights"])

    cur.execute("SELECT pg_size_pretty(pg_table_size(%s))", (table,))
    r["size"] = cur.fetchone()[0]
    r["tolerance"] = float(setting(cur, "pluralrm.tolerance"))
    return r


def bench_python(cur, conn, table, d, elem, r, fit_runs):
    """The scikit-learn and export measurements of one table."""
    t0 = time.perf_counter()
    chosen, rejected = read_binary_copy(conn, table, d, elem)
    z = chosen - rejected
    r["copy_read"] = time.perf_counter() - t0

    # independent checks of the fit and of the scores
    r["score_numpy"] = float((chosen @ r["model_weights"]).sum())
    del chosen, rejected
    r["prm_relgrad"] = relative_gradient(z, r["fit"]["weights"])

    # converged: stop at pluralrm's gradient test (scikit-learn's tol bounds
    # the largest gradient component of the same summed objective), with
    # scipy's test on the decrease of f turned off
    # each scikit-learn fit is paired with a btl_fit run just before it, so
    # that both solvers meet the same load on the machine
    x, y = sklearn_problem(z)
    tol = r["tolerance"] * gradient_scale(z)
    fits, r["paired_solve"] = [], []
    for _ in range(fit_runs):
        r["paired_solve"].append(run_query(cur, FIT.format(t=table))[1][4] /
                                 1000.0)
        fits.append(sklearn_fit(x, y, tol, {"ftol": 0.0}))
    r["sk"] = fits[-1]
    r["sk"]["seconds_all"] = [f["seconds"] for f in fits]
    r["sk"]["relgrad"] = relative_gradient(z, r["sk"]["weights"])
    r["sk"]["tol"] = tol
    r["sk_default"] = sklearn_fit(x, y, 1e-10, {})
    r["sk_default"]["relgrad"] = relative_gradient(
        z, r["sk_default"]["weights"])
    del x, y, z

    t0 = time.perf_counter()
    read_cursor(conn, table, elem)
    r["cursor_read"] = time.perf_counter() - t0


def ratios(r):
    """Ratios of best times for the targets."""
    best = {k: min(r[k]) for k in ("floor", "floor_chosen", "score")}
    fit = min(r["fit"]["seconds"])
    sk = min(r["sk"]["seconds_all"])
    return {
        "fit_floor": fit / best["floor"],
        "solve_sklearn": min(r["paired_solve"]) / sk,
        "coef_diff": max_rel_diff(r["fit"]["weights"], r["sk"]["weights"]),
        "export_copy": (r["copy_read"] + sk) / fit,
        "export_cursor": (r["cursor_read"] + sk) / fit,
        "score_floor": best["score"] / best["floor_chosen"],
        "parallel_serial": min(r["parallel"]["seconds"]) / fit,
        "solve_shipped": min(r["paired_solve"]) /
        r["sk_default"]["seconds"],
        # what a fit costing exactly one bare scan would reach: no fit that
        # reads its input can beat these ratios against the export path
        "copy_ceiling": (r["copy_read"] + sk) / best["floor"],
        "cursor_ceiling": (r["cursor_read"] + sk) / best["floor"],
    }


def show(label, seconds, note=""):
    """Print one timed line: best and median seconds."""
    if isinstance(seconds, list):
        print("  %-46s %9.3f %9.3f  %s" % (label, min(seconds),
                                           statistics.median(seconds), note))
    else:
        print("  %-46s %9.3f %9s  %s" % (label, seconds, "", note))


def report_table(kind, table, r, runs, fit_runs):
    """Print the measurements of one table."""
    fit = r["fit"]
    print("\n== %s columns: table %s (%s) ==" % (kind, table, r["size"]))
    print("  best and median of %d serial rounds after a warm-up round, "
          "of %d parallel and scikit-learn runs; export once" % (runs,
                                                                fit_runs))
    print("  floor (both arrays):  " + FLOOR_BOTH.format(t=table))
    print("  floor (chosen):       " + FLOOR_CHOSEN.format(t=table))
    print("  %-46s %9s %9s" % ("", "best s", "median s"))
    show("floor (both arrays)", r["floor"])
    show("btl_fit(chosen, rejected) end to end", fit["seconds"])
    show("  solve_ms (solver after rows are collected)", fit["solve"])
    show("  collecting rows (end to end - solve_ms)",
         [a - b for a, b in zip(fit["seconds"], fit["solve"])])
    show("btl_fit with 2 parallel workers", r["parallel"]["seconds"],
         "weights differ from serial by %.1e" % r["parallel_diff"])
    show("floor (chosen)", r["floor_chosen"])
    show("sum(reward_score('%s', 0, chosen))" % MODEL, r["score"])
    sk, skd = r["sk"], r["sk_default"]
    show("solve_ms of btl_fit runs paired with these", r["paired_solve"])
    show("scikit-learn lbfgs from memory, converged", sk["seconds_all"],
         "tol %.1e, %d iterations, relative gradient %.1e"
         % (sk["tol"], sk["n_iter"], sk["relgrad"]))
    show("scikit-learn lbfgs from memory, as shipped", skd["seconds"],
         "tol 1e-10, %d iterations, relative gradient %.1e, "
         "coefficients off by %.1e" % (skd["n_iter"], skd["relgrad"],
            max_rel_diff(fit["weights"], skd["weights"])))
    show("export: binary COPY into numpy", r["copy_read"])
    show("export: server-side cursor into numpy", r["cursor_read"])
    print("  pluralrm's relative gradient %.1e (pluralrm.tolerance %g); "
          "scikit-learn converged stopped on: %s"
          % (r["prm_relgrad"], r["tolerance"], sk["stop"]))


def verdict(value, bound, lower_is_better):
    """MET or NOT MET."""
    ok = value <= bound if lower_is_better else value >= bound
    return "MET" if ok else "NOT MET"


def report_targets(results):
    """Print each target's ratio per column type, and whether it is met."""
    kinds = list(results)
    print("\n== targets (ratios of best times) ==")
    print("  %-44s %-10s" % ("", "target") +
          "".join(" %-20s" % k for k in kinds))
    met = total = 0
    for key, label, bound, lower in TARGETS:
        cells = ""
        for k in kinds:
            value = results[k]["ratios"][key]
            v = verdict(value, bound, lower)
            met += v == "MET"
            total += 1
            fmt = "%.1e" if key == "coef_diff" else "%.2fx"
            cells += " %-20s" % ((fmt % value) + " " + v)
        target = ("<= " if lower else ">= ") + \
            ("%.0e" % bound if key == "coef_diff" else "%gx" % bound)
        print("  %-44s %-10s%s" % (label, target, cells))
    for key, label in (
            ("solve_shipped", "solve_ms / scikit-learn as shipped"),
            ("parallel_serial", "btl_fit 2 parallel workers / serial"),
            ("copy_ceiling", "export (binary COPY) / floor: the most any "
             "fit can reach"),
            ("cursor_ceiling", "export (cursor) / floor: the most any fit "
             "can reach")):
        cells = "".join(" %-20s" % ("%.2fx" % results[k]["ratios"][key])
                        for k in kinds)
        print("  %-44s %-10s%s" % (label, "(info)", cells))
    print("  %d of %d targets met" % (met, total))


def check(results):
    """Raise BenchError when a result is wrong rather than slow."""
    ref = None
    for kind, r in results.items():
        if r["ratios"]["coef_diff"] > COEF_TOL:
            fail("%s: coefficients differ from scikit-learn's by %.2e "
                 "(more than %g); pluralrm's relative gradient %.1e, "
                 "scikit-learn's %.1e" % (kind, r["ratios"]["coef_diff"],
                                          COEF_TOL, r["prm_relgrad"],
                                          r["sk"]["relgrad"]))
        if r["parallel_diff"] > SAME_TOL:
            fail("%s: parallel and serial fits differ by %.2e"
                 % (kind, r["parallel_diff"]))
        if abs(r["score_sum"] - r["score_numpy"]) > \
                SAME_TOL * abs(r["score_numpy"]):
            fail("%s: sum of reward_score is %r, numpy says %r"
                 % (kind, r["score_sum"], r["score_numpy"]))
        if r["truth_cosine"] < 0.99:
            fail("%s: fitted weights are far from the true ones (cosine "
                 "%.4f): the data are not what setup.sql should make"
                 % (kind, r["truth_cosine"]))
        if ref is None:
            ref = r["fit"]["weights"]
        elif max_rel_diff(r["fit"]["weights"], ref) > SAME_TOL:
            fail("%s: weights differ from the float8[] fit of the same "
                 "values" % kind)


def main():
    """Run the benchmark and print its report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dbname", required=True)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5,
                        help="timed rounds of the serial queries")
    parser.add_argument("--fit-runs", type=int, default=3,
                        help="timed runs of parallel and scikit-learn fits")
    args = parser.parse_args()
    start = time.perf_counter()

    conn = psycopg2.connect(dbname=args.dbname)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET max_parallel_workers_per_gather = 0")
    export_conn = psycopg2.connect(dbname=args.dbname)

    cur.execute("SELECT count(*) FROM btl_bench_float8")
    rows = cur.fetchone()[0]
    cur.execute("SELECT weights FROM btl_bench_truth")
    truth = np.array(cur.fetchone()[0], dtype=np.float64)
    cur.execute("SHOW server_version")
    version = cur.fetchone()[0]
    print("pluralrm BTL benchmark: %d comparisons, d = %d, l2 = %g, "
          "serial plans unless stated" % (rows, args.dim, L2))
    print("machine: %s; PostgreSQL %s (shared_buffers %s, jit %s); "
          "Python %s, scikit-learn %s, scipy %s, numpy %s, psycopg2 %s; "
          "OPENBLAS_NUM_THREADS=%s" % (
              machine(), version, setting(cur, "shared_buffers"),
              setting(cur, "jit"), platform.python_version(),
              sklearn.__version__, scipy.__version__, np.__version__,
              psycopg2.__version__.split()[0],
              os.environ["OPENBLAS_NUM_THREADS"]), flush=True)

    results = {}
    for kind, table, elem in (("float8[]", "btl_bench_float8", ">f8"),
                              ("real[]", "btl_bench_real", ">f4")):
        print("\nmeasuring %s ..." % table, flush=True)
        r = bench_sql(cur, table, args.runs, args.fit_runs,
                      save_model=not results)
        if r["fit"]["n"] != rows:
            fail("btl_fit saw %d rows of %d" % (r["fit"]["n"], rows))
        w = r["fit"]["weights"]
        r["truth_cosine"] = float(w @ truth /
                                  (np.linalg.norm(w) * np.linalg.norm(truth)))
        bench_python(cur, export_conn, table, args.dim, elem, r,
                     args.fit_runs)
        r["ratios"] = ratios(r)
        results[kind] = r
        report_table(kind, table, r, args.runs, args.fit_runs)
        print("  fitted weights vs true weights: cosine %.6f"
              % r["truth_cosine"])

    report_targets(results)
    for n in conn.notices + export_conn.notices:
        print("server notice: " + n.strip())
    check(results)
    print("\nall results correct; %.0f s in all"
          % (time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print("\nERROR: " + str(e), file=sys.stderr)
        sys.exit(1)
