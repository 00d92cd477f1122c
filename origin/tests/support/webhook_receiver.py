#!/usr/bin/env python3
"""A webhook receiver for Tessera's tests: verifies each POST with the Standard Webhooks
package (PyPI `standardwebhooks`, the specification's own library) and appends what it got to
FILE as one JSON line: {"id", "type", "user_id", "valid"} ("valid" false, and a 400 answer,
when the signature does not verify). Answers 204 otherwise. Listens on 127.0.0.1:PORT, prints
"ready" once listening; stops on SIGTERM or SIGINT.

Usage: webhook_receiver.py PORT SECRET FILE"""

import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

port, secret, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
webhook = Webhook(secret)
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            payload = webhook.verify(body, headers)
            valid = True
        except Exception as error:  # noqa: BLE001 - any refusal is recorded as invalid
            payload, valid = {"error": str(error)}, False
        record = {
            "id": headers.get("webhook-id"),
            "type": payload.get("type"),
            "user_id": payload.get("data", {}).get("user_id"),
            "valid": valid,
        }
        with lock, open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(204 if valid else 400)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
print("ready", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
