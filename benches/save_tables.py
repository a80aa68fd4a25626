#!/usr/bin/env python3
"""A draft save's write of its answers and a page's reads, apart from HTTP, templates and the
other connections: DELETE + INSERT against one INSERT that updates the items already stored (what
the server does), on `answers` as shipped (a rowid table) and on the same table WITHOUT ROWID
(the alternative measured and not taken: SQLite migration 000028 clusters `section_states`
only).

Builds the schema with the server's own migrations (`coherence migrate`) and a copy with
`answers` rebuilt WITHOUT ROWID, fills each with 2,000 responses of 51 answers, then times on
one connection, in this process's CPU:

- a save of 20 answers that all change (the claim of the section, the answers written, one audit
  row, in one transaction);
- a page's reads of a response (its visible answers in order, its section states);

with short answers only, and with one answer in eight 1,500 bytes long (a paragraph of free
text): a WITHOUT ROWID table keeps a row in an index b-tree, where a row over about 1,000 bytes
spills to overflow pages.

Python's own sqlite3 module runs the statements (the system's SQLite, not the server's bundled
one): compare the variants with each other, not with the server's figures. Prints the lowest of
three runs.

    python3 benches/save_tables.py [path/to/coherence]   (default: target/release/coherence)
"""

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESPONSES, QUESTIONS, CHANGED = 2000, 51, 20
SAVES, READS, RUNS = 3000, 10000, 3


def cluster_answers(path):
    """`answers` rebuilt WITHOUT ROWID, from its definition as the migrations left it (its
    indexes made again), so that the two forms differ in that alone."""
    c = sqlite3.connect(path)
    table = c.execute("SELECT sql FROM sqlite_master WHERE name = 'answers'").fetchone()[0]
    indexes = [row[0] for row in c.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'answers'"
        " AND sql IS NOT NULL")]
    assert table.startswith("CREATE TABLE answers ("), table
    rebuilt = table.replace("CREATE TABLE answers (", "CREATE TABLE answers_rebuilt (", 1)
    c.executescript(
        f"{rebuilt} WITHOUT ROWID;\nDROP TABLE answers;\n"
        "ALTER TABLE answers_rebuilt RENAME TO answers;\n" + ";\n".join(indexes) + ";")
    c.close()


def connect(path):
    c = sqlite3.connect(path, isolation_level=None)
    # As the server's connections (src/db/mod.rs), foreign keys aside: the rows below name no
    # country, and both variants would check the same parents.
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("PRAGMA synchronous = NORMAL")
    return c


def text(q, n, long_every):
    """An answer's value: 1,500 bytes for one question in `long_every` (0: none), else short."""
    long = long_every and q % long_every == 0
    return f"value {q} {n} " + "x" * (1500 if long else 30)


def fill(path, long_every):
    c = connect(path)
    c.execute("BEGIN")
    for r in range(RESPONSES):
        c.execute(
            "INSERT INTO access_tokens (id, survey_id, country_iso3, token_hash, created_at, unit)"
            " VALUES (?, 's', 'SWE', ?, '2026-01-01', ?)",
            (f"t{r}", f"h{r}", f"u{r}"),
        )
        c.execute(
            "INSERT INTO responses (id, survey_id, country_iso3, status, survey_version,"
            " created_at, updated_at, unit) VALUES (?, 's', 'SWE', 'draft', '1', '2026-01-01',"
            " '2026-01-01', ?)",
            (f"r{r}", f"u{r}"),
        )
        c.execute(
            "INSERT INTO section_states (response_id, section_id, version, updated_at, updated_by)"
            " VALUES (?, 'main', 1, '2026-01-01', ?)",
            (f"r{r}", f"t{r}"),
        )
        for q in range(QUESTIONS):
            c.execute(
                "INSERT INTO answers (response_id, question_id, item, value, num, section_id,"
                " updated_at, updated_by) VALUES (?, ?, '', ?, NULL, 'main', '2026-01-01', ?)",
                (f"r{r}", f"q{q:02d}", text(q, r, long_every), f"t{r}"),
            )
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()


def saves(path, upsert, long_every):
    c = connect(path)
    rnd = random.Random(1)
    seq = [0]

    def save(r, k):
        rows = [[f"q{q:02d}", "", text(q, -k, long_every), None, 1] for q in range(CHANGED)]
        questions = [row[0] for row in rows]
        c.execute("BEGIN")
        c.execute(
            "UPDATE section_states SET version = version + 1, updated_at = '2026-01-02',"
            " updated_by = ? WHERE response_id = ? AND section_id = 'main' AND EXISTS"
            " (SELECT 1 FROM responses WHERE id = ? AND status IN ('draft', 'returned'))",
            (f"t{r}", f"r{r}", f"r{r}"),
        )
        insert = (
            "INSERT INTO answers (response_id, section_id, updated_at, updated_by, question_id,"
            " item, value, num, visible) SELECT ?, 'main', '2026-01-02', ?, value->>0, value->>1,"
            " value->>2, value->>3, value->>4 FROM json_each(?)"
        )
        if upsert:
            insert += (
                " WHERE true ON CONFLICT (response_id, question_id, item) DO UPDATE SET"
                " value = excluded.value, num = excluded.num, section_id = excluded.section_id,"
                " updated_at = excluded.updated_at, updated_by = excluded.updated_by,"
                " visible = excluded.visible"
            )
        else:
            c.execute(
                "DELETE FROM answers WHERE response_id = ? AND question_id IN"
                " (SELECT value FROM json_each(?))",
                (f"r{r}", json.dumps(questions)),
            )
        c.execute(insert, (f"r{r}", f"t{r}", json.dumps(rows)))
        seq[0] += 1
        c.execute(
            "INSERT INTO audit_log (chain, seq, at, country_iso3, actor, kind, detail, prev_hash,"
            " hash) VALUES ('s', ?, '2026-01-02', 'SWE', ?, 'saved', ?, '', '')",
            (seq[0], f"t{r}", json.dumps({"section": "main", "changed": questions})),
        )
        c.execute("COMMIT")

    times = []
    for run in range(RUNS):
        start = time.process_time()
        for k in range(SAVES):
            save(rnd.randrange(RESPONSES), run * SAVES + k)
        times.append(time.process_time() - start)
    c.close()
    return min(times) / SAVES * 1e6


def reads(path):
    c = connect(path)
    rnd = random.Random(2)
    times = []
    for _ in range(RUNS):
        start = time.process_time()
        for _ in range(READS):
            r = f"r{rnd.randrange(RESPONSES)}"
            c.execute(
                "SELECT question_id, item, value, num FROM answers WHERE response_id = ?"
                " AND visible = 1 ORDER BY question_id, item",
                (r,),
            ).fetchall()
            c.execute(
                "SELECT section_id, version, updated_at, updated_by, ready_at, ready_by"
                " FROM section_states WHERE response_id = ?",
                (r,),
            ).fetchall()
        times.append(time.process_time() - start)
    c.close()
    return min(times) / READS * 1e6


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/coherence")
    work = tempfile.mkdtemp(prefix="coherence-save-tables-")
    try:
        shipped = os.path.join(work, "shipped.db")
        env = dict(os.environ, COHERENCE_DATABASE_URL=shipped)
        subprocess.run([binary, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        clustered = os.path.join(work, "clustered.db")
        shutil.copy(shipped, clustered)
        cluster_answers(clustered)
        print(f"SQLite {sqlite3.sqlite_version} (Python's); {RESPONSES} responses of {QUESTIONS}"
              f" answers; CPU per operation, lowest of {RUNS} runs")
        for long_every, values in ((0, "short answers"), (8, "one answer in 8 long")):
            for name, empty in (("answers as shipped", shipped),
                                ("answers WITHOUT ROWID", clustered)):
                filled = os.path.join(work, "filled.db")
                shutil.copy(empty, filled)
                fill(filled, long_every)
                for upsert in (False, True):
                    copy = os.path.join(work, "run.db")
                    shutil.copy(filled, copy)
                    how = "one INSERT updating" if upsert else "DELETE + INSERT"
                    print(f"  {values:21} {name:22} save, {how:19}"
                          f" {saves(copy, upsert, long_every):6.0f} us")
                    for suffix in ("-wal", "-shm"):
                        if os.path.exists(copy + suffix):
                            os.remove(copy + suffix)
                print(f"  {values:21} {name:22} a page's reads           "
                      f" {reads(filled):6.1f} us")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
