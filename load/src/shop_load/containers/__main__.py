"""`python -m shop_load.containers up|down`: the shop in containers on the running engine, for the drill's container
target (`python -m shop_load.drill --containers`), and its removal (`shop_load.targets.container_shop`).

`up` prints why and exits 0 without starting anything when no engine answers or it has no Python base image: a
machine without an engine skips the container proof.
"""

import argparse
from pathlib import Path

from shop_devtools.engine import Engine, EngineUnavailable
from shop_load.targets import container_shop

parser = argparse.ArgumentParser(prog="python -m shop_load.containers", description=__doc__.split("\n\n")[0])
parser.add_argument("command", choices=("up", "down"))
parser.add_argument("--data-dir", type=Path, help="where the drill finds the shop (default: .data/containers)")
args = parser.parse_args()
folder = container_shop.shop_dir(args.data_dir)
try:
    (container_shop.up if args.command == "up" else container_shop.down)(Engine.find(), folder)
except EngineUnavailable as exc:
    (folder / container_shop.STATE_FILE).unlink(missing_ok=True)  # no shop for the drill to find
    print(f"e2e    | SKIPPED: {exc}", flush=True)
