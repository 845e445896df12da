"""`python -m shop_devtools.cluster <command>`: the command line of `shop_devtools.cluster.cli`."""

from shop_devtools.cluster.cli import main

if __name__ == "__main__":
    main()
