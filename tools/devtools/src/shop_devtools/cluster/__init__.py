"""The shop on a laptop cluster (kind or minikube), behind `make kind-up`, `deploy`, `leak`, `status` and `down`:
`python -m shop_devtools.cluster <command>` (`__main__`; `cli` lists the commands) runs what `shop` does (the
images tagged and pinned for applying among it) with the target's names and the external commands as argv lists
(`commands`), the generated secrets (`generated_secrets`), the Ready rule and the pod a fault goes to (`pods`), and
the runner that prints and runs each command and names what went wrong (`runner`). `leak` talks to the pod through
the Kubernetes client (`kube`, the drill's too) and the chaos API's client (`shop_devtools.chaos`).

Exported here is what other packages use: the error the command line prints, and the check for a tool on PATH."""

from shop_devtools.cluster.runner import ClusterError, require_tools

__all__ = ["ClusterError", "require_tools"]
