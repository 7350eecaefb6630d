"""E-mail: charsets of text parts, decoded headers, an HTML page per message, metadata.

Old mailers send 8-bit text without (or with a wrong) charset, and raw 8-bit bytes in
headers; these helpers decode them (UTF-8, else cp1252) before unstructured sees the
message, and lay a message out as one HTML page (headers, body, attachment names) for
page rendering::

    >>> email_headers(b"Subject: =?utf-8?q?Caf=C3=A9?=\\r\\nFrom: a@b.c\\r\\n\\r\\nbody")
    {'subject': 'Café', 'from': 'a@b.c'}
"""

from __future__ import annotations

import email
import email.policy
import html as html_lib
import io
import logging
import re
from collections.abc import Iterable
from typing import Any

from ragnest.errors import ParseError
from ragnest.parsers.text import decode_text

__all__ = ["fix_email_charsets", "email_headers", "email_html", "email_metadata",
           "msg_metadata"]

logger = logging.getLogger(__name__)


def fix_email_charsets(data: bytes) -> tuple[bytes, Any]:
    """Give text parts without a (correct) charset one, so non-UTF-8 mail decodes."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    changed = False
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if part.get_content_disposition() == "attachment":
            continue
        raw = part.get_payload(decode=True) or b""
        charset = part.get_content_charset()
        if raw.isascii():
            continue
        if charset not in (None, "us-ascii", "ascii"):
            try:
                raw.decode(charset)
                continue  # declared and right
            except (LookupError, UnicodeDecodeError):
                pass
        text, _ = decode_text(raw)  # UTF-8, else cp1252
        part.set_content(text, subtype=part.get_content_subtype(), charset="utf-8")
        changed = True
    return (bytes(msg) if changed else data), msg


def email_headers(data: bytes) -> dict[str, str]:
    """Subject, From, To, Cc and Date, decoded: RFC 2047 words, else raw 8-bit bytes
    (UTF-8, else cp1252 -- old mailers put those in headers without declaring them)."""
    from email.header import decode_header, make_header

    block = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0]
    block = re.sub(rb"\r?\n[ \t]+", b" ", block)  # unfold continuation lines
    out: dict[str, str] = {}
    for line in block.split(b"\n"):
        key, sep, raw = line.partition(b":")
        field = key.strip().lower().decode("ascii", "replace")
        if not sep or field not in ("subject", "from", "to", "cc", "date") or field in out:
            continue
        raw = raw.strip()
        try:
            if raw.isascii():
                text = str(make_header(decode_header(raw.decode("ascii"))))
            else:
                text = decode_text(raw)[0]
        except (UnicodeError, LookupError, ValueError, ParseError):
            text = raw.decode("utf-8", "replace")
        text = " ".join(text.split())
        if text:
            out[field] = text
    return out


def email_html(data: bytes, msg: Any) -> str:
    """An HTML page for an e-mail: its headers, then the HTML (else plain-text) body."""
    rows = "".join(
        f"<tr><th align='left'>{key.title()}</th><td>{html_lib.escape(value)}</td></tr>"
        for key, value in email_headers(data).items()
    )
    body = ""
    part = msg.get_body(preferencelist=("html", "plain"))
    if part is not None:
        content = part.get_content()
        if part.get_content_subtype() == "html":
            body = content
        else:
            body = f"<pre style='white-space: pre-wrap'>{html_lib.escape(content)}</pre>"
    names = [a.get_filename() for a in msg.iter_attachments() if a.get_filename()]
    attached = (f"<p>Attachments: {html_lib.escape(', '.join(names))}</p>" if names else "")
    return f"<html><body><table>{rows}</table><hr/>{body}{attached}</body></html>"


def email_metadata(data: bytes, msg: Any) -> dict[str, Any]:
    """Chunk metadata of an ``.eml`` message: its headers and attachment names."""
    meta: dict[str, Any] = dict(email_headers(data))
    names = [str(part.get_filename()) for part in msg.iter_attachments() if part.get_filename()]
    if names:
        meta["attachments"] = names
    return meta


def msg_metadata(elements: Iterable[Any], data: bytes) -> dict[str, Any]:
    """Chunk metadata of an Outlook ``.msg``: subject, from, to (from unstructured's
    elements), date and attachment names (read with oxmsg, when it is installed)."""
    meta: dict[str, Any] = {}
    for element in elements:
        m = element.metadata
        if m.subject and "subject" not in meta:
            meta["subject"] = m.subject
        if m.sent_from and "from" not in meta:
            meta["from"] = ", ".join(m.sent_from)
        if m.sent_to and "to" not in meta:
            meta["to"] = ", ".join(m.sent_to)
    try:
        from oxmsg import Message

        msg = Message.load(io.BytesIO(data))
        names = [a.file_name for a in msg.attachments if a.file_name]
        if names:
            meta["attachments"] = names
        if msg.sent_date and "date" not in meta:
            meta["date"] = msg.sent_date.isoformat()
    except Exception as err:  # metadata only: never fail the parse for it
        logger.debug("cannot read .msg attachments list: %s", err)
    return meta
