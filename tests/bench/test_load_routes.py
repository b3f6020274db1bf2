"""The load report names each request by its route pattern, the same one Django resolves."""

import pytest
from django.urls import resolve

from bench.load.routes import (
    compile_routes,
    django_route_templates,
    django_route_to_template,
    route_name,
)


def test_django_routes_become_templates_with_non_default_converters_kept():
    assert django_route_to_template("api/v1/posts/<str:post_id>/like") == (
        "/api/v1/posts/{post_id}/like"
    )
    assert django_route_to_template("api/v1/users/<handle>") == "/api/v1/users/{handle}"
    assert django_route_to_template("api/v1/api-keys/<uuid:key_id>") == (
        "/api/v1/api-keys/{key_id:uuid}"
    )
    assert django_route_to_template("healthz") == "/healthz"


def test_a_path_is_named_by_its_pattern_and_its_query_keys_without_values():
    routes = compile_routes(["/api/v1/feed/for_you", "/api/v1/posts/{post_id}/like"])

    assert route_name("/api/v1/posts/pst_0190abcdef/like", routes) == (
        "/api/v1/posts/{post_id}/like"
    )
    assert route_name("/api/v1/feed/for_you?limit=5&cursor=abc", routes) == (
        "/api/v1/feed/for_you?cursor&limit"
    )
    assert route_name("http://127.0.0.1:8000/api/v1/feed/for_you", routes) == (
        "/api/v1/feed/for_you"
    )


def test_the_first_matching_route_wins_as_in_django():
    literal_first = compile_routes(["/v1/videos/characters", "/v1/videos/{video_id}"])
    param_first = compile_routes(["/v1/videos/{video_id}", "/v1/videos/characters"])

    assert route_name("/v1/videos/characters", literal_first) == "/v1/videos/characters"
    assert route_name("/v1/videos/characters", param_first) == "/v1/videos/{video_id}"


def test_converters_restrict_what_a_parameter_matches():
    routes = compile_routes(["/holders/{holder_id:int}/terms", "/keys/{key_id:uuid}"])

    assert route_name("/holders/42/terms", routes) == "/holders/{holder_id}/terms"
    # Not an int, not a UUID: no route matches, so the fallback names them.
    assert route_name("/holders/abc/terms", routes) == "/holders/abc/terms"
    assert route_name("/keys/not-a-uuid", routes) == "/keys/not-a-uuid"
    assert route_name("/keys/0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b", routes) == "/keys/{key_id}"


def test_an_unknown_path_keeps_its_words_and_hides_its_ids():
    assert route_name("/admin/accounts/user/12/change/", []) == (
        "/admin/accounts/user/{id}/change/"
    )
    assert route_name("/x/0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b/y", []) == "/x/{id}/y"
    assert route_name("/x/video_0190a5b21c3d/y", []) == "/x/{id}/y"
    assert route_name("/api/v1/feed/for_you", []) == "/api/v1/feed/for_you"


def test_an_unknown_converter_is_refused():
    with pytest.raises(ValueError, match="unknown converter 'hex'"):
        compile_routes(["/a/{x:hex}"])


# Every kind of path the locustfile requests, with ids of the shapes the API hands out.
LOAD_PATHS = [
    "/api/v1/feed/for_you",
    "/api/v1/feed/following",
    "/api/v1/posts/pst_0190a5b21c3d7e4f8a9b0c1d2e3f4a5b",
    "/api/v1/posts/pst_0190a5b21c3d7e4f8a9b0c1d2e3f4a5b/like",
    "/api/v1/posts/pst_0190a5b21c3d7e4f8a9b0c1d2e3f4a5b/views",
    "/api/v1/posts/pst_0190a5b21c3d7e4f8a9b0c1d2e3f4a5b/comments",
    "/api/v1/generations",
    "/api/v1/generations/video_0190a5b21c3d7e4f8a9b0c1d2e3f4a5b",
    "/api/v1/generations/video_0190a5b21c3d7e4f8a9b0c1d2e3f4a5b/cancel",
    "/v1/videos/characters",
    "/v1/videos/video_0190a5b21c3d7e4f8a9b0c1d2e3f4a5b",
    "/api/v1/api-keys/0190a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b",
]


@pytest.mark.parametrize("path", LOAD_PATHS)
def test_route_names_agree_with_djangos_resolver(path):
    routes = compile_routes(django_route_templates())

    expected = django_route_to_template(resolve(path).route)
    assert route_name(path, routes) == compile_routes([expected])[0].display
