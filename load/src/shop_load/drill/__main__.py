"""`python -m shop_load.drill`: the crash drill (`shop_load.drill.run`)."""

from shop_load.drill.run import main

main()
