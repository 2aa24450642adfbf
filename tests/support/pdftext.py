"""The text of a PDF that matplotlib wrote with TrueType fonts (`pdf.fonttype` 42), read back as a reader would.

Each font's ToUnicode map turns the glyph codes a page shows back into letters: what a PDF viewer's search and copy
see. Enough of PDF for matplotlib's output, not a general reader.
"""

from __future__ import annotations

import re
import zlib

OBJECT = re.compile(rb"(\d+) 0 obj(.*?)endobj", re.S)
STREAM = re.compile(rb"stream\r?\n(.*)endstream", re.S)
ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}


def pdf_objects(data: bytes) -> dict[int, tuple[bytes, bytes]]:
    """Object number -> (dictionary, decompressed stream or b"")."""
    found = {}
    for m in OBJECT.finditer(data):
        body = m.group(2)
        s = STREAM.search(body)
        found[int(m.group(1))] = (body[: s.start()] if s else body, _inflate(s.group(1)) if s else b"")
    return found


def _inflate(data: bytes) -> bytes:
    """A stream's Flate data, inflated up to the end the data itself marks.

    The end of line before `endstream` is not part of the data, but the data may itself end in a carriage return
    (one stream in 256): ending the stream where zlib's data ends, not where a pattern guesses, reads both right.
    """
    inflater = zlib.decompressobj()
    out = inflater.decompress(data)
    assert inflater.eof, "a stream's compressed data ends before its end marker"
    return out


def _unicode_map(cmap: bytes) -> dict[int, str]:
    """Code -> letters of a ToUnicode CMap (the `bfrange` and `bfchar` forms matplotlib writes)."""
    codes: dict[int, str] = {}
    text = cmap.decode("latin-1")
    for block in re.findall(r"beginbfrange(.*?)endbfrange", text, re.S):
        for lo, hi, dest in re.findall(r"<(\w+)>\s*<(\w+)>\s*(\[.*?\]|<\w+>)", block, re.S):
            targets = re.findall(r"<(\w+)>", dest)
            for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                if dest.startswith("["):
                    codes[code] = _utf16(targets[i])
                else:
                    codes[code] = chr(int(targets[0], 16) + i)
    for block in re.findall(r"beginbfchar(.*?)endbfchar", text, re.S):
        for code, dest in re.findall(r"<(\w+)>\s*<(\w+)>", block):
            codes[int(code, 16)] = _utf16(dest)
    return codes


def _utf16(hex_text: str) -> str:
    return bytes.fromhex(hex_text).decode("utf-16-be")


def _literal(content: bytes, i: int) -> tuple[bytes, int]:
    """The bytes of the literal string that opens at `content[i]` ("("), and where it ends."""
    out, depth, i = bytearray(), 1, i + 1
    while True:
        c = content[i]
        if c == 0x5C:  # backslash
            n = content[i + 1]
            if 0x30 <= n <= 0x37:
                digits = re.match(rb"[0-7]{1,3}", content[i + 1 : i + 4])
                assert digits is not None
                out.append(int(digits.group(), 8) & 0xFF)
                i += 1 + len(digits.group())
                continue
            if n != 0x0A:  # a backslash before a newline continues the line
                out.append(ESCAPES.get(n, n))
            i += 2
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return bytes(out), i + 1
        out.append(c)
        i += 1


def pdf_text(data: bytes) -> str:
    """Every text object of every page, a line each, decoded through its font's ToUnicode map."""
    objects = pdf_objects(data)
    fonts: dict[bytes, dict[int, str]] = {}
    for head, _ in objects.values():
        for name, ref in re.findall(rb"/(F\d+) (\d+) 0 R", head):
            font_head = objects[int(ref)][0]
            to_unicode = re.search(rb"/ToUnicode (\d+) 0 R", font_head)
            if to_unicode is None:
                raise AssertionError(f"font {name.decode()} has no ToUnicode map: its text cannot be read back")
            fonts[name] = _unicode_map(objects[int(to_unicode.group(1))][1])
    lines: list[str] = []
    pages = [
        int(ref)
        for head, _ in objects.values()
        for ref in re.findall(rb"/Type /Page\b.*?/Contents (\d+) 0 R", head, re.S)
    ]
    for number in pages:
        content = objects[number][1]
        font: dict[int, str] = {}
        line: list[str] = []
        i = 0
        while i < len(content):
            if content[i] == 0x28:
                raw, i = _literal(content, i)
                line += [font.get(int.from_bytes(raw[k : k + 2], "big"), "\ufffd") for k in range(0, len(raw), 2)]
                continue
            chosen = re.match(rb"/(F\d+) [\d.]+ Tf", content[i : i + 40])
            if chosen:
                font = fonts[chosen.group(1)]
                i += chosen.end()
                continue
            if content[i : i + 2] == b"ET":
                lines.append("".join(line))
                line = []
            i += 1
    return "\n".join(lines)
