"""The ceiling of a read: a bare FastAPI app that answers every GET with the same bytes the catalog served.

`python -m shop_load.generators.bare --port 9000 --body-file products.json` runs it under uvicorn with the services'
server options, so the difference to the catalog is exactly what the catalog does per request (settings,
middleware, session, query, serialization).
"""

import argparse
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Response


def create_app(body: bytes) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/{path:path}")
    async def same_bytes(path: str) -> Response:
        return Response(body, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="shop-bare")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", type=Path, required=True)
    options = parser.parse_args()
    app = create_app(options.body_file.read_bytes())
    uvicorn.run(app, host="127.0.0.1", port=options.port, log_level="warning", access_log=False, server_header=False)


if __name__ == "__main__":
    main()
