"""An SMTP server for the e-mail tests: every message it accepts is written as one JSON line
(envelope sender and recipients, subject, plain and HTML parts) to the log file given.

Usage: smtp_receiver.py PORT LOG_FILE
While a file LOG_FILE.down exists, it answers every message with a temporary failure (451),
so a test can see deliveries retried.
"""

import asyncio
import email
import email.policy
import json
import os
import sys

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, log: str) -> None:
        self.log = log

    async def handle_DATA(self, server, session, envelope) -> str:
        if os.path.exists(self.log + ".down"):
            return "451 Try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            if part.get_content_type() in ("text/plain", "text/html"):
                parts[part.get_content_type()] = part.get_content()
        line = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(message["subject"]),
            "plain": parts.get("text/plain", ""),
            "html": parts.get("text/html", ""),
        }
        with open(self.log, "a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\n")
        return "250 Message accepted"


def main() -> None:
    port, log = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Recorder(log), hostname="127.0.0.1", port=port)
    controller.start()
    print("listening", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
