"""The shop on a laptop cluster: `python -m shop_devtools.cluster <command>` (behind `make kind-up`, ...).

Commands:

- `kind-up [--profile resilient|fragile] [--monitoring] [--autoscaling]`: creates the kind cluster
  `resilient-shop` unless it exists (k8s/kind/cluster.yaml: the storefront at `topology.SHOP_URL`), builds the images
  (`python -m shop_devtools.images`), tags each by its content, loads those tags into the cluster (an archive
  `docker save` writes, imported with `kind load image-archive`), then does what `deploy` does with them.
- `minikube-up [--profile ...] [--monitoring] [--autoscaling]`: the same on the minikube profile `resilient-shop`
  (started with 4096 MB, 2 CPUs and Calico; an existing profile with less memory or another network plugin is
  refused), loading with `minikube image load`, and prints the URL `minikube service storefront -n shop -p
  resilient-shop --url` gives.
- `deploy [--cluster kind|minikube] [--profile ...] [--monitoring] [--autoscaling]`: writes the secrets if missing,
  applies the overlay (`kubectl apply -k k8s/overlays/<cluster>[-fragile][-monitoring]`, through a kustomization in
  .data/deploy/ that pins the loaded images and adds the optional components) and waits until every pod is Ready
  (`kubectl rollout status` of each StatefulSet and Deployment in namespace shop); with no images loaded yet it
  builds and loads them first. `--autoscaling` adds
  k8s/components/autoscaling (payment's HorizontalPodAutoscaler) and the metrics API it reads: on kind
  k8s/components/metrics-server, on minikube its `metrics-server` addon. `--scheduled-drill` (with `--monitoring`)
  adds k8s/components/scheduled-drill, the weekly failover drill as a CronJob, and builds and loads its image
  (`python -m shop_devtools.images drill`) too.
- `leak [--cluster ...] [--mb-per-second N] [--max-mb N]`: makes exactly one Ready payment pod leak memory
  (`POST /chaos/leak` to that pod through a port-forward of the Kubernetes API, with the chaos token its
  `CHAOS_TOKEN` variable holds from the `chaos` Secret).
- `status [--cluster ...]`: ReplicaSets, pods, Services, PodDisruptionBudgets and HorizontalPodAutoscalers of
  namespace `shop`.
- `down [--cluster ...]`: deletes the cluster(s) the `*-up` commands created (both when no cluster is named).
- `secrets`: writes the random secrets kustomize reads (k8s/base/generated/, git-ignored) unless they exist.

Every command prints each external command before running it (`--dry-run` prints them only, and `leak` sends
nothing), talks to the cluster through an explicit kubectl context (`kind-resilient-shop` or `resilient-shop`,
never whatever context is current), and stops with a clear message when a tool it needs (docker, kind, minikube,
kubectl) is missing.
"""

import argparse
import sys
from collections.abc import Sequence
from typing import get_args

from shop_devtools.chaos import LIVENESS_LEAK_MIB_PER_SECOND, OOM_LEAK_MIB_PER_SECOND
from shop_devtools.cluster.commands import Cluster, Profile, Target
from shop_devtools.cluster.runner import ClusterError, Runner
from shop_devtools.cluster.shop import Shop
from shop_devtools.workspace import WorkspaceError, repository_root


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m shop_devtools.cluster", description=__doc__.split("\n\n")[0])
    cli.add_argument("--dry-run", action="store_true", help="print what changes the cluster, run read-only queries")
    commands = cli.add_subparsers(dest="command", required=True, metavar="command")
    cluster = argparse.ArgumentParser(add_help=False)
    cluster.add_argument("--cluster", choices=get_args(Cluster), default="kind")
    profile = argparse.ArgumentParser(add_help=False)
    profile.add_argument("--profile", choices=get_args(Profile), default="resilient")
    profile.add_argument("--monitoring", action="store_true", help="add Prometheus and Grafana")
    profile.add_argument("--autoscaling", action="store_true", help="payment's HPA (3-5 on CPU) and metrics-server")
    profile.add_argument("--scheduled-drill", action="store_true", help="a weekly drill in the cluster (monitoring)")
    commands.add_parser("kind-up", parents=[profile], help="create the kind cluster if needed, build, load, deploy")
    commands.add_parser("minikube-up", parents=[profile], help="start minikube if needed, build, load, deploy")
    commands.add_parser("deploy", parents=[cluster, profile], help="apply the overlay to the cluster, wait for it")
    leak = commands.add_parser("leak", parents=[cluster], help="make exactly one Ready payment pod leak memory")
    leak.add_argument(
        "--mb-per-second",
        type=float,
        default=LIVENESS_LEAK_MIB_PER_SECOND,
        help=f"growth rate in MiB/s (default {LIVENESS_LEAK_MIB_PER_SECOND:g}: liveness restarts the pod before its "
        f"memory limit; {OOM_LEAK_MIB_PER_SECOND:g} outruns it and ends as OOMKilled)",
    )
    leak.add_argument("--max-mb", type=int, default=None, help="stop growing after this many MiB (default: never)")
    commands.add_parser("status", parents=[cluster], help="ReplicaSets, pods, Services and HPAs of namespace shop")
    down = commands.add_parser("down", help="delete the cluster (every one *-up made by default)")
    down.add_argument("--cluster", choices=get_args(Cluster), default=None)
    commands.add_parser("secrets", help="write the random secrets kustomize reads, unless they exist")
    return cli


def run(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        shop = Shop(repository_root(), Runner(dry_run=args.dry_run))
        match args.command:
            case "kind-up" | "minikube-up" | "deploy":
                cluster = args.cluster if args.command == "deploy" else args.command.removesuffix("-up")
                deploy = {"kind-up": shop.kind_up, "minikube-up": shop.minikube_up, "deploy": shop.deploy}[args.command]
                deploy(Target(cluster, args.profile, args.monitoring, args.autoscaling, args.scheduled_drill))
            case "leak":
                shop.leak(args.cluster, mb_per_second=args.mb_per_second, max_mb=args.max_mb)
            case "status":
                shop.status(args.cluster)
            case "down":
                shop.down(args.cluster)
            case "secrets":
                shop.secrets()
    except (ClusterError, WorkspaceError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


def main() -> None:
    sys.exit(run())
