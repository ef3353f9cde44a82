"""A real SMTP server (aiosmtpd) for the mail tests.

Usage: smtp_sink.py PORT DIR [CERT KEY]

With CERT and KEY (PEM), it offers STARTTLS and refuses mail sent without it.

Refuses recipients whose address starts with "refused" (550, naming the address, as
relays do), those starting with "greylisted" the first time they are named (450, as a
greylisting relay does), and those starting with "busy" always (452, a full mailbox); accepts every other message on 127.0.0.1:PORT, parses it with Python's own MIME parser (an
implementation independent of the server's) and writes one JSON file per message into
DIR: envelope sender and recipients, the From/To/Subject headers and every header (decoded), the plain-text
and HTML bodies (transfer encoding undone) and the raw message. Prints "ready" once it listens.
"""

import email
import email.policy
import json
import os
import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.seen = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # A relay that knows no such mailbox names it in its answer, as most do.
        if address.startswith("refused"):
            return "550 5.1.1 <%s>: no such mailbox here" % address
        if address.startswith("busy"):
            return "452 4.2.2 <%s>: mailbox full, try again later" % address
        if address.startswith("greylisted") and address not in self.seen:
            self.seen.add(address)
            return "450 4.2.0 <%s>: greylisted, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "content_type": msg.get_content_type(),
            "text": body.get_content() if body is not None else None,
            "html": html.get_content() if html is not None else None,
            "headers": {k: str(v) for k, v in msg.items()},
            "raw": envelope.content.decode("utf-8", "replace"),
        }
        self.count += 1
        name = "%06d-%d" % (self.count, os.getpid())
        tmp = os.path.join(self.directory, name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.directory, name + ".json"))
        return "250 Message accepted for delivery"


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    tls = {}
    if len(sys.argv) > 4:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
        tls = {"tls_context": context, "require_starttls": True}
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port, **tls)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
