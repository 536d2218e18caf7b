"""The shop's API: counts visits in Redis and queues jobs for the worker."""

import os
import socket

import redis
from flask import Flask, jsonify, request

app = Flask(__name__)
db = redis.Redis(host=os.environ.get("REDIS_HOST", "redis"), port=6379, decode_responses=True)


@app.get("/")
def index():
    visits = db.incr("visits")
    return jsonify(service="api", host=socket.gethostname(), visits=visits,
                   processed=int(db.get("processed") or 0))


@app.post("/jobs")
def enqueue():
    payload = request.get_data(as_text=True) or "job"
    db.lpush("jobs", payload)
    return jsonify(queued=payload), 202


@app.get("/health")
def health():
    db.ping()
    return "ok\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8000")), threaded=True)
