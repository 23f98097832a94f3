from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/agent/", consumers.AgentConsumer.as_asgi()),
    path("ws/supervisor/", consumers.SupervisorConsumer.as_asgi()),
    path("ws/departments/<int:department_id>/", consumers.DepartmentConsumer.as_asgi()),
    path("ws/tickets/<int:ticket_id>/", consumers.TicketConsumer.as_asgi()),
    path("ws/public/tickets/<str:number>/", consumers.PublicTicketConsumer.as_asgi()),
]
