from django.urls import path

from .views import board as board_pages
from .views import callbacks as callback_pages
from .views import workbench as workbench_pages

app_name = "ticketing"

urlpatterns: list = [
    path("callbacks/", callback_pages.callbacks, name="callbacks"),
    path("workbench/", workbench_pages.workbench, name="workbench"),
    path("board/", board_pages.board, name="board"),
]
