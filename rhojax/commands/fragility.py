"""``rhojax fragility``: does the Compression Fragility Index order maps like uniform compression does?

Each sweep folder's ``summary.json`` gives, per complete map (model, method, level), the CFI and its
yardstick: the perplexity ratio with every site compressed at once. The agreement is Kendall's tau
between the two over all maps of all folders (1 = the CFI orders them exactly as the yardstick).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rhojax.commands.common import console, guarded, output_dir
from rhojax.errors import RhojaxError
from rhojax.report.jsonio import write_json
from rhojax.report.sensitivity_figures import fragility_scatter
from rhojax.sensitivity.summary import kendall_tau


def fragility_points(folders: list[Path]) -> list[dict]:
    """``{model, map, cfi, uniform_ratio}`` for every complete map with a yardstick in ``folders``."""
    points = []
    for folder in folders:
        path = Path(folder) / "summary.json"
        if not path.is_file():
            raise RhojaxError(f"{path} does not exist: run `rhojax sweep MODEL --out {folder}` first")
        summary = json.loads(path.read_text())
        for label, m in summary.get("maps", {}).items():
            if m.get("cfi") is not None and m.get("uniform_ratio") is not None:
                points.append({"model": summary["model"], "map": label, "folder": str(folder), "cfi": m["cfi"],
                               "uniform_ratio": m["uniform_ratio"]})
    if len(points) < 2:
        raise RhojaxError(f"{len(points)} complete map(s) with a uniform-compression yardstick in "
                          f"{', '.join(map(str, folders))}: the agreement needs at least two (rerun `rhojax sweep` "
                          "on a folder to add its yardstick)")
    return points


@guarded
def fragility(
    folders: list[Path] = typer.Argument(..., help="Sweep result folders (each with summary.json)."),
    out: Path = typer.Option(..., "--out", help="Folder for fragility.json and fragility.png."),
) -> None:
    """Validate the CFI: Kendall tau between CFI and the all-sites-compressed perplexity ratio over maps."""
    points = fragility_points(folders)
    tau = kendall_tau([p["cfi"] for p in points], [p["uniform_ratio"] for p in points])
    out = output_dir(out)
    write_json(out / "fragility.json", {"kendall_tau": tau, "maps": len(points), "points": points})
    fragility_scatter(points, f"CFI vs uniform compression ({len(points)} maps, Kendall tau {tau:.2f})",
                      out / "fragility.png")
    for p in sorted(points, key=lambda p: p["cfi"]):
        console.print(f"{p['model']:<24} {p['map']:<16} CFI {p['cfi']:.4f}  all sites: ppl x{p['uniform_ratio']:.4g}")
    console.print(f"Kendall tau (CFI vs uniform ratio) {tau:.3f} over {len(points)} maps; "
                  f"wrote {out / 'fragility.json'}")
