"""The JSON Schema of every report, the drill's and the bench's told apart by `kind`, published in the docs:
`make report-schema` writes it; a test fails when the committed schema is not what the models say.

    python -m shop_load.report.schema            print the schema
    python -m shop_load.report.schema --write    rewrite docs/report.schema.json
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Annotated

from pydantic import Field, TypeAdapter

from shop_devtools.workspace import repository_root
from shop_load.report.bench_model import BenchReport
from shop_load.report.model import REPORT_VERSION, DrillReport

AnyReport = Annotated[DrillReport | BenchReport, Field(discriminator="kind")]
DOCUMENT = Path("docs/report.schema.json")


def schema_text() -> str:
    """The schema of `AnyReport` as the docs keep it: of what is written (computed figures included)."""
    schema = TypeAdapter(AnyReport).json_schema(mode="serialization")
    title = f"resilient-shop report, version {REPORT_VERSION} (kind: drill or bench)"
    document = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, **schema}
    return json.dumps(document, indent=1) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shop_load.report.schema", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {DOCUMENT}")
    if not parser.parse_args(argv).write:
        sys.stdout.write(schema_text())
        return
    (repository_root() / DOCUMENT).write_text(schema_text(), encoding="utf-8")
    print(f"wrote the reports' JSON Schema into {DOCUMENT}")


if __name__ == "__main__":
    main()
