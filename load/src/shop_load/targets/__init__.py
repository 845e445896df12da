"""Where the drill runs: the `Target` interface, the local shop, a cluster, the pod watcher and the choice between
them."""
