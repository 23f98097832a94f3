from django.urls import path

from . import views

urlpatterns = [
    path("cti/events/", views.CtiEventView.as_view(), name="cti-event"),
    path("calls/<int:call_id>/", views.CallDetailView.as_view(), name="call-detail"),
    path("calls/<int:call_id>/prompts/", views.CallPromptView.as_view(), name="call-prompt"),
    path("calls/<int:call_id>/ticket/", views.CallTicketView.as_view(), name="call-ticket"),
    path("calls/live/", views.LiveCallsView.as_view(), name="calls-live"),
    path("agents/me/state/", views.MyAgentStateView.as_view(), name="agent-my-state"),
    path("agents/me/tickets/", views.MyTicketsView.as_view(), name="agent-my-tickets"),
    path("agents/states/", views.AgentStatesView.as_view(), name="agent-states"),
    path(
        "desk/tickets/<int:ticket_id>/instant-reply/", views.DeskInstantReplyView.as_view(), name="desk-instant-reply"
    ),
    path("desk/tickets/<int:ticket_id>/dispatch/", views.DeskDispatchView.as_view(), name="desk-dispatch"),
    path("desk/tickets/<int:ticket_id>/transfer/", views.DeskTransferView.as_view(), name="desk-transfer"),
    path("desk/tickets/<int:ticket_id>/merge/", views.DeskMergeView.as_view(), name="desk-merge"),
]
