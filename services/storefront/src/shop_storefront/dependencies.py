from typing import Annotated

import httpx
from fastapi import Depends, Request

from shop_storefront.settings import StorefrontSettings


async def _settings(request: Request) -> StorefrontSettings:
    settings: StorefrontSettings = request.app.state.settings
    return settings


async def _upstreams(request: Request) -> dict[str, httpx.AsyncClient]:
    clients: dict[str, httpx.AsyncClient] = request.app.state.http
    return clients


SettingsDep = Annotated[StorefrontSettings, Depends(_settings)]
UpstreamsDep = Annotated[dict[str, httpx.AsyncClient], Depends(_upstreams)]
