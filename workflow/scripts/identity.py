"""Byte-identity of the demo's outputs, for reshapes that must not change behaviour.

    python workflow/scripts/identity.py digest [RESULTS]           # print the digests (JSON)
    python workflow/scripts/identity.py record [RESULTS]           # store them as the baseline
    python workflow/scripts/identity.py check [RESULTS]            # compare with the baseline
    python workflow/scripts/identity.py compare RESULTS BASE       # compare two runs' results

`make identity` runs the demo DAG and `mepr predict` on the demo videos in a fresh folder and
checks. The recorded baseline holds on the machine it was recorded on only: training in float32
takes other rounding paths on other CPUs, and early stopping then picks other epochs. On any
other machine, `make identity BASE=REV` runs commit REV too, here, and compares the two runs. Digested: `fusion/metrics.json` as bytes, and every file `mepr predict` wrote under
`predict/demo/`, with the wall-clock fields taken out first (JSON keys in `TIMING_KEYS`, and
in HTML every "1.23 s" / "videos/s" figure and ISO time stamp), since they differ on every run.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

BASELINE = Path(__file__).resolve().parents[2] / "tests" / "data" / "identity.json"
TIMING_KEYS = {"created", "seconds", "timings_s", "videos_per_second"}
_HTML_TIMING = [
    re.compile(r"\d+(\.\d+)? videos/s"),
    re.compile(r"\d+\.\d+ s\b"),
    re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[^\s<\"]*"),
]


def _drop_timing(value):
    if isinstance(value, dict):
        return {k: _drop_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_drop_timing(v) for v in value]
    return value


def normalised(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".json":
        return json.dumps(_drop_timing(json.loads(data)), sort_keys=True).encode()
    if path.suffix == ".html":
        text = data.decode()
        for pattern in _HTML_TIMING:
            text = pattern.sub("#", text)
        return text.encode()
    return data


def digests(results: Path) -> dict[str, str]:
    files = [results / "fusion" / "metrics.json"]
    files += sorted(p for p in (results / "predict" / "demo").rglob("*") if p.is_file())
    missing = [str(f) for f in files[:1] if not f.exists()]
    if missing or len(files) == 1:
        sys.exit(f"identity: no demo outputs under {results} (run `make identity`)")
    out = {}
    for f in files:
        raw = f.read_bytes() if f.name == "metrics.json" else normalised(f)
        out[f.relative_to(results).as_posix()] = hashlib.sha256(raw).hexdigest()
    return out


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("digest", "record", "check", "compare") or (
        argv[0] == "compare" and len(argv) != 3
    ):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    results = Path(argv[1] if len(argv) > 1 else "results")
    now = digests(results)
    if argv[0] == "compare":
        return _report(digests(Path(argv[2])), now, f"the run in {argv[2]}")
    if argv[0] == "digest":
        print(json.dumps(now, indent=1, sort_keys=True))
    elif argv[0] == "record":
        BASELINE.write_text(json.dumps(now, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"identity: {len(now)} digests recorded in {BASELINE}")
    else:
        return _report(json.loads(BASELINE.read_text(encoding="utf-8")), now, "the baseline")
    return 0


def _report(base: dict[str, str], now: dict[str, str], what: str) -> int:
    changed = sorted(k for k in base.keys() & now.keys() if base[k] != now[k])
    gone, new = sorted(base.keys() - now.keys()), sorted(now.keys() - base.keys())
    for label, names in (("changed", changed), ("missing", gone), ("new", new)):
        for name in names:
            print(f"identity: {label}: {name}")
    if changed or gone or new:
        return 1
    print(f"identity: all {len(now)} outputs identical to {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
