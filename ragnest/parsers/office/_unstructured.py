"""The one module that imports unstructured: its lazy import, the partitioners, and
every patch of unstructured's private internals, each in its own small function.

Importing this module imports nothing from unstructured; :func:`import_unstructured`
does, once per process (on the office parser's ``warm_up`` or first parse), and
applies the patches:

* :func:`install_docx_picture_hook` and :func:`install_pptx_picture_hook` register
  ragnest's picture sub-partitioners (:class:`DocxPictures`, :class:`PptxPictures`):
  during a ragnest parse they give one ``Image`` element per picture, pointing at its
  ZIP member, and outside one they defer to whatever was registered before (read from
  the private ``_PicturePartitionerCls``);
* :func:`install_nlp_stand_in` replaces the private ``unstructured.nlp.tokenize._get_nlp``
  with a rule-based stand-in when spaCy's ``en_core_web_sm`` is not installed, so
  unstructured does not try to download and install the model at first use (offline
  ingestion would hang or fail).

Each patch first checks that its target still exists with the shape it expects
(``check_*``); when an unstructured upgrade breaks that, the patch is skipped with a
warning naming what changed (parsing goes on, without that patch) and the adapter
tests in ``tests/parsers/test_unstructured_adapter.py`` fail loudly::

    >>> from ragnest.parsers.office import _unstructured
    >>> sorted(_unstructured.PARTITIONERS)[:3]
    ['docx', 'eml', 'html']
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from ragnest.errors import MissingDependencyError, ParseError
from ragnest.parsers.office import pictures as pics
from ragnest.parsers.office.detect import FORMAT_LABELS, INSTALL_HINT, OfficeDocument
from ragnest.parsers.office.mail import email_metadata, fix_email_charsets, msg_metadata
from ragnest.parsers.office.markup import decode_html, front_matter, unwrap_figures
from ragnest.parsers.text import decode_text

__all__ = [
    "import_unstructured",
    "partitioner",
    "partition",
    "image_element",
    "UnstructuredChanged",
    "DocxPictures",
    "PptxPictures",
    "StandInNlp",
    "check_docx_picture_hook",
    "check_pptx_picture_hook",
    "check_nlp_stand_in",
    "install_docx_picture_hook",
    "install_pptx_picture_hook",
    "install_nlp_stand_in",
    "PARTITIONERS",
]

logger = logging.getLogger(__name__)

_IMPORT_LOCK = threading.RLock()
_READY = False
#: Format -> (module, function) of unstructured's partitioner for it.
PARTITIONERS: dict[str, tuple[str, str]] = {
    "docx": ("unstructured.partition.docx", "partition_docx"),
    "pptx": ("unstructured.partition.pptx", "partition_pptx"),
    "xlsx": ("unstructured.partition.xlsx", "partition_xlsx"),
    "html": ("unstructured.partition.html", "partition_html"),
    "md": ("unstructured.partition.md", "partition_md"),
    "eml": ("unstructured.partition.email", "partition_email"),
    "msg": ("unstructured.partition.msg", "partition_msg"),
    "odt": ("unstructured.partition.odt", "partition_odt"),
}


class UnstructuredChanged(RuntimeError):
    """The installed unstructured lacks an internal that ragnest patches."""


def _changed(what: str, patch: str, effect: str) -> UnstructuredChanged:
    try:
        from unstructured.__version__ import __version__ as version
    except ImportError:  # pragma: no cover - every release has it
        version = "?"
    return UnstructuredChanged(
        f"unstructured {version} changed: {what}; ragnest's patch {patch} "
        f"(ragnest.parsers.office._unstructured) needs updating; until then {effect}")


def import_unstructured() -> None:
    """Import unstructured once: telemetry off, picture hooks in, NLP stand-in if needed."""
    global _READY
    with _IMPORT_LOCK:
        if _READY:
            return
        os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
        os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
        started = time.perf_counter()
        try:
            import unstructured  # noqa: F401
        except ImportError as err:
            raise MissingDependencyError(
                f"parser/office needs the 'unstructured' package: {INSTALL_HINT}"
            ) from err
        for fmt in ("docx", "pptx"):
            partitioner(fmt)
        for patch in (install_docx_picture_hook, install_pptx_picture_hook,
                      install_nlp_stand_in):
            _apply(patch)
        _READY = True
        logger.debug("unstructured imported in %.2f s", time.perf_counter() - started)


def _apply(patch: Callable[[], Any]) -> None:
    try:
        patch()
    except UnstructuredChanged as err:
        logger.warning("%s", err)


def partitioner(fmt: str) -> Any:
    """unstructured's partition function for ``fmt`` (a missing extra names itself)."""
    module, func = PARTITIONERS[fmt]
    try:
        return getattr(importlib.import_module(module), func)
    except ImportError as err:
        raise MissingDependencyError(
            f"parsing {FORMAT_LABELS[fmt]} files needs unstructured's '{fmt}' extra "
            f"({err.name or err}): {INSTALL_HINT}"
        ) from err


def image_element(alt: str, member: str, page: int | None) -> Any:
    """An unstructured ``Image`` element for a picture (``image_path`` = its member)."""
    from unstructured.documents.elements import ElementMetadata, Image

    return Image(text=alt, metadata=ElementMetadata(image_path=member, page_number=page),
                 detection_origin="ragnest")


# ------------------------------------------------------------ patch: DOCX picture hook
class DocxPictures:
    """unstructured DOCX picture sub-partitioner: an Image element per picture of a
    paragraph, while a ragnest parse is running (else the previously registered one)."""

    previous: ClassVar[Any] = None

    @classmethod
    def iter_elements(cls, paragraph: Any, opts: Any) -> Iterator[Any]:
        """Image elements for the pictures in ``paragraph`` (unstructured's interface)."""
        state = pics.current()
        if state is None:
            if cls.previous is not None:
                yield from cls.previous.iter_elements(paragraph, opts)
            return
        if state.document_part is None:
            state.document_part = opts.document.part
        for part, alt in pics.docx_paragraph_pictures(paragraph):
            member = pics.accept_part(state, part)
            if member is not None:
                yield image_element(alt, member, opts.metadata_page_number)


def _picture_options(module_name: str, options: str, extra: tuple[str, ...],
                     patch: str, effect: str) -> tuple[Any, Any]:
    module = importlib.import_module(module_name)
    cls = getattr(module, options, None)
    register = getattr(module, "register_picture_partitioner", None)
    if cls is None or not callable(register):
        raise _changed(f"{module_name} has no {options} / register_picture_partitioner()",
                       patch, effect)
    missing = [name for name in ("_PicturePartitionerCls", *extra) if not hasattr(cls, name)]
    if missing:
        raise _changed(f"{module_name}.{options} has no {', '.join(missing)}", patch, effect)
    return module, cls


def check_docx_picture_hook() -> Any:
    """unstructured's DOCX options class, checked for what :class:`DocxPictures` needs
    (raises :class:`UnstructuredChanged` naming what is missing)."""
    return _picture_options("unstructured.partition.docx", "DocxPartitionerOptions",
                            ("document", "metadata_page_number", "picture_partitioner"),
                            "install_docx_picture_hook", "DOCX pictures are not extracted")[1]


def install_docx_picture_hook() -> None:
    """Register :class:`DocxPictures` (idempotent), remembering the previous one."""
    module, options = _picture_options(
        "unstructured.partition.docx", "DocxPartitionerOptions",
        ("document", "metadata_page_number", "picture_partitioner"),
        "install_docx_picture_hook", "DOCX pictures are not extracted")
    if options._PicturePartitionerCls is not DocxPictures:
        DocxPictures.previous = options._PicturePartitionerCls
        module.register_picture_partitioner(DocxPictures)


# ------------------------------------------------------------ patch: PPTX picture hook
class PptxPictures:
    """unstructured PPTX picture sub-partitioner (see :class:`DocxPictures`)."""

    previous: ClassVar[Any] = None

    @classmethod
    def iter_elements(cls, picture: Any, opts: Any) -> Iterator[Any]:
        """The Image element for one picture shape (unstructured's interface)."""
        state = pics.current()
        if state is None:
            if cls.previous is not None:
                yield from cls.previous.iter_elements(picture, opts)
            return
        try:
            part, alt = pics.pptx_picture(picture)
        except (AttributeError, KeyError) as err:
            logger.debug("%s: skipping unreadable picture: %s", state.archive, err)
            return
        member = pics.accept_part(state, part)
        if member is not None:
            yield image_element(alt, member, opts.page_number)


def check_pptx_picture_hook() -> Any:
    """unstructured's PPTX options class, checked for what :class:`PptxPictures` needs."""
    return _picture_options("unstructured.partition.pptx", "PptxPartitionerOptions",
                            ("page_number", "picture_partitioner"),
                            "install_pptx_picture_hook", "PPTX pictures are not extracted")[1]


def install_pptx_picture_hook() -> None:
    """Register :class:`PptxPictures` (idempotent), remembering the previous one."""
    module, options = _picture_options(
        "unstructured.partition.pptx", "PptxPartitionerOptions",
        ("page_number", "picture_partitioner"),
        "install_pptx_picture_hook", "PPTX pictures are not extracted")
    if options._PicturePartitionerCls is not PptxPictures:
        PptxPictures.previous = options._PicturePartitionerCls
        module.register_picture_partitioner(PptxPictures)


# --------------------------------------------------------------- patch: spaCy stand-in
class StandInNlp:
    """What unstructured's text-type heuristics need from spaCy, without a model:
    sentence boundaries (spaCy's rule-based sentencizer) and POS tags where any
    lower-case content word is taken for a verb (so a sentence in running text reads
    as narrative text and a capitalised short line as a title)."""

    max_length = 1_000_000

    def __init__(self) -> None:
        import spacy

        self._nlp = spacy.blank("en")
        self._nlp.add_pipe("sentencizer")

    def __call__(self, text: str) -> Any:
        doc = self._nlp(text)
        for token in doc:
            if token.is_alpha and token.is_lower and len(token) > 1 and not token.is_stop:
                token.tag_ = "VB"
        return doc


def check_nlp_stand_in() -> Any:
    """``unstructured.nlp.tokenize``, checked for the private ``_get_nlp`` that every
    spaCy call goes through (looked up by name at call time, so replacing the module
    attribute takes effect); ``None`` for an unstructured without spaCy (NLTK based)."""
    try:
        import spacy.util  # noqa: F401
        from unstructured.nlp import tokenize
    except ImportError:  # older unstructured (NLTK based): nothing to patch
        return None
    effect = ("unstructured may try to download spaCy's en_core_web_sm at first use "
              "(install that model to avoid it)")
    get_nlp = getattr(tokenize, "_get_nlp", None)
    if not callable(get_nlp):
        raise _changed("unstructured.nlp.tokenize has no _get_nlp()", "install_nlp_stand_in",
                       effect)
    callers = [f for f in vars(tokenize).values()
               if callable(f) and "_get_nlp" in getattr(getattr(f, "__code__", None),
                                                        "co_names", ())]
    if not callers:
        raise _changed("nothing in unstructured.nlp.tokenize calls _get_nlp() by name any "
                       "more", "install_nlp_stand_in", effect)
    return tokenize


def install_nlp_stand_in() -> bool:
    """Give unstructured :class:`StandInNlp` when ``en_core_web_sm`` is not installed
    (idempotent); whether the stand-in is in place."""
    tokenize = check_nlp_stand_in()
    if tokenize is None:
        return False
    import spacy.util

    if spacy.util.is_package("en_core_web_sm"):
        return False
    if isinstance(getattr(tokenize._get_nlp, "stand_in", None), StandInNlp):
        return True
    stand_in = StandInNlp()

    def get_nlp() -> StandInNlp:
        return stand_in

    get_nlp.stand_in = stand_in  # type: ignore[attr-defined]
    tokenize._get_nlp = get_nlp
    logger.info("spaCy model en_core_web_sm is not installed: unstructured's text-type "
                "heuristics use ragnest's rule-based stand-in (install the model for "
                "better heading detection)")
    return True


# -------------------------------------------------------------------------- partition
def partition(doc: OfficeDocument, pictures: pics.Pictures,
              captions: set[str]) -> tuple[list[Any], dict[str, Any]]:
    """unstructured's elements for ``doc`` and document-level metadata; captions found
    in HTML ``<figcaption>`` are added to ``captions``."""
    fmt = doc.fmt
    stream = io.BytesIO(doc.data)
    extra: dict[str, Any] = {}
    if fmt == "docx":
        return partitioner("docx")(file=stream, infer_table_structure=True,
                                   include_page_breaks=True), extra
    if fmt == "pptx":
        return partitioner("pptx")(file=stream, infer_table_structure=True,
                                   include_page_breaks=True), extra
    if fmt in ("xlsx", "xls"):
        return partitioner("xlsx")(file=stream, infer_table_structure=True,
                                   find_subtable=True), extra
    if fmt == "odt":
        if pictures.enabled:
            with zipfile.ZipFile(stream) as zf:
                pictures.crc_members = {
                    (info.CRC, info.file_size): info.filename for info in zf.infolist()
                    if info.filename.startswith("Pictures/")
                }
        return partitioner("odt")(file=io.BytesIO(doc.data), infer_table_structure=True), extra
    if fmt == "html":
        text, encoding = decode_html(doc.data, doc.name)
        text, found = unwrap_figures(text)
        captions.update(found)
        extra["encoding"] = encoding
        return partitioner("html")(text=text), extra
    if fmt == "md":
        text, encoding = decode_text(doc.data, doc.name)
        body, _ = front_matter(text.lstrip("\ufeff"))
        extra["encoding"] = encoding
        if not body.strip():
            return [], extra
        return partitioner("md")(text=body), extra
    if fmt in ("epub", "rtf"):
        from unstructured.file_utils.file_conversion import (
            convert_file_to_html_text_using_pandoc,
        )

        html_text = convert_file_to_html_text_using_pandoc(source_format=fmt, file=stream)
        html_text, found = unwrap_figures(html_text)
        captions.update(found)
        return partitioner("html")(text=html_text), extra
    if fmt == "eml":
        fixed, msg = fix_email_charsets(doc.data)
        extra.update(email_metadata(doc.data, msg))
        elements = partitioner("eml")(file=io.BytesIO(fixed), process_attachments=False)
        return elements, extra
    if fmt == "msg":
        elements = partitioner("msg")(file=stream, process_attachments=False)
        extra.update(msg_metadata(elements, doc.data))
        extra["title"] = extra.get("subject")
        return elements, extra
    raise ParseError(doc.name, f"no partitioner for {FORMAT_LABELS.get(fmt, fmt)}")
