from typing import Annotated

from fastapi import Depends, Request

from shop_catalog.settings import CatalogSettings


async def _settings(request: Request) -> CatalogSettings:
    settings: CatalogSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[CatalogSettings, Depends(_settings)]
