from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from config.health import healthz
from rooms.admin import sign_in_urls as admin_sign_in_urls

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # The admin's login and password change under the site's sign-in throttle (rooms/admin.py),
    # listed first so that they answer instead of the admin's own.
    path("admin/", include(admin_sign_in_urls)),
    path("admin/", admin.site.urls),
    path("accounts/", include("rooms.account_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("", include("rooms.urls")),
]
