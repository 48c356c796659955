"""Strawberry's GraphiQL page with its seven CDN assets served by the app instead, so it
works with no internet. Only the URLs change: the SRI integrity hashes stay, so the browser
still refuses a file that is not the one the template names."""

from __future__ import annotations

import functools
import re

from strawberry.http.ides import get_graphql_ide_html

CDN = "https://unpkg.com/"
VENDOR = "/static/vendor/"
# The template's favicon is an inline SVG; ours is a file, so the page names no other host.
FAVICON = re.compile(r'<link\s+rel="icon"\s+href="data:[^"]*"\s*/>', re.DOTALL)


@functools.cache
def offline_graphiql_html() -> str:
    html = get_graphql_ide_html("graphiql").replace(CDN, VENDOR)
    return FAVICON.sub('<link rel="icon" href="/static/favicon.svg" />', html, count=1)
