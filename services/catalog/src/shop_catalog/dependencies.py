from typing import Annotated

from fastapi import Depends, Request

import shopkit
from shop_catalog.settings import CatalogSettings
from shop_catalog.state import CatalogState


async def _settings(request: Request) -> CatalogSettings:
    return shopkit.state_of(request).own(CatalogState).settings


SettingsDep = Annotated[CatalogSettings, Depends(_settings)]
