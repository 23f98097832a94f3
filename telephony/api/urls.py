from django.urls import path

from . import views

urlpatterns = [
    path("cti/events/", views.CtiEventView.as_view(), name="cti-event"),
    path("calls/<int:call_id>/", views.CallDetailView.as_view(), name="call-detail"),
    path("calls/<int:call_id>/prompts/", views.CallPromptView.as_view(), name="call-prompt"),
]
