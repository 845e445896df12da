"""The one error of `python -m shop_devtools.cluster`: a problem the user can fix (a missing tool, overlay or
context, a failed command), which the command line prints as `error: ...` without a traceback."""


class ClusterError(Exception):
    """A problem the user can fix; printed without a traceback."""
