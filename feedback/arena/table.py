"""The leaderboard as text (an aligned table for a terminal or a monospace chat message) and as a plain dict."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from feedback.arena.ratings import Leaderboard

HEADER = ("#", "recommender", "rating", "95% CI", "votes", "win rate")


def format_table(board: Leaderboard) -> str:
    rows = [HEADER]
    for rank, r in enumerate(board.ratings, start=1):
        rows.append(
            (
                str(rank),
                r.name,
                f"{r.rating:.0f}",
                f"{r.ci_low:.0f}–{r.ci_high:.0f}" if r.votes else "–",
                str(r.votes),
                f"{100 * r.win_rate:.1f}%" if r.votes else "–",
            )
        )
    widths = [max(len(row[c]) for row in rows) for c in range(len(HEADER))]
    left_aligned = {1}  # names read better left-aligned, numbers right-aligned
    lines = [
        "  ".join(cell.ljust(widths[c]) if c in left_aligned else cell.rjust(widths[c]) for c, cell in enumerate(row))
        for row in rows
    ]
    bias = board.position_bias
    lines.append("")
    lines.append(f"total votes: {board.total_votes} (intervals from {board.bootstrap} bootstrap replicates)")
    lines.append(
        f"position bias: the left side wins {100 * bias.left_win_rate:.1f}% of decisive votes "
        f"(95% CI {100 * bias.ci_low:.1f}–{100 * bias.ci_high:.1f}%), left advantage {bias.left_advantage:+.0f} Elo"
    )
    return "\n".join(line.rstrip() for line in lines)


def leaderboard_dict(board: Leaderboard) -> dict[str, Any]:
    """For --json output: the same fields Leaderboard.to_json stores."""
    return asdict(board)
