"""Benchmark of pluralrm's item strengths (run by test/bench/items.sh).

Needs the tables of test/bench/items/setup.sql in the database that libpq's
environment (PGHOST, PGPORT, PGUSER) and --dbname point to. Run it with
Debian's /usr/bin/python3, which has scikit-learn, scipy, numpy and
psycopg2.

It times, in one session:
  - the floor: a bare scan reading the three columns of every row;
  - btl_items end to end with a serial plan and with 2 parallel workers,
    and its solve_ms (the solver once the pairs are counted);
and in Python:
  - the export path: the rows fetched with psycopg2 (binary COPY into
    numpy, and a plain cursor), and the sparse one-hot design built
    (+1 for item a, -1 for item b);
  - scikit-learn's LogisticRegression on that design with no intercept and
    C = 1 / prior, which is the same objective as btl_items' normal prior
    of precision prior, with each solver that handles sparse input, at a
    tight tolerance.
Queries and fits run --runs times after a warm-up; the ratios use the best
run of each, the least disturbed by other work on the machine.

Prints the measurements and the ratios. Exits 1 when a result is wrong:
btl_items does not converge, or no scikit-learn solver reaches the same
strengths to 1e-5.
"""
import os

# Serial against serial: one BLAS thread here, as in the server.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import io
import platform
import sys
import time
import warnings

import numpy as np
import psycopg2
import scipy
import scipy.sparse
import sklearn
from sklearn.linear_model import LogisticRegression

SAME_TOL = 1e-5

FLOOR = ("SELECT count(*), sum(a), sum(b), sum(outcome) "
         "FROM bench_comparisons")
FIT = ("SELECT (m).converged, (m).iterations, (m).solve_ms, (m).items, "
       "(m).pairs, (m).loglik, (m).item, (m).strength "
       "FROM (SELECT pluralrm.btl_items(a, b, outcome, 1, "
       "pluralrm.items_options(prior => {prior})) AS m "
       "FROM bench_comparisons) AS s")
EXPORT = "SELECT a, b, outcome FROM bench_comparisons"

# Solvers of LogisticRegression that take sparse input, with tolerances
# tight enough for 1e-5 agreement
SOLVERS = [("newton-cholesky", 1e-10), ("newton-cg", 1e-10),
           ("lbfgs", 1e-10), ("liblinear", 1e-10)]


def best_time(runs, func):
    """Run func once to warm up, then runs times: (best seconds, result)."""
    result = func()
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - t0)
    return best, result


def query(cur, sql):
    """Run sql and fetch its one row."""
    cur.execute(sql)
    return cur.fetchone()


def fetch_copy(conn):
    """The rows through a binary COPY, parsed by numpy: (a, b, outcome)."""
    buf = io.BytesIO()
    with conn.cursor() as cur:
        cur.copy_expert("COPY (" + EXPORT + ") TO STDOUT (FORMAT binary)",
                        buf)
    raw = buf.getbuffer()
    # 19-byte header, a 2-byte trailer; each row: field count, then
    # (length, value) for two bigints and a float8, big-endian
    row = np.dtype([("n", ">i2"), ("la", ">i4"), ("a", ">i8"),
                    ("lb", ">i4"), ("b", ">i8"), ("lo", ">i4"),
                    ("o", ">f8")])
    rows = np.frombuffer(raw, dtype=row, offset=19,
                         count=(len(raw) - 21) // row.itemsize)
    return (rows["a"].astype(np.int64), rows["b"].astype(np.int64),
            rows["o"].astype(np.float64))


def fetch_cursor(conn):
    """The rows through a plain cursor: (a, b, outcome)."""
    with conn.cursor() as cur:
        cur.execute(EXPORT)
        rows = np.array(cur.fetchall(), dtype=np.float64)
    return (rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64),
            rows[:, 2])


def design(a, b, items):
    """Sparse one-hot differences: +1 in column a - 1, -1 in column b - 1."""
    n = len(a)
    indices = np.empty(2 * n, dtype=np.int32)
    indices[0::2] = a - 1
    indices[1::2] = b - 1
    data = np.tile(np.array([1.0, -1.0]), n)
    indptr = np.arange(0, 2 * n + 1, 2, dtype=np.int64)
    return scipy.sparse.csr_matrix((data, indices, indptr),
                                   shape=(n, items))


def objective(x, y, w, prior):
    """Negative log-likelihood plus (prior / 2) ||w||^2."""
    m = x @ w
    sign = np.where(y > 0, 1.0, -1.0)
    return float(np.sum(np.logaddexp(0.0, -sign * m)) +
                 0.5 * prior * w @ w)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dbname", required=True)
    ap.add_argument("--items", type=int, required=True)
    ap.add_argument("--prior", type=float, default=0.01)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    conn = psycopg2.connect(dbname=args.dbname)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT version()")
    print("server:", cur.fetchone()[0].split(",")[0])
    print("python", platform.python_version(), "numpy", np.__version__,
          "scipy", scipy.__version__, "scikit-learn", sklearn.__version__)

    # pluralrm: serial, then parallel
    fit_sql = FIT.format(prior=repr(args.prior))
    cur.execute("SET max_parallel_workers_per_gather = 0")
    t_floor, floor = best_time(args.runs, lambda: query(cur, FLOOR))
    n = floor[0]
    t_fit, row = best_time(args.runs, lambda: query(cur, fit_sql))
    converged, iterations, solve_ms, items, pairs, loglik, names, s = row
    cur.execute("SET max_parallel_workers_per_gather = 2")
    t_par, prow = best_time(args.runs, lambda: query(cur, fit_sql))
    if not converged or not prow[0]:
        print("FAIL: btl_items did not converge")
        return 1
    order = np.argsort([int(x) for x in names])
    strength = np.array(s, dtype=np.float64)[order]
    par_strength = np.array(prow[7], dtype=np.float64)[order]
    print(f"\n{n} comparisons of {items} items, {pairs} distinct pairs, "
          f"prior {args.prior}")
    print(f"floor (scan of a, b, outcome)      {t_floor:8.3f} s")
    print(f"btl_items, serial plan             {t_fit:8.3f} s "
          f"({iterations} Newton iterations, solve_ms {solve_ms:.0f})")
    print(f"btl_items, 2 parallel workers      {t_par:8.3f} s")

    # export paths and the design
    t0 = time.perf_counter()
    a, b, y = fetch_copy(conn)
    t_copy = time.perf_counter() - t0
    t0 = time.perf_counter()
    a2, b2, y2 = fetch_cursor(conn)
    t_cursor = time.perf_counter() - t0
    if not (np.array_equal(a, a2) and np.array_equal(y, y2)):
        print("FAIL: the two export paths fetched different rows")
        return 1
    t0 = time.perf_counter()
    x = design(a, b, args.items)
    t_design = time.perf_counter() - t0
    print(f"fetch, binary COPY into numpy      {t_copy:8.3f} s")
    print(f"fetch, psycopg2 cursor             {t_cursor:8.3f} s")
    print(f"sparse one-hot design              {t_design:8.3f} s")

    # scikit-learn, every sparse-capable solver
    f_ours = objective(x, y, strength, args.prior)
    print(f"\nscikit-learn LogisticRegression(C = 1 / prior = "
          f"{1 / args.prior:g}, fit_intercept=False)")
    best = None
    for solver, tol in SOLVERS:
        model = LogisticRegression(C=1.0 / args.prior, fit_intercept=False,
                                   solver=solver, tol=tol, max_iter=10000)
        # at this tolerance the solvers warn about their line searches and
        # iteration limits; the comparison below judges the result
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_sk, _ = best_time(args.runs, lambda: model.fit(x, y))
        w = model.coef_.ravel()
        diff = float(np.max(np.abs((w - w.mean()) - strength)))
        df = objective(x, y, w, args.prior) - f_ours
        ok = diff < SAME_TOL
        print(f"  {solver:16s} tol {tol:g}: fit {t_sk:8.3f} s, "
              f"max |strength diff| {diff:.1e}, objective - ours {df:+.1e}"
              f"{'' if ok else '  (not within 1e-5)'}")
        if ok and (best is None or t_sk < best[1]):
            best = (solver, t_sk, diff)
    par_diff = float(np.max(np.abs(par_strength - strength)))
    print(f"parallel vs serial btl_items: max |strength diff| "
          f"{par_diff:.1e}")
    if best is None:
        print("FAIL: no scikit-learn solver matched the strengths to 1e-5")
        return 1

    solver, t_sk, diff = best
    total = min(t_copy, t_cursor) + t_design + t_sk
    print(f"\nfastest matching scikit-learn solver: {solver} "
          f"(strengths agree to {diff:.1e})")
    print(f"btl_items serial / floor                         "
          f"{t_fit / t_floor:6.2f}")
    print(f"btl_items serial / scikit-learn fit alone        "
          f"{t_fit / t_sk:6.3f}")
    print(f"btl_items serial / scikit-learn with fetch       "
          f"{t_fit / total:6.3f}  (fetch + design + fit = {total:.3f} s)")
    print(f"btl_items parallel / scikit-learn with fetch     "
          f"{t_par / total:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
