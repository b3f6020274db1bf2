"""Request names for the load report: the route a URL matched, not the URL itself.

Per-URL statistics are useless for a feed of thousands of posts (one row per post), so every
request is named by its route pattern, ``/api/v1/posts/{post_id}/like``, plus the names (not
the values) of its query parameters, ``/api/v1/feed/for_you?cursor``: a first For You page
ranks a new session, a page with a cursor only reads one, and the two cost very differently.

The patterns come from Django's own URL configuration (:func:`django_route_templates`, run by
the load runner, which has Django loaded) so they cannot drift from the real routes; naming a
path (:func:`route_name`) needs only the list, because the locust process must not import
Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

# Django's path converters, as regular expressions over one or more path segments.
CONVERTERS = {
    "str": r"[^/]+",
    "int": r"[0-9]+",
    "slug": r"[-a-zA-Z0-9_]+",
    "uuid": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "path": r".+",
}
_DJANGO_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")
_TEMPLATE_PARAM = re.compile(r"\{(?P<name>\w+)(?::(?P<converter>\w+))?\}")
# A path segment that looks like an identifier: digits, a UUID, or a prefixed opaque id such
# as ``video_0190...`` or ``pst_...``.
_ID_SEGMENT = re.compile(
    r"^(?:[0-9]+|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
    r"|[a-z]+_[0-9A-Za-z]{8,})$"
)


def django_route_to_template(route: str) -> str:
    """``api/v1/posts/<str:post_id>/like`` -> ``/api/v1/posts/{post_id}/like``; a converter
    other than ``str`` is kept (``{key_id:uuid}``) so the template matches what Django does."""

    def replace(match: re.Match) -> str:
        converter = match.group("converter") or "str"
        name = match.group("name")
        return f"{{{name}}}" if converter == "str" else f"{{{name}:{converter}}}"

    return "/" + _DJANGO_PARAM.sub(replace, route.lstrip("^"))


@dataclass(frozen=True)
class Route:
    template: str
    pattern: re.Pattern

    @property
    def display(self) -> str:
        """The template without converter names: what a report shows."""
        return _TEMPLATE_PARAM.sub(lambda m: "{" + m.group("name") + "}", self.template)


def compile_routes(templates: list[str]) -> list[Route]:
    """Routes to match in the given order (Django's order: the first match wins)."""
    routes = []
    for template in templates:
        parts, last = [], 0
        for match in _TEMPLATE_PARAM.finditer(template):
            parts.append(re.escape(template[last : match.start()]))
            converter = match.group("converter") or "str"
            if converter not in CONVERTERS:
                raise ValueError(f"unknown converter {converter!r} in {template!r}")
            parts.append(f"(?:{CONVERTERS[converter]})")
            last = match.end()
        parts.append(re.escape(template[last:]))
        routes.append(Route(template, re.compile("^" + "".join(parts) + "$")))
    return routes


def _fallback(path: str) -> str:
    segments = path.split("/")
    return "/".join("{id}" if _ID_SEGMENT.match(s) else s for s in segments)


def route_name(url: str, routes: list[Route]) -> str:
    """The name a request to ``url`` (a path, with or without query and host) is reported by.

    An unknown path keeps its literal segments and replaces the ones that look like ids with
    ``{id}``, so even a route missing from ``routes`` does not explode into one row per id.
    """
    parts = urlsplit(url)
    path = parts.path or "/"
    name = next((r.display for r in routes if r.pattern.match(path)), None) or _fallback(path)
    keys = sorted({key for key, _ in parse_qsl(parts.query, keep_blank_values=True)})
    return name + ("?" + "&".join(keys) if keys else "")


def django_route_templates() -> list[str]:
    """Every ``path()`` route of the project's URL configuration, in resolution order, as
    templates. Regex routes (the admin's) are left out; :func:`route_name` falls back for them.
    Needs Django set up."""
    from django.urls import URLPattern, URLResolver, get_resolver
    from django.urls.resolvers import RoutePattern

    templates: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            if not isinstance(entry.pattern, RoutePattern):
                continue
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern):
                templates.append(django_route_to_template(route))

    walk(get_resolver().url_patterns, "")
    return templates
