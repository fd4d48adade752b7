"""Generate the desktop's bundled resources: the app icon (SVG + PNGs) and two short WAV alerts.

Run once after changing them: `.venv/bin/python scripts/make_desktop_resources.py`.
The outputs are committed (a few KB each), so the app and its bundle need no build step.
"""

from __future__ import annotations

import math
import os
import struct
import wave
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "desktop" / "ui" / "resources"
RATE = 16000

ICON_SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect x="2" y="2" width="60" height="60" rx="14" fill="#1f4e79"/>
  <polyline points="8,36 20,36 26,20 34,48 40,30 44,36 56,36" fill="none" stroke="#ffd666"
            stroke-width="5" stroke-linecap="round" stroke-linejoin="round"/>
</svg>
"""


def tone(frequencies: list[tuple[float, float]], volume: float = 0.5) -> bytes:
    """Concatenated sine notes (frequency Hz, seconds) with a soft attack and decay."""
    frames = bytearray()
    for frequency, seconds in frequencies:
        count = int(RATE * seconds)
        for i in range(count):
            envelope = min(1.0, i / (RATE * 0.01)) * math.exp(-4.0 * i / count)
            sample = volume * envelope * math.sin(2 * math.pi * frequency * i / RATE)
            frames += struct.pack("<h", int(sample * 32767))
    return bytes(frames)


def write_wav(path: Path, data: bytes) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(data)


def render_png(svg: Path, png: Path, size: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    QSvgRenderer(str(svg)).render(painter)
    painter.end()
    image.save(str(png), b"PNG")


def main() -> None:
    RESOURCES.mkdir(parents=True, exist_ok=True)
    svg = RESOURCES / "icon.svg"
    svg.write_text(ICON_SVG)
    for size in (64, 256):
        render_png(svg, RESOURCES / f"icon-{size}.png", size)
    write_wav(RESOURCES / "populated.wav", tone([(660, 0.12), (880, 0.18)]))
    write_wav(RESOURCES / "offers.wav", tone([(523, 0.09), (659, 0.09), (784, 0.2)]))
    for path in sorted(RESOURCES.iterdir()):
        print(f"{path.name}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
