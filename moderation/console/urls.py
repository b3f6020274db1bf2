from django.contrib.auth import views as auth_views
from django.urls import path

from moderation.console import views

app_name = "staff"

# Mounted at /staff/.
urlpatterns = [
    path(
        "login",
        auth_views.LoginView.as_view(
            template_name="moderation/console/login.html",
            redirect_authenticated_user=True,
            next_page="staff:queue",
        ),
        name="login",
    ),
    path("logout", auth_views.LogoutView.as_view(next_page="staff:login"), name="logout"),
    path("", views.queue, name="queue"),
    path("take", views.take_next, name="take"),
    path("cases/<str:case_id>", views.case_page, name="case"),
    path("cases/<str:case_id>/act", views.case_act, name="case-act"),
    path("cases/<str:case_id>/notes", views.case_note, name="case-note"),
    path("appeals", views.appeals, name="appeals"),
    path("appeals/<str:appeal_id>", views.appeal_page, name="appeal"),
    path("appeals/<str:appeal_id>/act", views.appeal_act, name="appeal-act"),
]
