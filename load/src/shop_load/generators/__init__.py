"""The load's generators: wrk and its Lua scripts, the drill's browsing and its counts, the bare ceiling app."""
