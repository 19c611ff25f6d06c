"""Parsers under hostile input: small files that expand (zip bombs, page trees, many elements) are refused by the bound
they pass, early and in bounded memory, and every parser's text comes out cleaned of what PostgreSQL and Firestore
cannot store. The files are the benchmark's (infra/bench_hostile_files.py), so tests and figures speak of the same."""

from __future__ import annotations

import codecs
import io
import json
import random
import tracemalloc

import pytest

from infra import bench_hostile_files as hostile
from shared.config import Settings
from shared.errors import CorruptFile, DocumentRejected, DocumentTooLarge, UnsupportedFile
from shared.ingest.parsers import ParseLimits, _parser, clean_text, clean_title, detect_format, parse_document
from shared.ingest.parsers.common import MAX_TITLE_CHARS

MiB = 1024 * 1024


def refused(data: bytes, filename: str, limits: ParseLimits | None = None, error=DocumentTooLarge):
    """Parse, expecting `error`; return it and the peak of Python allocations while parsing (deterministic: no
    clock involved). A bound that is checked before the expensive part keeps that peak near the file's size."""
    _parser(detect_format(filename))  # the parser's libraries are imported first: they are not the file's cost
    tracemalloc.start()
    try:
        with pytest.raises(error) as caught:
            parse_document(data, filename, limits=limits or ParseLimits())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return caught.value, peak


# ---------------------------------------------------------------------------------------------------------------
# DOCX: the issue's three files, and the zip directory
# ---------------------------------------------------------------------------------------------------------------


def test_the_issues_docx_of_300000_empty_paragraphs_is_refused_before_it_is_read():
    data = hostile.docx_empty_paragraphs()  # 3.5 KB; ~140 s of ingest CPU before
    assert len(data) < 4_000
    error, peak = refused(data, "empty.docx")
    assert "word/document.xml inflates 646 times over" in str(error) and "more than 500:1 is refused as a zip " \
        "bomb" in str(error)
    assert peak < 2 * MiB  # the 1.8 MB part was never inflated


def test_the_issues_docx_of_8000_chunks_is_refused_before_its_paragraphs_are_walked():
    data = hostile.docx_many_chunks()  # 49 KB, 14 MB of XML (293:1); 131 s of parsing and 8,334 chunks before
    error, peak = refused(data, "chunks.docx")
    assert str(error) == ("the DOCX file has 140,000 paragraphs and table cells; the limit is 100,000 "
                          "(MAX_DOCUMENT_ELEMENTS): split it into smaller files")
    assert peak < 48 * MiB  # the part's 14 MB as bytes, once or twice; lxml's tree is not Python's to count


def test_the_issues_docx_of_300_mb_of_xml_is_refused_from_its_zip_directory():
    data = hostile.docx_xml_bomb()  # 311 KB that unzip to 300 MB (the ingest process went from 93 to 995 MiB)
    error, peak = refused(data, "bomb.docx")
    assert "inflates 1,011 times over (314,010,530 bytes from 310,532)" in str(error)
    assert peak < 4 * MiB


def test_a_docx_whose_zip_directory_understates_a_part_is_corrupt_and_never_inflated_beyond_it():
    data = hostile.docx_lying_directory()  # says 2 KB, inflates to 50 MB
    error, peak = refused(data, "lying.docx", error=CorruptFile)
    assert "damaged or truncated" in str(error)
    assert peak < 4 * MiB  # inflated in pieces and counted, never whole


def _docx_of(members: dict[str, bytes]) -> bytes:
    """The minimal DOCX with extra zip members stored (not compressed) or deflated as named."""
    return hostile.docx_with_body([b"<w:p><w:r><w:t>Refunds take ten days.</w:t></w:r></w:p>"], extra=members)


def test_docx_unzipped_size_in_total_and_per_xml_part():
    limits = ParseLimits(max_expanded_bytes=4 * MiB)
    # Random bytes barely compress, so the ratio check stays out of it: only the sizes decide.
    media = {f"word/media/image{i}.bin": random.Random(i).randbytes(MiB) for i in range(5)}
    error, _ = refused(_docx_of(media), "photos.docx", limits)
    assert str(error).startswith("the DOCX file expands to 5,") and "once unzipped; the limit is 4,194,304 " \
        "(MAX_EXPANDED_BYTES): split it into smaller files" in str(error)

    xml = {"word/extra.xml": b"<x>" + random.Random(9).randbytes(1_100_000).hex().encode()
           + b"</x>"}  # 2.2 MB of XML, over a quarter of 4 MiB
    error, _ = refused(_docx_of(xml), "xml.docx", limits)
    assert "part word/extra.xml is 2,200,007 bytes of XML once unzipped; the limit is 1,048,576" in str(error)


def test_docx_paragraphs_and_cells_are_counted_before_they_are_walked():
    limits = ParseLimits(max_elements=1_000)
    data = hostile.docx_with_body([b"<w:p><w:r><w:t>Ten days.</w:t></w:r></w:p>" * 1_001])
    error, _ = refused(data, "many.docx", limits)
    assert str(error) == ("the DOCX file has 1,001 paragraphs and table cells; the limit is 1,000 "
                          "(MAX_DOCUMENT_ELEMENTS): split it into smaller files")
    assert parse_document(hostile.docx_with_body([b"<w:p><w:r><w:t>Ten days.</w:t></w:r></w:p>" * 1_000]),
                          "ok.docx", limits=limits).blocks


def test_docx_characters_are_counted_while_reading():
    data = hostile.docx_with_body([b"<w:p><w:r><w:t>" + b"word " * 30 + b"</w:t></w:r></w:p>"] * 10)
    error, _ = refused(data, "long.docx", ParseLimits(max_chars=1_000))
    assert "more than 1,000 characters of text; the limit is 1,000 (MAX_DOCUMENT_CHARS)" in str(error)


def test_docx_of_many_short_paragraphs_under_the_bounds_still_parses():
    # Under every bound, read with cached style lookups (python-docx's own took ~0.5 ms a paragraph).
    data = hostile.docx_with_body([b"<w:p><w:r><w:t>Refund rule.</w:t></w:r></w:p>" * 5_000], compresslevel=1)
    document = parse_document(data, "rules.docx")
    assert [b.text for b in document.blocks] == ["Refund rule."] * 5_000


def test_docx_tables_read_from_the_xml_match_python_docx_cells_merges_included():
    """Tables are read from the XML (python-docx's rows and cells cost XPath queries whose price grew with the
    document: 14 s for 6,000 rows); the text must be what python-docx's own cells give."""
    import docx
    from docx.table import Table

    from shared.ingest.parsers.common import _table_blocks

    document = docx.Document()
    table = document.add_table(rows=4, cols=3)
    for r, row in enumerate(table.rows):
        for c, cell in enumerate(row.cells):
            cell.text = f"r{r}c{c}"
    table.cell(0, 0).merge(table.cell(0, 1))  # horizontal
    table.cell(1, 2).merge(table.cell(3, 2))  # vertical, three rows
    table.cell(2, 0).paragraphs[0].add_run("\tand a tab")
    buffer = io.BytesIO()
    document.save(buffer)

    expected = []
    for row in Table(table._tbl, None).rows:  # the way the parser read tables before
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) not in seen:
                seen.add(id(cell._tc))
                cells.append(cell.text)
        expected.append(cells)
    parsed = parse_document(buffer.getvalue(), "table.docx")
    assert [b.text for b in parsed.blocks if b.kind == "table"] == [b.text for b in _table_blocks(expected)]
    assert "r0c0 r0c1" in parsed.blocks[0].text.replace("\n", " ")


# ---------------------------------------------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------------------------------------------


def test_pdf_page_tree_of_a_million_pages_is_refused_from_its_count():
    data = hostile.pdf_page_tree_bomb()  # 12 KB: one page listed a thousand times a thousand times
    error, peak = refused(data, "pages.pdf")
    assert str(error) == ("the PDF has 1,000,000 pages; the limit is 2,000 (MAX_PDF_PAGES): split it into smaller "
                          "files")
    assert peak < 4 * MiB


def test_pdf_page_tree_that_understates_its_count_is_bounded_while_walked():
    data = hostile.pdf_page_tree_bomb().replace(b"/Count 1000000", b"/Count 2")
    error, peak = refused(data, "pages.pdf")
    assert "page tree entry limit" in str(error) and "split it into smaller files" in str(error)
    assert peak < 16 * MiB


def test_pdf_of_many_pages():
    error, _ = refused(hostile.pdf_many_pages(30), "many.pdf", ParseLimits(max_pages=20))
    assert str(error).startswith("the PDF has 30 pages; the limit is 20 (MAX_PDF_PAGES)")
    assert parse_document(hostile.pdf_many_pages(20), "ok.pdf", limits=ParseLimits(max_pages=20)).blocks


def test_pdf_flate_bomb_is_stopped_by_the_decompression_limit():
    data = hostile.pdf_flate_bomb(60 * MiB)  # 60 KB whose page content inflates to 60 MB
    error, peak = refused(data, "flate.pdf")
    assert "beyond what we read safely" in str(error) and "decompressing" in str(error)
    assert peak < 80 * MiB  # stopped at a quarter of MAX_EXPANDED_BYTES (pypdf's own limit is 75 MB a stream)


def test_pdf_decoded_page_contents_are_counted_together():
    # Ten pages of 1 MB of operators each: every stream is under its own limit, together they are not.
    pages = [hostile.pdf_flate_bomb(MiB) for _ in range(2)]
    assert pages  # the builder makes one page; build a ten-page document from the same stream instead:
    unit = b"q Q\n" * (MiB // 4)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [%s] /Count 10 >>" % b" ".join(b"%d 0 R" % (4 + i) for i in range(10)),
               hostile._FONT]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 14 0 R >>"] * 10
    objects.append(hostile._stream(unit, compress=True))
    error, _ = refused(hostile._pdf(objects), "ten.pdf", ParseLimits(max_expanded_bytes=8 * MiB))
    assert "of page content once decompressed; the limit is 8,388,608 (MAX_EXPANDED_BYTES)" in str(error)


def test_pdf_characters_and_operations_are_counted_as_extracted():
    lines = [f"Refunds take {n} days." for n in range(40)]
    error, _ = refused(hostile.pdf_text(lines), "text.pdf", ParseLimits(max_chars=300))
    assert "more than 300 characters of text" in str(error)
    error, _ = refused(hostile.pdf_text(lines), "text.pdf", ParseLimits(max_elements=2))
    assert "more than 40 content operations; the limit is 40 (20 x MAX_DOCUMENT_ELEMENTS)" in str(error)


def test_pdf_bound_passed_inside_a_form_xobject_is_not_swallowed_by_pypdf():
    # pypdf catches what a visitor raises while it extracts a form XObject; the budget raises it again.
    error, _ = refused(hostile.pdf_with_form("x" * 200), "form.pdf", ParseLimits(max_chars=100))
    assert "more than 100 characters of text" in str(error)
    assert [b.text for b in parse_document(hostile.pdf_with_form(), "form.pdf").blocks] == ["Refunds take ten days."]


# ---------------------------------------------------------------------------------------------------------------
# Text formats
# ---------------------------------------------------------------------------------------------------------------


def test_html_tags_are_counted_before_the_tree_is_built():
    data = hostile.html_many_elements()  # the issue's 15.7 MB page (13,219 chunks before)
    error, peak = refused(data, "big.html")
    assert str(error) == ("the HTML file has 428,145 tags; the limit is 100,000 (MAX_DOCUMENT_ELEMENTS): split it into "
                          "smaller files")
    assert peak < 2.5 * len(data)  # the decoded text and the count, no tree
    # "<" in text does not count as a tag.
    assert parse_document(b"<p>" + b"a < b " * 200 + b"</p>", "lt.html", limits=ParseLimits(max_elements=50)).blocks


def test_markdown_tokens_are_counted_as_markdown_it_makes_them():
    # One line of emphasis: a million inline tokens for a megabyte before (14 s and 430 MiB).
    error, peak = refused(b"*a* " * 15_000, "inline.md", ParseLimits(max_elements=5_000))
    assert "more than 5,000 syntax tokens; the limit is 5,000 (MAX_DOCUMENT_ELEMENTS)" in str(error)
    assert peak < 8 * MiB
    error, _ = refused(b"- a\n" * 4_000, "list.md", ParseLimits(max_elements=5_000))  # fewer lines than that
    assert "more than 5,000 syntax tokens" in str(error)


def test_raw_html_in_markdown_counts_its_tags_too():
    # One html_block token for markdown-it, a tree of 400,000 tags for BeautifulSoup.
    data = hostile.markdown_raw_html()
    error, peak = refused(data, "raw.md")
    assert str(error).startswith("the Markdown file has 400,001 tags; the limit is 100,000 (MAX_DOCUMENT_ELEMENTS)")
    assert peak < 4 * len(data)


def test_markdown_and_text_lines_and_characters_are_counted_before_parsing():
    error, peak = refused(hostile.markdown_many_lines(), "list.md")  # 900,000 lines in 3.6 MB
    assert str(error) == ("the Markdown file has 900,003 lines; the limit is 100,000 (MAX_DOCUMENT_ELEMENTS): "
                          "split it into smaller files")
    error, peak = refused(hostile.text_huge(), "huge.txt")  # 19 MB of text, just under MAX_FILE_BYTES
    assert str(error).startswith("the text file has 18,999,981 characters of text; the limit is 4,000,000 "
                                 "(MAX_DOCUMENT_CHARS)")
    assert peak < 3 * 19_000_000  # the decoded text, nothing parsed


def test_csv_rows_and_json_values_are_counted_while_decoding():
    limits = ParseLimits(max_elements=5_000)
    error, _ = refused(hostile.csv_many_rows(6_000), "faq.csv", limits)
    assert "the CSV file has more than 5,000 rows; the limit is 5,000 (MAX_DOCUMENT_ELEMENTS)" in str(error)
    error, peak = refused(hostile.json_many_items(6_000), "faq.json", limits)
    assert "the JSON file has more than 5,000 values; the limit is 5,000 (MAX_DOCUMENT_ELEMENTS)" in str(error)
    assert peak < 4 * MiB
    assert len(parse_document(hostile.json_many_items(4_000), "faq.json", limits=limits).blocks) == 4_000


def test_json_nesting():
    with pytest.raises(CorruptFile, match="nested too deeply"):  # beyond Python's recursion limit
        parse_document(hostile.json_deep(), "deep.json")
    deep = '{"faqs": [{"question": "Q?", "answer": "A.", "meta": ' + "[" * 40 + "]" * 40 + "}]}"
    with pytest.raises(UnsupportedFile, match="nested more than 32 levels"):
        parse_document(deep.encode(), "deep.json")


def test_limits_default_to_the_settings():
    assert ParseLimits() == ParseLimits.from_settings(Settings())
    assert ParseLimits.from_settings(Settings.from_env({"MAX_PDF_PAGES": "7", "MAX_DOCUMENT_CHARS": "9"})) == \
        ParseLimits(max_pages=7, max_chars=9)


# ---------------------------------------------------------------------------------------------------------------
# Text that PostgreSQL or Firestore cannot store is cleaned where it enters
# ---------------------------------------------------------------------------------------------------------------


def _unstorable(text: str) -> bool:
    return any(c == "\x00" or "\ud800" <= c <= "\udfff" or (c < " " and c not in "\t\n\r") for c in text)


def test_the_issues_faq_with_a_lone_surrogate_is_cleaned():
    document = parse_document(hostile.FAQ_WITH_SURROGATE, "billing-faq.json")
    assert document.title == "Billing FAQ \ufffd"
    assert [(b.info, b.text) for b in document.blocks] == [
        ("How long does a refund take?", "Five to ten business days \ufffd after approval."),
        ("Where are my invoices?", "Under Billing > Invoices."),
    ]
    assert json.dumps([b.to_json() for b in document.blocks], ensure_ascii=False).encode("utf-8")  # encodable


def _utf16(text: str) -> bytes:
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


@pytest.mark.parametrize("filename, data", [
    ("faq.json", b'[{"q": "Refund\\u0000?", "a": "Ten \\ud800\\udfff days\\u0001."}]'),
    ("faq.csv", _utf16("question,answer\nRefund\x00?,Ten\x0bdays\x01.\n")),
    ("notes.txt", _utf16("Refunds\x00 take ten\x0cdays\x1b.")),
    ("notes.md", _utf16("# Refunds\x00\n\nTen \x01days.")),
    ("page.html", b"<title>Re&#1;funds</title><p>Ten &#xd800;days&#0;.</p>"),
    ("guide.pdf", hostile.pdf_text(["Refunds\x00take\x01ten days."], title="Refunds\x02")),
])
def test_every_parsers_output_is_cleaned(filename, data):
    document = parse_document(data, filename)
    texts = [document.title] + [t for b in document.blocks for t in (b.text, b.info)]
    assert not any(_unstorable(t) for t in texts), texts
    for text in texts:
        text.encode("utf-8")  # what pg8000 and Firestore's client do; a lone surrogate raises here


def test_a_title_is_one_clean_bounded_line():
    # Every chunk carries its document's title (and the full-text column indexes it): 5,600 characters of it, before.
    document = parse_document(b"<title>" + b"Refund policy\n " * 400 + b"</title><p>Ten days.</p>", "long.html")
    assert len(document.title) <= MAX_TITLE_CHARS and document.title.endswith("policy…")
    assert "\n" not in document.title


def test_clean_text_and_clean_title():
    assert clean_text("a\x00b\ud800c\x0bd\x0ce\x1bf\x7fg\th\ni\rj") == "ab\ufffdc\nd\nefg\th\ni\rj"
    assert clean_text("😀 café") == "😀 café"
    text = "clean already"
    assert clean_text(text) is text  # the common case costs one regex search
    assert clean_title("  Refunds\n\x00policy ") == "Refunds policy"
    assert clean_title("x" * 1000) == "x" * (MAX_TITLE_CHARS - 1) + "…"


def test_a_document_of_nothing_but_unstorable_characters_is_empty():
    with pytest.raises(DocumentRejected, match="no text"):
        parse_document(b'[{"q": "Q?", "a": "\\u0000\\u0001"}]', "faq.json")
