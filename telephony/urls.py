from django.urls import path

from . import views

app_name = "telephony"

urlpatterns = [
    path("desk/", views.desk_page, name="desk"),
]
