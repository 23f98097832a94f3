from django.urls import path
from rest_framework.routers import DefaultRouter

from . import callback_views, handling_views, measures_views, public_views, supervision_views, views

router = DefaultRouter()
router.register("tickets", views.TicketViewSet, basename="ticket")
router.register("categories", views.CategoryViewSet, basename="category")
router.register("departments", views.DepartmentViewSet, basename="department")
router.register("regions", views.RegionViewSet, basename="region")
router.register("callbacks", callback_views.CallbackTaskViewSet, basename="callback")
router.register("supervision-orders", supervision_views.SupervisionOrderViewSet, basename="supervision-order")

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    path("measures/", measures_views.MeasuresView.as_view(), name="measures"),
    path("measures/ranking/", measures_views.RankingView.as_view(), name="measures-ranking"),
    path("measures/hot-topics/", measures_views.HotTopicsView.as_view(), name="measures-hot-topics"),
    path("measures/export.xlsx", measures_views.ExportView.as_view(), name="measures-export"),
    path("public/tickets/<str:number>/rating/", callback_views.PublicRatingView.as_view(), name="public-ticket-rating"),
    path("public/challenge/", public_views.PublicChallengeView.as_view(), name="public-challenge"),
    path("public/tickets/", public_views.PublicTicketCreateView.as_view(), name="public-ticket-create"),
    path("public/tickets/<str:number>/", public_views.PublicTicketStatusView.as_view(), name="public-ticket-status"),
    path("tickets/<int:ticket_id>/handling/", handling_views.HandlingView.as_view(), name="ticket-handling"),
    path(
        "tickets/<int:ticket_id>/handling-unit/", handling_views.HandToUnitView.as_view(), name="ticket-handling-unit"
    ),
    path(
        "tickets/<int:ticket_id>/assisting-replies/",
        handling_views.AssistingRepliesView.as_view(),
        name="ticket-assisting-replies",
    ),
    path("tickets/<int:ticket_id>/attachments/", handling_views.AttachmentsView.as_view(), name="ticket-attachments"),
    path(
        "tickets/<int:ticket_id>/attachments/<int:attachment_id>/",
        handling_views.AttachmentDownloadView.as_view(),
        name="ticket-attachment-download",
    ),
    path("tickets/<int:ticket_id>/notes/", handling_views.NotesView.as_view(), name="ticket-notes"),
    path(
        "workbench/departments/<int:department_id>/inbox/",
        handling_views.WorkbenchInboxView.as_view(),
        name="workbench-inbox",
    ),
    path(
        "tickets/<int:ticket_id>/supervision-orders/",
        supervision_views.TicketSupervisionOrdersView.as_view(),
        name="ticket-supervision-orders",
    ),
    path("tickets/<int:ticket_id>/urge/", supervision_views.TicketUrgeView.as_view(), name="ticket-urge"),
    *router.urls,
]
