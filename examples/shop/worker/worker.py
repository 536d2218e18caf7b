"""The shop's worker: takes jobs from Redis and records that it processed them."""

import os
import signal
import sys

import redis

db = redis.Redis(host=os.environ.get("REDIS_HOST", "redis"), port=6379, decode_responses=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("worker: waiting for jobs", flush=True)
while True:
    item = db.brpop("jobs", timeout=5)
    if item:
        db.incr("processed")
        db.set("last_job", item[1])
        print(f"worker: processed {item[1]}", flush=True)
