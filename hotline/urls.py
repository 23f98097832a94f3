from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token

admin.site.site_header = "12345/8890 热线管理后台"
admin.site.site_title = "热线管理后台"
admin.site.index_title = "基础数据与配置"

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("ticketing.api.urls")),
    path("api/v1/", include("telephony.api.urls")),
    path("api/v1/", include("knowledge_base.api.urls")),
    path("api/v1/", include("routing.api.urls")),
    path("kb/", include("knowledge_base.urls")),
    path("open311/v2/", include("ticketing.api.open311_urls")),
    path("", include("ticketing.urls")),
    path("", include("telephony.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(next_page="home"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="home"), name="logout"),
    path("api/v1/auth/token/", obtain_auth_token, name="api-token"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
