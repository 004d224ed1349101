"""The leaderboard as a PNG: ratings with their 95% intervals, for a chat message or a dashboard.

Built on matplotlib's object API with the Agg canvas (no pyplot and its global figure registry), so charts can be
drawn from several threads at once.
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from feedback.arena.ratings import BASE_RATING, Leaderboard

BAR_COLOUR = "#4C72B0"
UNRATED_COLOUR = "#909090"
FOOTNOTE_INCHES = 0.3


def leaderboard_png(board: Leaderboard, title: str = "Recommender arena") -> bytes:
    ratings = board.ratings
    height = 1.7 + 0.45 * max(len(ratings), 1)
    figure = Figure(figsize=(7.0, height), dpi=100)
    figure.set_layout_engine("constrained", rect=(0.0, FOOTNOTE_INCHES / height, 1.0, 1.0 - FOOTNOTE_INCHES / height))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title)
    if ratings:
        positions = list(range(len(ratings)))[::-1]  # best at the top
        for y, r in zip(positions, ratings, strict=True):
            if not r.votes:  # its interval is "anywhere": a marker says more than a bar across the whole chart
                axes.plot([r.rating], [y], "o", color=UNRATED_COLOUR)
                axes.annotate("no votes yet", (r.rating, y), xytext=(0, 7), textcoords="offset points",
                              ha="center", fontsize=8, color=UNRATED_COLOUR)
                continue
            colour = BAR_COLOUR
            axes.errorbar(
                r.rating,
                y,
                xerr=[[r.rating - r.ci_low], [r.ci_high - r.rating]],
                fmt="o",
                color=colour,
                ecolor=colour,
                elinewidth=2.5,
                capsize=4,
            )
            axes.annotate(f"{r.rating:.0f}", (r.rating, y), xytext=(0, 7), textcoords="offset points",
                          ha="center", fontsize=8)
        axes.set_yticks(positions, [f"{r.name}\n{r.votes} votes" for r in ratings], fontsize=9)
        axes.set_ylim(-0.7, len(ratings) - 0.3)
    else:
        axes.set_yticks([])
        axes.text(0.5, 0.5, "no recommenders yet", transform=axes.transAxes, ha="center", va="center")
    axes.axvline(BASE_RATING, color="#888888", linewidth=0.8, linestyle="--")
    axes.set_xlabel("rating (Elo scale, mean 1000) with 95% interval")
    axes.grid(axis="x", alpha=0.3)
    bias = board.position_bias
    figure.text(
        0.01,
        0.005,
        f"{board.total_votes} votes · left side wins {100 * bias.left_win_rate:.1f}% of decisive votes "
        f"(95% CI {100 * bias.ci_low:.1f}–{100 * bias.ci_high:.1f}%), left advantage {bias.left_advantage:+.0f} Elo",
        fontsize=8,
        color="#555555",
        ha="left",
        va="bottom",
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
