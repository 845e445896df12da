"""The crash drill: `run` plays it against a target, `progress` follows it, `results` writes what it saw."""
