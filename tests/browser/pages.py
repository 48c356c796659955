"""Browser pages for the tests, cut off from the internet: any request to another host is
aborted and recorded, so a page that still needs a CDN shows it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class OfflinePage:
    page: Any
    outside: list[str] = field(default_factory=list)  # URLs of other hosts it asked for
    console_errors: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def offline_page(browser: Any, base_url: str, **options: Any) -> AsyncIterator[OfflinePage]:
    """A page that may reach `base_url`'s host and the hosts of the URLs in the option
    `also` (an OpenID provider's, say), nothing else; the other options are the context's."""
    also: tuple[str, ...] = tuple(options.pop("also", ()))
    context = await browser.new_context(**options)
    reachable = {urlsplit(url).netloc for url in (base_url, *also)} | {""}
    try:
        page = await context.new_page()
        offline = OfflinePage(page)

        async def only_home(route: Any) -> None:
            if urlsplit(route.request.url).netloc in reachable:
                await route.continue_()
            else:
                offline.outside.append(route.request.url)
                await route.abort()

        await context.route("**/*", only_home)
        page.on(
            "console",
            lambda m: offline.console_errors.append(m.text) if m.type == "error" else None,
        )
        yield offline
    finally:
        await context.close()
