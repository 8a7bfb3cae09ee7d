"""`mepr predict` on a list of videos: the per-video JSON (+ HTML) and the batch summary.

``OUT/<id>/prediction.json`` (+ ``report.html``) per video, ``OUT/summary.json`` (+
``index.html``) for the batch.  A video that cannot be read is recorded in the summary and
the others go on.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mepr.predict.errors import PredictError
from mepr.predict.extraction import Extraction
from mepr.predict.inputs import VIDEO_EXTENSIONS, collect_videos
from mepr.predict.jsonio import write_json
from mepr.predict.predictor import Predictor


@dataclass
class BatchResult:
    out_dir: Path
    ok: list[dict[str, Any]]  # prediction records
    failed: list[dict[str, str]]  # {"id", "path", "error"}
    seconds: dict[str, float]
    thumbs: dict[str, str] = field(default_factory=dict)  # video id -> data: URI (index page)

    @property
    def n_videos(self) -> int:
        return len(self.ok) + len(self.failed)

    @property
    def videos_per_second(self) -> float:
        busy = self.seconds.get("predict", 0.0)
        return self.n_videos / busy if busy > 0 else float("nan")


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), max(1, size)):
        yield items[i : i + size]


def predict_videos(
    videos: Iterable[str | Path],
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    results_root: str | Path | None = None,
    device: str | None = None,
    chunk: int = 32,
    html: bool = True,
    progress: bool = True,
) -> BatchResult:
    """Predict every video, writing ``OUT/<id>/prediction.json`` (+ ``report.html``) per
    video and ``OUT/summary.json`` (+ ``index.html``) for the batch.

    Models are loaded once; videos are extracted one at a time and embedded and predicted
    `chunk` at a time.  A video that cannot be read is recorded in the summary and the
    others go on.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    out_dir = Path(out_dir)
    inputs = collect_videos(videos)
    if not inputs:
        raise PredictError(
            "no videos given (folders are searched for " + ", ".join(sorted(VIDEO_EXTENSIONS)) + ")"
        )
    ok: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    thumbs: dict[str, str] = {}
    with Predictor(model_dir, results_root=results_root, device=device) as predictor:
        t_pred = time.perf_counter()
        bar = tqdm(total=len(inputs), desc="mepr predict", unit="video", disable=not progress)
        for group in _chunks(inputs, chunk):
            batch: list[Extraction] = []
            for video in group:
                bar.set_postfix_str(video.path.name[:40], refresh=False)
                ex = predictor.extract(video)
                if ex.failed:
                    failed.append(
                        {
                            "id": video.video_id,
                            "path": str(video.path),
                            "error": ex.failure_reason(),
                        }
                    )
                    bar.write(f"mepr predict: {video.path}: {ex.failure_reason()}", file=sys.stderr)
                else:
                    batch.append(ex)
                bar.update(1)
            bar.set_postfix_str(f"models on {len(batch)} video(s)")
            for ex, record in zip(batch, predictor.predict(batch), strict=True):
                try:
                    thumb = _write_video(out_dir, ex, record, html=html)
                    ok.append(record)
                    if thumb:
                        thumbs[ex.video.video_id] = thumb
                except Exception as e:  # a report that cannot be written is that video's error
                    failed.append(
                        {
                            "id": ex.video.video_id,
                            "path": str(ex.video.path),
                            "error": f"writing outputs failed: {e}",
                        }
                    )
                    bar.write(
                        f"mepr predict: {ex.video.path}: writing outputs failed: {e}",
                        file=sys.stderr,
                    )
        bar.close()
        seconds = {
            "load_models": predictor.load_seconds,
            "predict": time.perf_counter() - t_pred,
        }
    seconds["total"] = time.perf_counter() - start
    result = BatchResult(out_dir, ok, failed, seconds, thumbs)
    _write_summary(result, model_dir, html=html)
    return result


def _write_video(
    out_dir: Path, ex: Extraction, record: dict[str, Any], *, html: bool
) -> str | None:
    """Write the video's JSON (and HTML); return its thumbnail for the index page."""
    d = out_dir / ex.video.video_id
    d.mkdir(parents=True, exist_ok=True)
    thumb = None
    if html:
        from mepr.report.video import render_video_report, thumbnail_uri

        t = time.perf_counter()
        page = render_video_report(record, ex)
        thumb = thumbnail_uri(ex)
        record["timings_s"]["report_s"] = time.perf_counter() - t
        (d / "report.html").write_text(page, encoding="utf-8")
    timings = record["timings_s"]
    timings["total_s"] = sum(v for k, v in timings.items() if k != "total_s")
    write_json(d / "prediction.json", record)
    return thumb


def _write_summary(result: BatchResult, model_dir: str | Path, *, html: bool) -> None:
    summary = {
        "schema": "mepr.prediction_batch",
        "version": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": str(model_dir),
        "n_videos": result.n_videos,
        "n_ok": len(result.ok),
        "n_failed": len(result.failed),
        "videos_per_second": result.videos_per_second,
        "seconds": result.seconds,
        "videos": [
            {
                "id": r["video"]["id"],
                "path": r["video"]["path"],
                "prediction": f"{r['video']['id']}/prediction.json",
                "report": f"{r['video']['id']}/report.html" if html else None,
                "top_emotion": r["emotion"]["top"],
                "emotion": r["emotion"]["probabilities"],
                "personality": r["personality"]["scores"],
                "missing_modalities": r["missing_modalities"],
            }
            for r in result.ok
        ],
        "failed": result.failed,
    }
    result.out_dir.mkdir(parents=True, exist_ok=True)
    write_json(result.out_dir / "summary.json", summary)
    if html:
        from mepr.report.video import render_index

        page = render_index(summary, result.ok, result.thumbs)
        (result.out_dir / "index.html").write_text(page, encoding="utf-8")
