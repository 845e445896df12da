"""seed the catalog with the shop's products

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRODUCTS = [
    ("KB-ERGO-01", "Split Ergonomic Keyboard", "Tented split keyboard with hot-swappable brown switches.", 14900, 40),
    ("MS-VERT-02", "Vertical Wireless Mouse", "57-degree grip, six buttons, USB-C charging, three hosts.", 5990, 80),
    ("MN-27Q-03", "27-inch QHD Monitor", "IPS panel, 2560x1440 at 144 Hz, height-adjustable stand.", 32900, 25),
    ("HD-NC-04", "Noise-Cancelling Headphones", "Over-ear, 30 h battery, multipoint Bluetooth 5.3.", 27900, 35),
    ("DK-USBC-05", "USB-C Docking Station", "Dual 4K output, 100 W passthrough, 2.5 GbE port.", 18900, 30),
    ("CH-MESH-06", "Mesh Office Chair", "Adjustable lumbar support, 4D armrests, breathable mesh back.", 38900, 15),
    ("DS-STAND-07", "Electric Standing Desk", "160 x 80 cm top, dual motor, four memory presets.", 54900, 10),
    ("LP-ARM-08", "Laptop Arm Mount", "Gas-spring arm for laptops up to 17 inches, clamp or grommet.", 7490, 50),
    ("WC-4K-09", "4K Webcam", "Autofocus webcam with dual microphones and a privacy shutter.", 12900, 45),
    ("MC-USB-10", "USB Studio Microphone", "Cardioid condenser microphone with zero-latency monitoring.", 11900, 40),
    ("SSD-2TB-11", "2 TB NVMe SSD", "PCIe 4.0 drive, 7000 MB/s reads, five-year warranty.", 15900, 60),
    ("HUB-7P-12", "7-Port USB Hub", "Powered aluminium hub with individual port switches.", 3490, 120),
    ("CB-TB4-13", "Thunderbolt 4 Cable", "0.8 m certified cable, 40 Gbit/s, 100 W charging.", 3990, 150),
    ("LT-DESK-14", "LED Desk Lamp", "Dimmable lamp with adjustable colour temperature and USB port.", 4590, 70),
    ("PB-20K-15", "20,000 mAh Power Bank", "65 W USB-C PD power bank that charges a laptop.", 6990, 90),
    ("BP-TECH-16", "Tech Backpack 25 L", "Water-resistant backpack with a padded 16-inch laptop sleeve.", 8990, 55),
    ("KC-PBT-17", "PBT Keycap Set", "Double-shot PBT keycaps, 139 keys, cherry profile.", 4990, 65),
    ("WR-REST-18", "Wrist Rest Pair", "Memory-foam wrist rests for keyboard and mouse.", 2490, 100),
    ("SP-BT-19", "Portable Bluetooth Speaker", "Waterproof speaker with 20 h playtime and stereo pairing.", 8990, 40),
    ("RT-WIFI-20", "Wi-Fi 7 Router", "Tri-band router with 10 GbE WAN and mesh support.", 29900, 20),
    ("TB-DRAW-21", "Graphics Drawing Tablet", "10 x 6 inch tablet with a battery-free 8192-level pen.", 7990, 30),
    ("EB-WL-22", "Wireless Earbuds", "Active noise cancelling earbuds with wireless charging case.", 12900, 75),
    ("MP-XL-23", "XL Desk Mat", "90 x 40 cm stitched-edge desk mat with non-slip rubber base.", 1990, 140),
    ("UPS-1K-24", "1000 VA UPS", "Line-interactive UPS with six outlets and USB monitoring.", 16900, 12),
]


def upgrade() -> None:
    products = sa.table(
        "products",
        sa.column("sku", sa.String),
        sa.column("name", sa.String),
        sa.column("description", sa.Text),
        sa.column("price_cents", sa.Integer),
        sa.column("currency", sa.String),
        sa.column("stock", sa.Integer),
    )
    op.bulk_insert(
        products,
        [
            {"sku": sku, "name": name, "description": text, "price_cents": price, "currency": "EUR", "stock": stock}
            for sku, name, text, price, stock in PRODUCTS
        ],
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM products WHERE sku = ANY(:skus)").bindparams(skus=[p[0] for p in PRODUCTS]))
