from django.urls import path

app_name = "ticketing"

urlpatterns: list = []
