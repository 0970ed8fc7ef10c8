"""XML parsing with no entity expansion, no DTDs and no network access.

Any DOCTYPE is refused outright: BPMN and DMN never need one, and that is where
billion-laughs and XXE payloads live.
"""
from __future__ import annotations

from lxml import etree

from .errors import Problem


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_comments=False,
    )


def parse(content: bytes | str, filename: str) -> etree._Element:
    """Parse `content` or raise a list of Problems (as `XmlRefused`)."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    lowered = content.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        pos = min(p for p in (lowered.find(b"<!doctype"), lowered.find(b"<!entity")) if p >= 0)
        line = content[:pos].count(b"\n") + 1
        raise XmlRefused([Problem(filename, "DOCTYPE and entity declarations are not allowed", line)])
    try:
        root = etree.fromstring(content, _parser())
    except etree.XMLSyntaxError as e:
        raise XmlRefused([Problem(filename, f"not well-formed XML: {e.msg}", e.lineno)]) from None
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None or tree.docinfo.doctype:
        raise XmlRefused([Problem(filename, "DOCTYPE and entity declarations are not allowed", 1)])
    for el in root.iter():
        if isinstance(el, etree._Entity):
            raise XmlRefused([Problem(filename, "entity references are not allowed", el.sourceline)])
    return root


class XmlRefused(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(map(str, problems)))
