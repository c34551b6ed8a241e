"""A webhook receiver for the end-to-end tests: verifies each delivery with the official
Standard Webhooks package and appends what it accepted to a log, one JSON line each.

Usage: receiver.py PORT SECRET LOG [MODE]
MODE: "ok" (default) accepts; "down" answers 503; "hang" never answers in time. The test
changes the mode by writing it to LOG + ".mode"; deliveries with a bad signature are
answered 401 and logged as {"bad": reason}.
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

port, secret, log = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
mode_file = Path(str(log) + ".mode")
if len(sys.argv) > 4:
    mode_file.write_text(sys.argv[4])
webhook = Webhook(secret)


def mode() -> str:
    try:
        return mode_file.read_text().strip() or "ok"
    except FileNotFoundError:
        return "ok"


def record(entry: dict) -> None:
    with log.open("a") as out:
        out.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        current = mode()
        if current == "hang":
            time.sleep(3600)
            return
        if current == "down":
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"down for maintenance")
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            message = webhook.verify(body, headers)
        except WebhookVerificationError as err:
            record({"bad": str(err)})
            self.send_response(401)
            self.end_headers()
            return
        record(
            {
                "id": headers["webhook-id"],
                "type": message["type"],
                "seq": message["data"]["seq"],
                "request_id": message["data"]["request_id"],
                "actor": message["data"]["actor"]["type"],
                "at": time.time(),
            }
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
print("listening", flush=True)
server.serve_forever()
