"""A live QtCharts line chart of a campaign's pending and current offers and its spend."""

from __future__ import annotations

import bisect
from datetime import datetime

from PySide6.QtCharts import QChart, QChartView, QDateTimeAxis, QLineSeries, QValueAxis
from PySide6.QtCore import QDateTime, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QPainter, QPalette
from PySide6.QtWidgets import QWidget

from desktop.client.history import ChartPoint
from desktop.ui.theme import is_dark

MAX_POINTS = 2000


class StatsChart(QChartView):
    """Offers on the left axis, spend on the right, time along the bottom."""

    def __init__(self, parent: QWidget | None = None) -> None:
        chart = QChart()
        super().__init__(chart, parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumHeight(220)
        chart.setMargins(chart.margins())
        chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        self.pending, self.current, self.spend = QLineSeries(), QLineSeries(), QLineSeries()
        self.pending.setName("Pending offers")
        self.current.setName("Current offers")
        self.spend.setName("Spend to date")
        self.time_axis = QDateTimeAxis()
        self.time_axis.setFormat("HH:mm:ss")
        self.time_axis.setTitleText("Time")
        self.offers_axis = QValueAxis()
        self.offers_axis.setLabelFormat("%d")
        self.offers_axis.setTitleText("Offers")
        self.spend_axis = QValueAxis()
        self.spend_axis.setLabelFormat("%.2f")
        self.spend_axis.setTitleText("Spend")
        chart.addAxis(self.time_axis, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(self.offers_axis, Qt.AlignmentFlag.AlignLeft)
        chart.addAxis(self.spend_axis, Qt.AlignmentFlag.AlignRight)
        for series, axis in (
            (self.pending, self.offers_axis),
            (self.current, self.offers_axis),
            (self.spend, self.spend_axis),
        ):
            chart.addSeries(series)
            series.attachAxis(self.time_axis)
            series.attachAxis(axis)
        self._points: list[ChartPoint] = []
        self.setAccessibleName("Chart of offers and spend over time")
        self.apply_palette()

    def apply_palette(self) -> None:
        """Colours from the application's palette: a dark chart in a dark theme."""
        palette = QGuiApplication.palette()
        chart = self.chart()
        themes = QChart.ChartTheme
        chart.setTheme(themes.ChartThemeDark if is_dark(palette) else themes.ChartThemeLight)
        chart.setBackgroundBrush(palette.brush(QPalette.ColorRole.Base))
        text = palette.color(QPalette.ColorRole.Text)
        chart.legend().setLabelColor(text)
        for axis in (self.time_axis, self.offers_axis, self.spend_axis):
            axis.setLabelsColor(text)
            axis.setTitleBrush(text)

    @property
    def points(self) -> list[ChartPoint]:
        return list(self._points)

    def add_point(self, point: ChartPoint) -> None:
        """Add a point in time order (history arrives after the live snapshot)."""
        at = bisect.bisect_right(self._points, point.at, key=lambda p: p.at)
        self._points.insert(at, point)
        x = float(_msecs(point.at))
        self.pending.insert(at, QPointF(x, point.pending_offers))
        self.current.insert(at, QPointF(x, point.current_offers))
        self.spend.insert(at, QPointF(x, point.spend_to_date))
        if len(self._points) > MAX_POINTS:
            del self._points[0]
            for series in (self.pending, self.current, self.spend):
                series.remove(0)
        self._rescale()

    def _rescale(self) -> None:
        first, last = self._points[0].at, self._points[-1].at
        start = QDateTime.fromMSecsSinceEpoch(_msecs(first))
        end = QDateTime.fromMSecsSinceEpoch(_msecs(last))
        if start == end:
            start = start.addSecs(-30)
            end = end.addSecs(30)
        self.time_axis.setRange(start, end)
        offers = max(max(p.pending_offers, p.current_offers) for p in self._points)
        spend = max(p.spend_to_date for p in self._points)
        self.offers_axis.setRange(0, max(10, offers * 1.1))
        self.spend_axis.setRange(0, max(10.0, spend * 1.1))


def _msecs(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
