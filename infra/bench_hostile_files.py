"""Hostile files against the parsers: what each costs to parse, and what ingest makes of it.

    python -m infra.bench_hostile_files                   # every file, the current code
    python -m infra.bench_hostile_files --only docx-xml-bomb --timeout 300
    python -m infra.bench_hostile_files --src /tmp/old    # the same files against another checkout (before/after)

Each file is built here (small uploads that expand: zip bombs, page trees, many elements, many chunks, text
PostgreSQL cannot store), written to a temporary folder, and parsed in a fresh Python process of its own, so that
the process's peak resident memory (VmHWM) is that file's alone. Per file it prints the outcome (`accepted` with
the chunk count, or the error ingest records), the wall time of parsing plus counting chunks (the format's libraries
imported beforehand), the peak RSS and its growth over the process's baseline, and the peak of Python allocations
(tracemalloc, which slows allocation-heavy code down and does not see libxml2's or zlib's own buffers; RSS does).
A file still running after `--timeout` seconds is stopped and shown with the RSS it had reached.

The builders are also what the tests use (tests/unit/test_parser_bounds.py), so the figures and the regression
tests speak of the same files.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------------------------------
# DOCX
# --------------------------------------------------------------------------------------------------------------
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    '</Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="word/document.xml"/></Relationships>'
)
_DOCUMENT_HEAD = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{_W}"><w:body>'
_DOCUMENT_TAIL = "</w:body></w:document>"


def docx_with_body(body: Iterable[bytes], extra: dict[str, bytes] | None = None,
                   compresslevel: int = 9) -> bytes:
    """A minimal DOCX (content types, package relationships, document part) whose body is the given XML, written
    to the zip piece by piece, so a body of hundreds of megabytes never sits in memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(_DOCUMENT_HEAD.encode())
            for piece in body:
                part.write(piece)
            part.write(_DOCUMENT_TAIL.encode())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _repeat(unit: bytes, count: int, per_write: int = 20_000) -> Iterable[bytes]:
    block = unit * per_write
    for _ in range(count // per_write):
        yield block
    yield unit * (count % per_write)


def docx_empty_paragraphs(count: int = 300_000) -> bytes:
    """The issue's 3.5 KB DOCX: 300,000 empty paragraphs (~140 s of ingest CPU before)."""
    return docx_with_body(_repeat(b"<w:p/>", count))


def docx_many_chunks(count: int = 140_000) -> bytes:
    """A ~50 KB DOCX of one sentence repeated as paragraphs: thousands of chunks after a long parse."""
    sentence = b"<w:p><w:r><w:t>Refunds reach the card within five to ten business days of approval.</w:t></w:r></w:p>"
    return docx_with_body(_repeat(sentence, count))


def docx_xml_bomb(xml_bytes: int = 300 * 1024 * 1024) -> bytes:
    """The issue's 308 KB DOCX that is 300 MB of XML once unzipped (93 -> 995 MiB of ingest memory before):
    paragraphs of one letter repeated a million times, which deflate compresses about 1,000 to 1."""
    run = 1_000_000
    paragraph = b"<w:p><w:r><w:t>" + b"x" * run + b"</w:t></w:r></w:p>"
    return docx_with_body(paragraph for _ in range(xml_bytes // len(paragraph)))


def docx_lying_directory(real_bytes: int = 50 * 1024 * 1024, declared: int = 2_000) -> bytes:
    """A DOCX whose zip directory understates the document part: 2 KB on paper, 50 MB once inflated."""
    unit = b"<w:p><w:r><w:t>x</w:t></w:r></w:p>"
    xml = _DOCUMENT_HEAD.encode() + unit * (real_bytes // len(unit)) + _DOCUMENT_TAIL.encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("word/document.xml", xml)
    data = bytearray(buffer.getvalue())
    name = b"word/document.xml"
    # The uncompressed size sits at offset 22 of the local header and 24 of the central directory entry.
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        at = data.find(signature)
        while data[at + name_at:at + name_at + len(name)] != name:
            at = data.find(signature, at + 4)
        data[at + size_at:at + size_at + 4] = declared.to_bytes(4, "little")
    return bytes(data)


def docx_with_title(title: str, body_text: str = "Refunds reach the card within ten days.") -> bytes:
    """A regular python-docx document with the given core-properties title."""
    import docx

    document = docx.Document()
    document.core_properties.title = title
    document.add_paragraph(body_text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------------------------------
def _pdf(objects: list[bytes]) -> bytes:
    """A PDF from numbered object bodies (object 1 is the catalog), with a correct cross-reference table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def _stream(data: bytes, compress: bool = False, extra: bytes = b"") -> bytes:
    if compress:
        import zlib

        data = zlib.compress(data, 9)
        extra += b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def pdf_page_tree_bomb(fanout: int = 1_000, levels: int = 2) -> bytes:
    """A few kilobytes whose page tree repeats one page node: fanout ** levels pages (a million by default)."""
    # 1 catalog, 2 font, 3 content, 4 leaf page, 5.. one /Pages node per level, each listing the level below
    # `fanout` times; the root is the last.
    content = _stream(b"BT /F1 12 Tf 72 720 Td (Refunds take ten days.) Tj ET")
    objects = [b"", _FONT, content]
    leaf = 4
    objects.append(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
                   b"/Resources << /Font << /F1 2 0 R >> >> >>" % (5 + levels - 1))
    below, count = leaf, 1
    for level in range(levels):
        number = 5 + level
        count *= fanout
        kids = b" ".join(b"%d 0 R" % below for _ in range(fanout))
        objects.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count))
        below = number
    objects[0] = b"<< /Type /Catalog /Pages %d 0 R >>" % below
    return _pdf(objects)


def _letters(number: int) -> bytes:
    """0 -> b"a", 25 -> b"z", 26 -> b"ba": a word per number (digits would read as page numbers)."""
    word = b""
    while True:
        number, digit = divmod(number, 26)
        word = bytes([97 + digit]) + word
        if not number:
            return word


def pdf_many_pages(pages: int = 20_000) -> bytes:
    """A PDF of many small distinct pages (one short sentence each)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", _FONT]
    kids = []
    for number in range(pages):
        content_id, page_id = len(objects) + 1, len(objects) + 2
        objects.append(_stream(b"BT /F1 12 Tf 72 720 Td (Refund rule %s applies to annual plans.) Tj ET"
                               % _letters(number)))
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                       b"/Resources << /Font << /F1 3 0 R >> >> >>" % content_id)
        kids.append(b"%d 0 R" % page_id)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), pages)
    return _pdf(objects)


def pdf_flate_bomb(inflated: int = 400 * 1024 * 1024, text: bool = False) -> bytes:
    """One page whose content stream is a few hundred kilobytes deflated and `inflated` bytes of operators (or of
    text-showing operators with `text`) once decompressed."""
    import zlib

    unit = b"BT /F1 12 Tf 72 720 Td (Refunds take ten days.) Tj ET\n" if text else b"q Q\n"
    compressor = zlib.compressobj(9)
    block = unit * (1_048_576 // len(unit))
    parts = [compressor.compress(block) for _ in range(inflated // len(block))]
    parts.append(compressor.flush())
    data = b"".join(parts)
    content = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
               _FONT,
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
               b"/Resources << /Font << /F1 3 0 R >> >> >>",
               content]
    return _pdf(objects)


def pdf_with_form(form_text: str = "Refunds take ten days.", invocations: int = 1) -> bytes:
    """One page that draws a form XObject (which shows `form_text`) `invocations` times."""
    form = _stream(b"BT /F1 12 Tf 72 700 Td (" + form_text.encode("latin-1") + b") Tj ET",
                   extra=b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>")
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
               _FONT,
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
               b"/Resources << /Font << /F1 3 0 R >> /XObject << /X0 6 0 R >> >> >>",
               _stream(b"q /X0 Do Q\n" * invocations),
               form]
    return _pdf(objects)


def pdf_text(lines: list[str], title: str | None = None) -> bytes:
    """A one-page PDF showing the given ASCII lines (and an /Info /Title)."""
    ops = [b"BT /F1 12 Tf 72 720 Td 14 TL"]
    for line in lines:
        ops.append(b"(" + line.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(")
                   .replace(b")", b"\\)") + b") '")
    ops.append(b"ET")
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
               _FONT,
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
               b"/Resources << /Font << /F1 3 0 R >> >> >>",
               _stream(b"\n".join(ops))]
    if title is not None:
        objects.append(b"<< /Title (" + title.encode("latin-1") + b") >>")
    data = _pdf(objects)
    if title is not None:
        data = data.replace(b"/Root 1 0 R", b"/Root 1 0 R /Info 6 0 R")
    return data


# --------------------------------------------------------------------------------------------------------------
# Text formats
# --------------------------------------------------------------------------------------------------------------
def html_many_elements(target_bytes: int = 15_700_000) -> bytes:
    """The issue's 15.7 MB HTML page (13,219 chunks before): sections of headings and paragraphs."""
    out = [b"<html><head><title>Everything</title></head><body><main>"]
    size, n = 0, 0
    while size < target_bytes:
        section = (f"<h2>Question {n}</h2><p>Answer {n}: refunds reach the card within five to ten business days, "
                   f"and invoices {n} are in Billing.</p><ul><li>Item {n}a</li><li>Item {n}b</li></ul>").encode()
        out.append(section)
        size += len(section)
        n += 1
    out.append(b"</main></body></html>")
    return b"".join(out)


def markdown_many_lines(lines: int = 900_000) -> bytes:
    """3.6 MB of one-character list items (under the character bound): millions of Markdown tokens."""
    return b"# List\n\n" + b"- a\n" * lines


def markdown_emphasis(pairs: int = 990_000) -> bytes:
    """One 4 MB line of "*a* ": a million inline tokens (14 s and 430 MiB per megabyte before)."""
    return b"*a* " * pairs


def markdown_raw_html(tags: int = 400_000) -> bytes:
    """One raw HTML block of 400,000 tags: a single markdown-it token, a tree of 400,000 tags for BeautifulSoup."""
    return b"<div>\n" + b"<p>x</p>" * tags + b"\n</div>\n"


def markdown_manual(sections: int = 1_600) -> bytes:
    """Not hostile, for comparison: a 1.6 MB manual of 1,600 sections of prose, 1,762 chunks: within every bound."""
    import random

    rng = random.Random(3)
    words = ("account billing invoice refund plan upgrade seat admin password reset token webhook retry export "
             "report calendar booking reminder timezone integration permission audit domain").split()
    out = ["# Administrator manual\n"]
    for n in range(sections):
        out.append(f"\n## Topic {n}: {rng.choice(words)} {rng.choice(words)}\n\n")
        for _ in range(3):
            sentence = " ".join(rng.choice(words) for _ in range(rng.randint(8, 20)))
            out.append(f"{sentence.capitalize()}. " * rng.randint(2, 4) + "\n\n")
    return "".join(out).encode()


def text_huge(chars: int = 19_000_000) -> bytes:
    """Plain text just under MAX_FILE_BYTES: far more characters than a document may have."""
    sentence = b"Refunds reach the card within five to ten business days. "
    return sentence * (chars // len(sentence))


def csv_many_rows(rows: int = 150_000) -> bytes:
    """3.7 MB of short question/answer rows (under the character bound)."""
    return b"question,answer\n" + b"".join(b"How long %d?,Ten days.\n" % i for i in range(rows))


def json_many_items(items: int = 150_000) -> bytes:
    """3.5 MB of short question/answer objects (under the character bound)."""
    return json.dumps({"faqs": [{"q": f"Q{i}", "a": "A"} for i in range(items)]}, separators=(",", ":")).encode()


def json_deep(depth: int = 100_000) -> bytes:
    return b'{"faqs": ' + b"[" * depth + b"]" * depth + b"}"


FAQ_WITH_SURROGATE = (
    b'{"title": "Billing FAQ \\ud800", "faqs": ['
    b'{"question": "How long does a refund take?", "answer": "Five to ten business days \\ud800 after approval."},'
    b'{"question": "Where are my invoices?", "answer": "Under Billing\\u0000 > Invoices."}]}'
)
"""The issue's FAQ sheet: a lone UTF-16 surrogate (valid JSON, not storable text) and a NUL in the answers."""


# --------------------------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------------------------
FILES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "docx-empty-paragraphs": ("empty.docx", docx_empty_paragraphs),
    "docx-many-chunks": ("chunks.docx", docx_many_chunks),
    "docx-xml-bomb": ("bomb.docx", docx_xml_bomb),
    "docx-lying-directory": ("lying.docx", docx_lying_directory),
    "pdf-page-tree-bomb": ("pages.pdf", pdf_page_tree_bomb),
    "pdf-many-pages": ("many.pdf", pdf_many_pages),
    "pdf-flate-bomb": ("flate.pdf", pdf_flate_bomb),
    "html-15mb": ("big.html", html_many_elements),
    "markdown-many-lines": ("list.md", markdown_many_lines),
    "markdown-emphasis": ("emphasis.md", markdown_emphasis),
    "markdown-raw-html": ("raw.md", markdown_raw_html),
    "text-huge": ("huge.txt", text_huge),
    "csv-many-rows": ("faq.csv", csv_many_rows),
    "json-many-items": ("faq.json", json_many_items),
    "json-deep": ("deep.json", json_deep),
    "json-surrogate": ("faq.json", lambda: FAQ_WITH_SURROGATE),
    "markdown-manual": ("manual.md", markdown_manual),
}

# Run in the child process: parse the file the way ingest does and report. `prepare_document` is the ingest step
# (parse, clean, bound, count chunks); code from before it existed is measured as parse + chunk, its equivalent.
_CHILD = r"""
import json, sys, time, tracemalloc
path, name = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()


def status(key):  # this process image's own figures (ru_maxrss would include the parent's, kept across exec)
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024


from shared.config import Settings
settings = Settings.from_env({"DATABASE_URL": "postgresql://bench@127.0.0.1/none"})
import shared.ingest.chunker
from shared.ingest.parsers import _parser, detect_format
_parser(detect_format(name))  # the format's libraries are imported before measuring: they are not the file's cost
try:
    from shared.ingest.pipeline import prepare_document
except ImportError:
    prepare_document = None
baseline = status("VmRSS")
tracemalloc.start()
started = time.perf_counter()
try:
    if prepare_document is not None:
        prepared = prepare_document(data, name, None, settings)
        outcome = f"accepted: {prepared.chunk_count:,} chunks"
    else:
        from shared.ingest.parsers import parse_document
        from shared.ingest.chunker import chunk_document
        parsed = parse_document(data, name)
        chunks = chunk_document(parsed, settings.chunk_max_tokens, settings.chunk_overlap_tokens)
        outcome = f"accepted: {len(chunks):,} chunks"
except Exception as exc:
    outcome = f"{type(exc).__name__}: {exc}"
seconds = time.perf_counter() - started
_, traced = tracemalloc.get_traced_memory()
peak = status("VmHWM")
print(json.dumps({"outcome": outcome, "seconds": seconds, "rss_mib": peak, "rss_growth_mib": peak - baseline,
                  "traced_mib": traced / 2**20}))
"""


def run(names: list[str], src: Path, timeout: float) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory(prefix="hostile-") as folder:
        for name in names:
            filename, build = FILES[name]
            data = build()
            path = Path(folder) / filename
            path.write_bytes(data)
            row = {"file": name, "bytes": len(data)}
            row.update(_parse_in_child(path, filename, src, timeout))
            results.append(row)
            print(_format(row), flush=True)
            path.unlink()
    return results


def _parse_in_child(path: Path, filename: str, src: Path, timeout: float) -> dict:
    """Run _CHILD on the file; while it runs, sample its RSS (so a parse stopped at the timeout still shows what it
    had taken by then)."""
    import psutil

    env = {**os.environ, "PYTHONPATH": str(src), "LOG_LEVEL": "ERROR"}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), filename], cwd=src, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process, sampled, deadline = psutil.Process(child.pid), 0, time.monotonic() + timeout
    while child.poll() is None and time.monotonic() < deadline:
        try:
            sampled = max(sampled, process.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    if child.poll() is None:
        child.kill()
        child.communicate()
        return {"outcome": f"still parsing after {timeout:.0f} s (stopped)", "seconds": timeout,
                "sampled_rss_mib": sampled / 2**20}
    out, err = child.communicate()
    lines = out.strip().splitlines()
    if child.returncode != 0 or not lines:
        return {"outcome": f"process died ({child.returncode}): {err.strip()[-200:]}"}
    return json.loads(lines[-1])


def _format(row: dict) -> str:
    figures = f"{row.get('seconds', float('nan')):8.2f} s"
    if "sampled_rss_mib" in row:
        figures += f" | RSS reached {row['sampled_rss_mib']:6.0f} MiB by then"
    if "rss_mib" in row:
        figures += (f" | peak RSS {row['rss_mib']:6.0f} MiB (+{row['rss_growth_mib']:4.0f})"
                    f" | traced {row['traced_mib']:6.1f} MiB")
    outcome = row["outcome"] if len(row["outcome"]) <= 150 else row["outcome"][:147] + "..."
    return f"{row['file']:<22} {row['bytes']:>11,} B | {figures} | {outcome}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(FILES), help="run only this file (repeatable)")
    parser.add_argument("--src", type=Path, default=ROOT, help="checkout whose `shared` package parses the files")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a parse is stopped")
    parser.add_argument("--json", action="store_true", help="print the results as JSON at the end too")
    args = parser.parse_args(argv)
    print(f"code: {args.src}   cores: {os.cpu_count()}   timeout: {args.timeout:.0f} s")
    results = run(args.only or list(FILES), args.src.resolve(), args.timeout)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
