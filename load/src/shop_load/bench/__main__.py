"""`python -m shop_load.bench`: the benchmarks (`shop_load.bench.run`)."""

from shop_load.bench.run import main

main()
