"""The benchmark report's PNG plots.

matplotlib is imported only here and only when a plot is drawn (it is an optional dependency, in
the ``bench`` extra); figures are drawn on the Agg canvas directly, never through pyplot, so no
display, backend selection or global figure state is involved.
"""

from __future__ import annotations

from pathlib import Path

Series = dict[str, list[tuple[float, float]]]


def missing() -> str | None:
    """None when matplotlib can be imported, else a line saying why there are no plots."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "skipped: matplotlib is not installed (pip install matplotlib, or gpuconv[bench])"
    return None


def _axes(title: str, xlabel: str, ylabel: str, ks: list[float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullLocator

    fig = Figure(figsize=(9, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_yscale("log")
    # the kernel sizes themselves as ticks: they are what a reader looks up
    ax.set_xticks(ks, labels=[f"{k:g}" for k in ks])
    ax.xaxis.set_minor_locator(NullLocator())
    # plain numbers (0.5, 20, 300) rather than powers of ten; minor labels at 2 and 5 only
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(_minor_label))
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    return fig, ax


def _minor_label(v: float, _pos) -> str:
    lead = f"{v:.0e}"[0]
    return f"{v:g}" if lead in "25" else ""


#: tab10 colours: the gpuconv algorithms keep theirs in every plot; peers take the rest in turn
_TAB10 = [f"C{i}" for i in range(10)]
_ALGORITHM_COLOURS = {"direct": "C0", "im2col": "C1", "fft": "C2", "overlap_add": "C3"}
_ALGORITHM_COLOURS["separable"] = "C4"


def _styles(methods: list[str]) -> dict[str, dict]:
    peers = iter(_TAB10[5:] + _TAB10[:5])
    out = {}
    for m in methods:
        if m == "gpuconv.auto":
            out[m] = {"color": "black", "linestyle": "--", "marker": "", "linewidth": 1.5}
        elif m.startswith("gpuconv."):
            colour = _ALGORITHM_COLOURS.get(m.removeprefix("gpuconv."), "C7")
            out[m] = {"color": colour, "linestyle": "-", "marker": "o", "linewidth": 1.8}
        else:
            out[m] = {"color": next(peers, "grey"), "linestyle": ":", "marker": "s"}
            out[m].update(linewidth=1.2, markersize=4)
    return out


def _ks(series: Series) -> list[float]:
    return sorted({k for pts in series.values() for k, _ in pts})


def _legend(ax) -> None:
    # outside the axes: inside, it hides the lines wherever it is put
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _lines(ax, series: Series) -> None:
    # gpuconv first (auto, then the algorithms), then the peers: the legend reads that way
    order = sorted(series, key=lambda m: (not m.startswith("gpuconv."), m != "gpuconv.auto"))
    styles = _styles(order)
    for method in order:
        pts = sorted(series[method])
        ax.plot([k for k, _ in pts], [v for _, v in pts], label=method, **styles[method])


def time_plot(
    path: Path, title: str, xlabel: str, series: Series, marks: list[tuple[float, float, str]]
) -> None:
    """Time (ms) against kernel size, one line per method, log-log; ``marks`` are the
    crossovers (k, time there, text), drawn as stars with their text."""
    ks = _ks(series)
    fig, ax = _axes(title, xlabel, "time (ms, median)", ks)
    _lines(ax, series)
    for i, (k, t, text) in enumerate(marks):
        ax.axvline(k, color="grey", linestyle=":", linewidth=0.8)
        ax.plot([k], [t], marker="*", markersize=14, color="crimson", zorder=5)
        # alternate above and below so that neighbouring crossovers stay readable, and keep
        # the last kernel size's text inside the axes
        dy = -18 if i % 2 else 14
        dx, ha = (-8, "right") if k == ks[-1] else (6, "left")
        ax.annotate(text, (k, t), xytext=(dx, dy), textcoords="offset points", fontsize=8, ha=ha)
    _legend(ax)
    fig.savefig(path, dpi=110)


def fraction_plot(path: Path, title: str, xlabel: str, series: Series) -> None:
    """Each gpuconv method's achieved fraction of the floor against kernel size (1: at it)."""
    fig, ax = _axes(title, xlabel, "floor time / measured time", _ks(series))
    _lines(ax, series)
    ax.axhline(1.0, color="grey", linewidth=1.0)
    _legend(ax)
    fig.savefig(path, dpi=110)
