"""The arena leaderboard on demand at scale: 1 M votes in a real Postgres, aggregated in SQL and fitted.

Seeds a throwaway schema with analyses, their two shown sets and one vote each (drawn from known strengths with a
left-side advantage), then times what `/stats`, the bot's refresh loop and `python -m feedback report` do:
`load_vote_table` (the GROUP BY) and `fit` (Bradley-Terry + bootstrap). Checks that the known order comes out.

    python benchmarks/bench_leaderboard.py --votes 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feedback.arena import fit  # noqa: E402
from feedback.leaderboard import load_vote_table  # noqa: E402
from storage.migrate import migrate  # noqa: E402

PG_BASE = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
TRUE_ELO = {"fused": 1100.0, "by_look": 1040.0, "by_meaning": 1000.0, "for_you": 960.0, "by_text_clip": 900.0}
LEFT_ADVANTAGE_ELO = 30.0

# One vote per analysis. Pairs and sides uniform; P(left wins) from the true ratings; ~30% ties.
SEED_SQL = """
WITH names AS (SELECT array_agg(n ORDER BY n) AS n, array_agg(r ORDER BY n) AS r
                 FROM unnest($2::text[], $3::float8[]) AS t(n, r)),
draws AS (
    SELECT g AS id, 1 + floor(random() * 5)::int AS i, 1 + floor(random() * 4)::int AS step, random() AS u
      FROM generate_series(1, $1) AS g
),
pairs AS (
    SELECT d.id, d.u, d.i, 1 + ((d.i - 1 + d.step) % 5) AS j FROM draws d
)
INSERT INTO bench_votes (id, left_name, right_name, choice)
SELECT p.id, n.n[p.i], n.n[p.j],
       CASE WHEN p.u < 0.3 THEN (CASE WHEN random() < 0.5 THEN 'both' ELSE 'neither' END)
            WHEN random() < 1 / (1 + power(10, (n.r[p.j] - n.r[p.i] - $4) / 400)) THEN 'left'
            ELSE 'right' END
  FROM pairs p, names n
"""


async def seed(conn: asyncpg.Connection, votes: int, users: int) -> float:
    start = time.perf_counter()
    await conn.execute("CREATE TEMP TABLE bench_votes (id bigint, left_name text, right_name text, choice text)")
    names = sorted(TRUE_ELO)
    await conn.execute(SEED_SQL, votes, names, [TRUE_ELO[n] for n in names], LEFT_ADVANTAGE_ELO)
    await conn.execute(
        "INSERT INTO users (telegram_id) SELECT g FROM generate_series(1, $1) g", users
    )
    await conn.execute(
        """
        INSERT INTO analyses (id, user_id, image_sha256, description, latency_ms)
        SELECT id, 1 + id % $1, md5(id::text), '', 0 FROM bench_votes
        """,
        users,
    )
    await conn.execute(
        """
        INSERT INTO shown_sets (analysis_id, recommender, side, artwork_ids)
        SELECT id, left_name, 'left', ARRAY[1, 2, 3, 4, 5] FROM bench_votes
        UNION ALL SELECT id, right_name, 'right', ARRAY[6, 7, 8, 9, 10] FROM bench_votes
        """
    )
    await conn.execute(
        "INSERT INTO votes (user_id, analysis_id, choice) SELECT 1 + id % $1, id, choice FROM bench_votes", users
    )
    await conn.execute("ANALYZE")
    return time.perf_counter() - start


async def main(args: argparse.Namespace) -> dict[str, object]:
    schema = f"bench_lb_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_BASE)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        conn = await asyncpg.connect(PG_BASE, server_settings={"search_path": schema})
        try:
            await migrate(conn)
            seconds = await seed(conn, args.votes, args.users)
            print(f"seeded {args.votes:,} votes in {seconds:.1f} s")
            load_s, fit_s, total_s = [], [], []
            board = None
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                table = await load_vote_table(conn, TRUE_ELO)
                t1 = time.perf_counter()
                board = fit(table, bootstrap=args.bootstrap)
                t2 = time.perf_counter()
                load_s.append(t1 - t0)
                fit_s.append(t2 - t1)
                total_s.append(t2 - t0)
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()
    assert board is not None
    order = [r.name for r in board.ratings]
    true_order = sorted(TRUE_ELO, key=TRUE_ELO.get, reverse=True)  # type: ignore[arg-type]
    result = {
        "votes": args.votes,
        "bootstrap": args.bootstrap,
        "repeats": args.repeats,
        "machine": f"{os.cpu_count()} CPU cores, PostgreSQL on localhost",
        "load_vote_table_s_median": round(statistics.median(load_s), 3),
        "fit_s_median": round(statistics.median(fit_s), 3),
        "total_s_median": round(statistics.median(total_s), 3),
        "order": order,
        "true_order": true_order,
        "order_recovered": order == true_order,
        "ratings": {r.name: [round(r.rating, 1), round(r.ci_low, 1), round(r.ci_high, 1)] for r in board.ratings},
        "left_advantage_elo": round(board.position_bias.left_advantage, 1),
        "true_left_advantage_elo": LEFT_ADVANTAGE_ELO,
    }
    print(
        f"{args.votes:,} votes: SQL aggregation {result['load_vote_table_s_median']} s + fit with "
        f"{args.bootstrap} bootstrap replicates {result['fit_s_median']} s = {result['total_s_median']} s "
        f"(median of {args.repeats})"
    )
    print(f"order {order} (true {true_order}); left advantage {result['left_advantage_elo']} Elo (true 30)")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "leaderboard.json")
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    arguments.out.write_text(json.dumps(outcome, indent=2) + "\n")
