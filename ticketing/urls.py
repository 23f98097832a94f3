from django.urls import path

from .views import board as board_pages
from .views import callbacks as callback_pages
from .views import public as public_pages
from .views import workbench as workbench_pages

app_name = "ticketing"

urlpatterns: list = [
    path("callbacks/", callback_pages.callbacks, name="callbacks"),
    path("workbench/", workbench_pages.workbench, name="workbench"),
    path("board/", board_pages.board, name="board"),
    path("public/", public_pages.home, name="public-home"),
    path("public/submit/", public_pages.submit, name="public-submit"),
    path("public/status/", public_pages.status, name="public-status"),
    path("public/status/rate/", public_pages.rate, name="public-rate"),
]
