"""The rate-limit timeline picture (needs the ``bench`` extra: matplotlib).

python benchmarks/_plot.py benchmarks/results/ratelimit_timeline.json  # re-draw the PNG
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BIN_SECONDS = 0.25
CLIP = 2.5  # y axis up to CLIP x the limit
MISSING = (
    "matplotlib is not installed: no picture drawn "
    "(pip install 'sendkit-async[bench]' or pip install matplotlib)"
)


def binned(timeline: list[tuple[float, int]]) -> tuple[list[float], list[float], list[float]]:
    """Bin starts (s since the first request), 2xx per second and 429s per second."""
    if not timeline:
        return [], [], []
    start = min(t for t, _ in timeline)
    count = int((max(t for t, _ in timeline) - start) / BIN_SECONDS) + 1
    ok, limited = [0.0] * count, [0.0] * count
    for t, status in timeline:
        i = int((t - start) / BIN_SECONDS)
        if 200 <= status < 300:
            ok[i] += 1 / BIN_SECONDS
        elif status == 429:
            limited[i] += 1 / BIN_SECONDS
    return [i * BIN_SECONDS for i in range(count)], ok, limited


def draw(panels: list[dict[str, Any]], rate: float, path: Path) -> str:
    """One panel per ``{"mode", "client", "timeline", "label"}``: rows by mode, columns by client.

    Returns a one-line message (where the PNG went, or why there is none).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return MISSING
    modes = list(dict.fromkeys(p["mode"] for p in panels))
    clients = list(dict.fromkeys(p["client"] for p in panels))
    fig, axes = plt.subplots(
        len(modes),
        len(clients),
        figsize=(5.5 * len(clients), 3.2 * len(modes)),
        sharey=True,
        squeeze=False,
    )
    longest = max((max(t for t, _ in p["timeline"]) - min(t for t, _ in p["timeline"]))
                  for p in panels if p["timeline"])  # fmt: skip
    for panel in panels:
        ax = axes[modes.index(panel["mode"])][clients.index(panel["client"])]
        x, ok, limited = binned(panel["timeline"])
        ax.step(x, ok, where="post", color="tab:blue", label="200s per second")
        ax.step(x, limited, where="post", color="tab:red", label="429s per second (clipped)")
        ax.axhline(rate, color="grey", linestyle="--", linewidth=1, label=f"limit {rate:g}/s")
        ax.set_xlim(0, longest + BIN_SECONDS)
        # Bursts of 429s reach thousands per second; clip them so the 200s stay readable.
        ax.set_ylim(0, CLIP * rate)
        if max(limited, default=0) > CLIP * rate:
            ax.text(0.98, 0.95, f"429s peak at {max(limited):,.0f}/s", transform=ax.transAxes,
                    ha="right", va="top", fontsize=8, color="tab:red")  # fmt: skip
        ax.set_title(f"{panel['client']}, server headers: {panel['mode']}\n{panel['label']}",
                     fontsize=10)  # fmt: skip
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("seconds since first request")
    for row in axes:
        row[0].set_ylabel(f"responses/s ({BIN_SECONDS:g} s bins)")
    axes[0][0].legend(loc="upper right", fontsize=8)
    fig.suptitle("Responses seen by the simulator during a rate-limited bulk fetch")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"picture: {path}"


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else Path(__file__).parent / "results/ratelimit_timeline.json"
    data = json.loads(source.read_text())
    print(draw(data["panels"], data["rate"], source.with_suffix(".png")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
