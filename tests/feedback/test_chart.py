"""The leaderboard as a PNG chart and as text: valid output, every recommender shown, safe from many threads."""

from __future__ import annotations

import json
import struct
from concurrent.futures import ThreadPoolExecutor

from feedback.arena import Leaderboard, VoteTable, fit
from feedback.arena.chart import leaderboard_png
from feedback.arena.table import format_table, leaderboard_dict

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sample_board() -> Leaderboard:
    rows = [
        ("fused", "by_look", "left", 60), ("by_look", "fused", "right", 50), ("fused", "by_look", "both", 30),
        ("by_look", "by_meaning", "left", 45), ("by_meaning", "by_look", "neither", 25),
        ("by_meaning", "fused", "right", 70), ("fused", "by_meaning", "right", 20),
    ]  # fmt: skip
    return fit(VoteTable.from_rows(rows, names=["for_you"]), bootstrap=200)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_png_is_valid_and_small() -> None:
    board = sample_board()
    data = leaderboard_png(board, title="Arena test")
    width, height = png_size(data)
    assert 400 <= width <= 2000 and 200 <= height <= 2000
    assert 5_000 < len(data) < 200_000


def test_png_of_an_empty_leaderboard() -> None:
    data = leaderboard_png(fit(VoteTable.from_rows([]), bootstrap=10))
    assert png_size(data)[0] > 0 and len(data) < 200_000


def test_charts_from_many_threads_at_once() -> None:
    board = sample_board()
    with ThreadPoolExecutor(max_workers=4) as pool:
        images = list(pool.map(lambda n: leaderboard_png(board, title=f"chart {n}"), range(8)))
    assert all(image[:8] == PNG_MAGIC for image in images)
    assert len({png_size(image) for image in images}) == 1


def test_table_lists_every_recommender_in_rank_order() -> None:
    board = sample_board()
    text = format_table(board)
    lines = text.splitlines()
    assert lines[0].split() == ["#", "recommender", "rating", "95%", "CI", "votes", "win", "rate"]
    body = [line.split() for line in lines[1 : 1 + len(board.ratings)]]
    assert [row[1] for row in body] == [r.name for r in board.ratings]
    assert [row[0] for row in body] == [str(i) for i in range(1, len(board.ratings) + 1)]
    best = board.ratings[0]
    assert body[0][2] == f"{best.rating:.0f}" and body[0][3] == f"{best.ci_low:.0f}–{best.ci_high:.0f}"
    assert body[-1][1] == "for_you" and body[-1][4] == "0"  # unvoted: last, with no interval or win rate
    assert f"total votes: {board.total_votes}" in text
    assert "position bias" in text and f"{100 * board.position_bias.left_win_rate:.1f}%" in text
    assert len({len(line) for line in lines[: 1 + len(board.ratings)]}) == 1  # aligned columns


def test_leaderboard_dict_is_what_to_json_stores() -> None:
    board = sample_board()
    data = leaderboard_dict(board)
    assert data == json.loads(board.to_json())
    assert [r["name"] for r in data["ratings"]] == [r.name for r in board.ratings]


def test_package_exports_the_chart_lazily() -> None:
    import feedback.arena as arena

    assert arena.leaderboard_png is leaderboard_png
    assert set(arena.__all__) >= {"fit", "VoteTable", "PairScheduler", "team_draft", "credit", "format_table"}
