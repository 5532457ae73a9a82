"""Hardware catalog: reviewed data files with sources (`catalog/data/*.toml`) + loader.

    from catalog import load_catalog
    cat = load_catalog()
    cat.config("mac-studio-m2-ultra-76c-192gb").launch_price_usd
    cat.find_chip("M3 Max", 30).mem_bandwidth_gbps

Depends only on `forgeplanner.domain` (and `forgeplanner.errors`).
"""

from catalog.catalog import Catalog
from catalog.loader import DATA_DIR, load_catalog
from catalog.types import MachineModel, MarketNote

__all__ = ["DATA_DIR", "Catalog", "MachineModel", "MarketNote", "load_catalog"]
