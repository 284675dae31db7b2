"""The peers of the search benchmark (crates/bench/src/search.rs): the same
rows and queries in a plain SQLite table with ordinary indexes and in
DuckDB. Prints JSON: per peer the load time, each search's time in
microseconds, each histogram's, and the answers' sizes (to check that all
three answer alike). Usage: python3 search_peers.py SPEC.json
"""

import json
import os
import sqlite3
import sys
import time

SEARCH = (
    "SELECT idx, time_us, system, actor, action, asset, result FROM records"
    " WHERE {col} = ? AND time_us >= ? AND time_us < ?"
    " ORDER BY time_us DESC, idx DESC LIMIT 100"
)


def hist_sql(spec):
    return (
        "SELECT (time_us + {j}) // {w} AS h, COUNT(*) FROM records"
        " WHERE time_us >= ? AND time_us < ? GROUP BY h ORDER BY h"
    ).format(j=spec["jst_us"], w=spec["hour_us"])


def measure(con, spec, hist):
    searches = []
    hits = 0
    # Warm-up: the first 100 once, as for Mamori.
    for col, value, a, b in spec["searches"][:100]:
        con.execute(SEARCH.format(col=col), (value, a, b)).fetchall()
    for col, value, a, b in spec["searches"]:
        t = time.perf_counter()
        rows = con.execute(SEARCH.format(col=col), (value, a, b)).fetchall()
        searches.append((time.perf_counter() - t) * 1e6)
        hits += len(rows)
    hists = []
    total = 0
    a, b = spec["month"]
    for _ in range(spec["histograms"]):
        t = time.perf_counter()
        rows = con.execute(hist, (a, b)).fetchall()
        hists.append((time.perf_counter() - t) * 1e6)
        total = sum(r[1] for r in rows)
    return {"search_us": searches, "hist_us": hists, "hits": hits, "hist_total": total}


def sqlite_peer(spec):
    path = os.path.join(spec["dir"], "peer.sqlite")
    t = time.perf_counter()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute(
        "CREATE TABLE records (idx INTEGER PRIMARY KEY, time_us INTEGER NOT NULL,"
        " system TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,"
        " asset TEXT NOT NULL, result TEXT NOT NULL)"
    )
    con.execute("ATTACH DATABASE ? AS m", (spec["mamori_db"],))
    con.execute("BEGIN")
    con.execute(
        "INSERT INTO records SELECT idx, time_us, system, actor, action, asset, result"
        " FROM m.ledger_index ORDER BY idx"
    )
    con.execute("COMMIT")
    con.execute("DETACH DATABASE m")
    for sql in (
        "CREATE INDEX records_actor ON records(actor, time_us)",
        "CREATE INDEX records_asset ON records(asset, time_us)",
        "CREATE INDEX records_time ON records(time_us)",
    ):
        con.execute(sql)
    con.close()
    load = time.perf_counter() - t
    con = sqlite3.connect(path)
    out = measure(con, spec, hist_sql(spec).replace("//", "/"))
    con.close()
    out["load_s"] = load
    out["what"] = "sqlite3 %s, Python" % sqlite3.sqlite_version
    return out


def duckdb_peer(spec):
    import duckdb

    path = os.path.join(spec["dir"], "peer.duckdb")
    t = time.perf_counter()
    con = duckdb.connect(path)
    con.execute(
        "CREATE TABLE records AS SELECT * FROM read_csv(?, header = false, columns = {"
        "'idx': 'BIGINT', 'time_us': 'BIGINT', 'system': 'VARCHAR', 'actor': 'VARCHAR',"
        " 'action': 'VARCHAR', 'asset': 'VARCHAR', 'result': 'VARCHAR'})",
        [spec["csv"]],
    )
    con.execute("CHECKPOINT")
    load = time.perf_counter() - t
    out = measure(con, spec, hist_sql(spec))
    con.close()
    out["load_s"] = load
    out["what"] = "duckdb %s, Python, %s threads" % (
        duckdb.__version__,
        os.cpu_count(),
    )
    return out


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    result = {"sqlite": sqlite_peer(spec)}
    try:
        result["duckdb"] = duckdb_peer(spec)
    except ImportError as e:
        result["duckdb"] = {"what": "not installed: %s" % e}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
