from typing import Annotated

from fastapi import Depends, Request

from shop_storefront.recovery.watch import Watch
from shop_storefront.settings import StorefrontSettings
from shop_storefront.state import StorefrontState
from shopkit import Upstreams, state_of
from shopkit.credentials import Callers, caller


async def _settings(request: Request) -> StorefrontSettings:
    return state_of(request).own(StorefrontState).settings


def callers_of(request: Request) -> Callers:
    return state_of(request).own(StorefrontState).callers


def watch_of(request: Request) -> Watch:
    return state_of(request).own(StorefrontState).recovery


async def _upstreams(request: Request) -> Upstreams:
    return state_of(request).upstreams


SettingsDep = Annotated[StorefrontSettings, Depends(_settings)]
UpstreamsDep = Annotated[Upstreams, Depends(_upstreams)]
operator_caller = caller(callers_of, "operator")
"""The operator by its bearer credential: 401 for anyone else."""
OperatorCaller = Annotated[str, Depends(operator_caller)]
