"""A small line chart drawn with OpenCV (matplotlib is not a dependency): panels side by side,
each with named series, axis ranges printed at the corners."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

COLOURS = [(0, 0, 0), (31, 119, 180), (255, 127, 14), (150, 150, 150), (44, 160, 44), (214, 39, 40)]  # RGB


def line_chart(panels: list[tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]], path: Path, x_label: str,
               y_label: str, width: int = 520, height: int = 380, y_from_zero: bool = True) -> None:
    """``panels``: (title, {series name: (x, y)}); one chart per panel, side by side, written to ``path``."""
    images = []
    for title, series in panels:
        canvas = np.full((height, width, 3), 255, np.uint8)
        left, right, top, bottom = 60, width - 15, 30, height - 45
        xs = np.concatenate([np.asarray(x, float) for x, _ in series.values()])
        ys = np.concatenate([np.asarray(y, float) for _, y in series.values()])
        ys = ys[np.isfinite(ys)]
        x0, x1 = float(xs.min()), float(xs.max())
        if y_from_zero:
            y0, y1 = min(0.0, float(ys.min())), float(ys.max()) * 1.05
        else:
            margin = 0.05 * max(float(ys.max() - ys.min()), 1e-6)
            y0, y1 = float(ys.min()) - margin, float(ys.max()) + margin
        cv2.rectangle(canvas, (left, top), (right, bottom), (0, 0, 0), 1)
        for i, (name, (x, y)) in enumerate(series.items()):
            px = left + (np.asarray(x, float) - x0) / max(x1 - x0, 1e-9) * (right - left)
            py = bottom - (np.asarray(y, float) - y0) / max(y1 - y0, 1e-9) * (bottom - top)
            colour = COLOURS[i % len(COLOURS)][::-1]
            ok = np.isfinite(py)
            cv2.polylines(canvas, [np.stack([px[ok], py[ok]], 1).astype(np.int32)], False, colour, 2, cv2.LINE_AA)
            cv2.putText(canvas, name, (right - 190, top + 18 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1,
                        cv2.LINE_AA)
        text = [(title, (left, 20), 0.55), (f"{y1:.3g}", (5, top + 5), 0.45), (f"{y0:.3g}", (5, bottom + 5), 0.45),
                (f"{x0:.3g}", (left - 5, bottom + 18), 0.45), (f"{x1:.3g}", (right - 30, bottom + 18), 0.45),
                (x_label, (left + 40, height - 8), 0.45), (y_label, (5, height - 8 - 18), 0.4)]
        for string, origin, scale in text:
            cv2.putText(canvas, string, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
        images.append(canvas)
    cv2.imwrite(str(path), np.concatenate(images, axis=1))
