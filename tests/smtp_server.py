"""A real SMTP server for the integration tests (aiosmtpd), writing each message to DIR/new/.

    python smtp_server.py --port PORT --dir DIR [--reject PREFIX ...] [--defer PREFIX ...]
                          [--delay-ms N]

Recipients starting with a --reject prefix get a permanent 550 answer; those starting with a
--defer prefix get a temporary 451 the first time each address is tried, then are accepted. --delay-ms slows each
DATA command down, so a batch takes time. Prints "ready" once it accepts connections. Each
EHLO (one per connection: no STARTTLS here) is counted in DIR/connections.
"""
import argparse
import os
import time
import uuid

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, directory, reject, delay_ms, defer=()):
        self.directory = directory
        self.reject = reject
        self.defer = defer
        self.deferred = set()
        self.delay = delay_ms / 1000.0
        self.connections = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.connections += 1
        tmp = os.path.join(self.directory, "tmp", "connections")
        with open(tmp, "w") as f:
            f.write(str(self.connections))
        os.rename(tmp, os.path.join(self.directory, "connections"))
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if any(address.startswith(p) for p in self.reject):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if any(address.startswith(p) for p in self.defer) and address not in self.deferred:
            self.deferred.add(address)
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            time.sleep(self.delay)
        name = "%d.%s.eml" % (time.time_ns(), uuid.uuid4().hex)
        tmp = os.path.join(self.directory, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(envelope.content)
        os.rename(tmp, os.path.join(self.directory, "new", name))
        return "250 Message accepted for delivery"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--reject", action="append", default=[])
    parser.add_argument("--defer", action="append", default=[])
    parser.add_argument("--delay-ms", type=int, default=0)
    args = parser.parse_args()
    for sub in ("new", "tmp"):
        os.makedirs(os.path.join(args.dir, sub), exist_ok=True)
    controller = Controller(
        Handler(args.dir, args.reject, args.delay_ms, args.defer), hostname="127.0.0.1", port=args.port
    )
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
