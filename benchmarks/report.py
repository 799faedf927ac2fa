"""The report: a text table, the JSON result files and (with matplotlib) a PNG."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from benchmarks.scenarios import Record


def _fmt(value: object, spec: str) -> str:
    if value is None:
        return "-".rjust(len(format(0, spec)))
    return format(value, spec)


def table(records: list[Record]) -> str:
    head = (
        f"{'scenario':34} {'ops/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'redis ops/s':>12} {'ratio':>6} {'rss MB':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in records:
        if r.status != "ok":
            lines.append(f"{r.name:34} {r.status}")
            continue
        lines.append(
            f"{r.name:34} {_fmt(r.ops_per_s, '10,.0f')} {_fmt(r.p50_ms, '8.2f')} {_fmt(r.p99_ms, '8.2f')} "
            f"{_fmt(r.redis_ops_per_s, '12,.0f')} {_fmt(r.ratio_to_redis, '6.2f')} "
            f"{_fmt(r.server_peak_rss_mb, '7.1f')}"
        )
        memory = r.extra.get("rss_growth_mb")
        if memory is not None:
            lines.append(
                f"{'':34} RSS growth {memory:.1f} MB for {r.extra['payload_mb']:.1f} MB of keys+values "
                f"= {r.extra['rss_growth_per_payload']:.2f}x payload (target <= 2x)"
            )
    return "\n".join(lines)


def write_json(document: dict[str, object], results_dir: Path, stamp: str) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, sort_keys=False)
    path = results_dir / f"{stamp}.json"
    path.write_text(text)
    (results_dir / "latest.json").write_text(text)
    return path


def document(records: list[Record], meta: dict[str, object]) -> dict[str, object]:
    return {**meta, "scenarios": [{**asdict(r)} for r in records]}


def plot(records: list[Record], results_dir: Path, stamp: str) -> Path | None:
    """Throughput (gridactor vs Redis) and latency percentiles per scenario; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ran = [r for r in records if r.status == "ok" and r.ops_per_s is not None]
    if not ran:
        return None
    names = [r.name for r in ran]
    x = list(range(len(ran)))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8, 1.1 * len(ran) + 3), 9))
    width = 0.4
    top.bar([i - width / 2 for i in x], [r.ops_per_s or 0 for r in ran], width, label="gridactor")
    top.bar(
        [i + width / 2 for i in x], [r.redis_ops_per_s or 0 for r in ran], width, label="Redis (same run)"
    )
    for i, r in enumerate(ran):
        if r.ratio_to_redis is not None:
            top.annotate(
                f"{r.ratio_to_redis:.2f}x", (i - width / 2, r.ops_per_s or 0), ha="center", va="bottom"
            )
    top.set_yscale("log")  # Redis pipelined is ~20x: linear bars would hide ours
    top.set_ylabel("operations / s (log)")
    top.set_title("Throughput per scenario (ratio = gridactor / Redis)")
    top.set_xticks(x, names, rotation=25, ha="right", fontsize=8)
    top.legend()
    bottom.bar([i - width / 2 for i in x], [r.p50_ms or 0 for r in ran], width, label="p50")
    bottom.bar([i + width / 2 for i in x], [r.p99_ms or 0 for r in ran], width, label="p99")
    bottom.set_yscale("log")
    bottom.set_ylabel("latency (ms, log)")
    bottom.set_title("gridactor latency percentiles")
    bottom.set_xticks(x, names, rotation=25, ha="right", fontsize=8)
    bottom.legend()
    fig.tight_layout()
    path = results_dir / f"{stamp}.png"
    fig.savefig(path, dpi=100)
    fig.savefig(results_dir / "latest.png", dpi=100)
    plt.close(fig)
    return path
