"""The measures as an Excel workbook: summary, by department, ranking, hot topics.

Only aggregates go in: no ticket, no caller, no staff name. Rates are stored as fractions with a percentage
format, so the numbers stay usable in formulas.
"""

import datetime as dt
import io

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from hotline import clock

from . import measures
from .calendar import TZ
from .measures import COUNT_LABELS, RATE_LABELS, Counts, Period, Topic
from .models import User

PERCENT = "0.0%"
HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="1F4E79")

# The columns of the by-department sheet, in reading order.
COUNT_COLUMNS = [
    "intake",
    "instant_replies",
    "dispatched",
    "accepted_on_time",
    "accepted_late",
    "accept_lapsed",
    "returns",
    "replied",
    "replied_on_time",
    "replies_approved",
    "resolved",
    "callbacks_answered",
    "reopened",
]
RATE_COLUMNS = ["response", "resolution", "satisfaction", "instant_reply_share", "return", "reopen", "reply_on_time"]


def measures_workbook(*, user: User, period: Period, now: dt.datetime | None = None) -> bytes:
    now = now or clock.now()
    # All four parts first: a refusal must come before any sheet is built.
    summary = measures.measures(user=user, period=period, now=now)
    by_department = measures.measures(user=user, period=period, group_by="department", now=now)
    ranking = measures.department_ranking(user=user, period=period, now=now)
    hot = measures.hot_topics(user=user, period=period, limit=20)

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "汇总"
    _summary(sheet, period, summary.total, now)
    _by_department(book.create_sheet("按单位"), by_department)
    _ranking(book.create_sheet("排名"), ranking)
    _hot(book.create_sheet("热点"), hot)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _header(sheet: Worksheet, row: int, titles: list[str]) -> None:
    for column, title in enumerate(titles, start=1):
        cell = sheet.cell(row=row, column=column, value=title)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center", wrap_text=True)
    sheet.freeze_panes = sheet.cell(row=row + 1, column=2)


def _widths(sheet: Worksheet, first: int, others: int) -> None:
    sheet.column_dimensions["A"].width = first
    for column in range(2, sheet.max_column + 1):
        sheet.column_dimensions[get_column_letter(column)].width = others


def _rate_cell(sheet: Worksheet, row: int, column: int, value: float | None) -> None:
    # An empty rate (nothing to divide by) is shown as a dash, never as 0%.
    cell = sheet.cell(row=row, column=column, value=value if value is not None else "—")
    if value is not None:
        cell.number_format = PERCENT
    else:
        cell.alignment = Alignment(horizontal="right")


def _summary(sheet: Worksheet, period: Period, total: Counts, now: dt.datetime) -> None:
    sheet["A1"] = "12345/8890 热线统计汇总"
    sheet["A1"].font = Font(bold=True, size=14)
    sheet["A2"] = "统计区间"
    sheet["B2"] = period.label()
    sheet["C2"] = f"导出时间 {now.astimezone(TZ):%Y-%m-%d %H:%M}"
    _header(sheet, 3, ["指标", "数值"])
    row = 4
    rates = total.rates()
    for name in ("response", "resolution", "satisfaction", "instant_reply_share", "return", "reopen", "reply_on_time"):
        sheet.cell(row=row, column=1, value=RATE_LABELS[name])
        _rate_cell(sheet, row, 2, rates[name])
        row += 1
    counts = total.as_dict()
    for name in COUNT_LABELS:
        sheet.cell(row=row, column=1, value=COUNT_LABELS[name])
        sheet.cell(row=row, column=2, value=counts[name])
        row += 1
    _widths(sheet, 18, 22)


def _by_department(sheet: Worksheet, report: measures.Report) -> None:
    _header(sheet, 1, ["承办单位", *(COUNT_LABELS[c] for c in COUNT_COLUMNS), *(RATE_LABELS[r] for r in RATE_COLUMNS)])
    for row_number, row in enumerate(report.rows, start=2):
        sheet.cell(row=row_number, column=1, value=row.label)
        counts = row.counts.as_dict()
        for offset, name in enumerate(COUNT_COLUMNS, start=2):
            sheet.cell(row=row_number, column=offset, value=counts[name])
        rates = row.counts.rates()
        for offset, name in enumerate(RATE_COLUMNS, start=2 + len(COUNT_COLUMNS)):
            _rate_cell(sheet, row_number, offset, rates[name])
    _widths(sheet, 28, 11)


def _ranking(sheet: Worksheet, rows: list[measures.RankingRow]) -> None:
    weights = measures.ranking_weights()
    titles = ["名次", "承办单位", "得分"]
    titles += [f"{RATE_LABELS[name]}（权重 {weights[name]:g}）" for name in measures.RANKED_RATES]
    titles += ["派单量", "审核通过答复量", "有效回访量"]
    _header(sheet, 1, titles)
    for row_number, row in enumerate(rows, start=2):
        sheet.cell(row=row_number, column=1, value=row.rank if row.rank is not None else "—")
        sheet.cell(row=row_number, column=2, value=row.name)
        score = sheet.cell(row=row_number, column=3, value=round(row.score, 2) if row.score is not None else "—")
        score.number_format = "0.00"
        for offset, name in enumerate(measures.RANKED_RATES, start=4):
            _rate_cell(sheet, row_number, offset, row.rates[name])
        sheet.cell(row=row_number, column=7, value=row.counts.dispatched)
        sheet.cell(row=row_number, column=8, value=row.counts.replies_approved)
        sheet.cell(row=row_number, column=9, value=row.counts.callbacks_answered)
    _widths(sheet, 8, 16)
    sheet.column_dimensions["B"].width = 28


def _hot(sheet: Worksheet, hot: measures.HotTopics) -> None:
    _header(sheet, 1, ["类型", "名称", "本期", f"上期（{hot.previous_period.label()}）", "变化", "变化率", "说明"])
    row_number = 2
    for kind, topics in (("诉求分类", hot.categories), ("地点", hot.places), ("关键词", hot.words)):
        for topic in topics:
            _topic_row(sheet, row_number, kind, topic)
            row_number += 1
    _widths(sheet, 10, 12)
    sheet.column_dimensions["B"].width = 30


def _topic_row(sheet: Worksheet, row: int, kind: str, topic: Topic) -> None:
    sheet.cell(row=row, column=1, value=kind)
    sheet.cell(row=row, column=2, value=topic.label)
    sheet.cell(row=row, column=3, value=topic.count)
    sheet.cell(row=row, column=4, value=topic.previous)
    sheet.cell(row=row, column=5, value=topic.change)
    _rate_cell(sheet, row, 6, topic.change_rate)
    if topic.estimated:
        sheet.cell(row=row, column=7, value="按最新工单抽样推算")
