"""Parsers: every format to clean blocks with structure kept, titles, and readable errors for bad input."""

import codecs
import io
import json
import random
import zipfile
from pathlib import Path

import docx
import pytest
from fpdf import FPDF

from shared.errors import CorruptFile, DocumentRejected, EmptyDocument, UnsupportedFile
from shared.ingest.parsers import decode_text, detect_format, parse_document, title_from_filename
from shared.models import Block

SAMPLE_KB = Path(__file__).resolve().parents[2] / "infra" / "sample_kb"


def kinds(document):
    return [block.kind for block in document.blocks]


def texts(document, kind):
    return [block.text for block in document.blocks if block.kind == kind]


# ---------------------------------------------------------------------------------------------------------------
# Format detection, titles, decoding
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("filename, content_type, expected", [
    ("refunds.md", None, "markdown"),
    ("Guide.MARKDOWN", None, "markdown"),
    ("page.htm", "text/plain", "html"),  # the extension wins
    ("notes", "text/markdown; charset=utf-8", "markdown"),  # no extension: the content type decides
    ("export", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    ("faq.csv", None, "csv"),
    ("faq.json", None, "json"),
    ("folder\\scan.PDF", None, "pdf"),
])
def test_detect_format(filename, content_type, expected):
    assert detect_format(filename, content_type) == expected


def test_unsupported_extension_names_it_and_lists_supported_types():
    with pytest.raises(UnsupportedFile) as error:
        parse_document(b"MZ\x90\x00binary", "setup.exe")
    message = str(error.value)
    assert "'.exe'" in message and ".md" in message and ".pdf" in message and ".docx" in message
    assert error.value.public_message == message  # a 4xx: safe and useful to show the editor


def test_unknown_extension_and_content_type():
    with pytest.raises(UnsupportedFile, match="no extension"):
        parse_document(b"data", "blob", "application/octet-stream")


@pytest.mark.parametrize("filename, expected", [
    ("refund-policy.md", "Refund policy"),
    ("billing/reset_password.html", "Reset password"),
    ("general-faq.csv", "General FAQ"),
    ("API--keys..txt", "API keys"),
    ("___.md", "Untitled"),
])
def test_title_from_filename(filename, expected):
    assert title_from_filename(filename) == expected


@pytest.mark.parametrize("data, expected", [
    (codecs.BOM_UTF8 + "café\r\nnext".encode(), "café\nnext"),
    ("café – naïve".encode("cp1252"), "café – naïve"),
    (b"\x81\x8d latin", "\x81\x8d latin"),  # bytes cp1252 leaves undefined still decode (Latin-1)
    (codecs.BOM_UTF16_LE + "hello".encode("utf-16-le"), "hello"),
])
def test_decode_text(data, expected):
    assert decode_text(data) == expected


def test_nul_bytes_in_a_text_file_mean_binary():
    with pytest.raises(CorruptFile, match="binary"):
        parse_document(b"hello\x00world", "notes.txt")


@pytest.mark.parametrize("filename", ["empty.md", "empty.pdf", "empty.docx", "empty.csv", "empty.txt"])
def test_empty_file(filename):
    with pytest.raises(EmptyDocument, match="empty"):
        parse_document(b"", filename)


def test_whitespace_only_markdown_is_empty():
    with pytest.raises(EmptyDocument):
        parse_document(b"  \n\n\t\n ", "blank.md")


def test_markdown_with_only_front_matter_and_headings_is_empty():
    with pytest.raises(EmptyDocument, match="no text"):
        parse_document(b"---\ntitle: Nothing\n---\n# Heading\n## Another\n", "nothing.md")


# ---------------------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------------------

MARKDOWN = b"""---
title: "Refund policy"
topic: billing
---

# Refunds

We offer **full refunds** within [30 days](https://example.com/terms). ![logo](logo.png) Quote `BW-2107`.

1. Open *Settings*
   - Billing
     - Invoices
2. Click **Request refund**

3. Wait

| Plan | Price |
|------|-------|
| Starter | $12 |
| Pro \\| Max | $29 |

```python
print("refund")
```

> Refunds take 5-10 business days.

    indented code
"""


def test_markdown_structure():
    document = parse_document(MARKDOWN, "billing/refunds.md")
    assert document.title == "Refund policy"  # front matter wins over the H1
    assert document.blocks[0] == Block("heading", "Refunds", level=1)
    assert "topic" not in document.blocks[1].text  # front matter is stripped
    paragraph = document.blocks[1]
    assert paragraph.text == "We offer full refunds within 30 days. Quote `BW-2107`."
    assert texts(document, "list") == [
        "1. Open Settings\n  - Billing\n    - Invoices\n2. Click Request refund\n3. Wait"]
    assert texts(document, "table") == ["| Plan | Price |\n| --- | --- |\n| Starter | $12 |\n| Pro \\| Max | $29 |"]
    code = [b for b in document.blocks if b.kind == "code"]
    assert code[0] == Block("code", 'print("refund")', info="python")
    assert code[1] == Block("code", "indented code")
    assert "Refunds take 5-10 business days." in texts(document, "paragraph")


def test_markdown_ordered_list_keeps_its_start_number():
    document = parse_document(b"Intro\n\n3. third\n4. fourth\n", "list.md")
    assert texts(document, "list") == ["3. third\n4. fourth"]


def test_markdown_title_from_first_h1_then_file_name():
    assert parse_document(b"Intro.\n\n# Main title\n\nText.", "x.md").title == "Main title"
    assert parse_document(b"## Only a subheading\n\nText.", "reset-password.md").title == "Reset password"


def test_markdown_leading_thematic_break_is_not_front_matter():
    document = parse_document(b"---\n\nJust text after a rule.\n\n---\n\nMore text.\n", "rule.md")
    assert texts(document, "paragraph") == ["Just text after a rule.", "More text."]


def test_markdown_raw_html_blocks_become_text():
    document = parse_document(b"<div class='note'><p>Careful <b>now</b></p></div>\n\nAfter.\n", "note.md")
    assert texts(document, "paragraph") == ["Careful now", "After."]


# ---------------------------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------------------------

HTML = """<!DOCTYPE html><html><head><title>Two-factor authentication | Brightwave Help</title>
<style>.x { color: red }</style><script>track()</script></head>
<body>
<header><nav><a href="/">Home</a></nav></header>
<aside>Related articles</aside>
<main><article>
  <header><h1>Two-factor authentication</h1></header>
  <p>Turn on <code>2FA</code>&nbsp;to   protect &amp; secure
     your account &rarr; now.<br>Second line</p>
  <ul>
    <li>Open <b>Settings</b>
      <ul><li>Security<ul><li>2FA</li></ul></li></ul>
    </li>
    <li>Click <a href="#">Enable</a></li>
  </ul>
  <ol start="3"><li><p>Scan the code</p></li><li>Confirm</li></ol>
  <pre><code class="language-bash">curl -X POST \\
  https://api.example.com</code></pre>
  <table>
    <thead><tr><th>Method</th><th>Valid for</th></tr></thead>
    <tbody><tr><td>App</td><td>30 seconds</td></tr><tr><td>SMS | text</td><td>10 minutes</td></tr></tbody>
  </table>
  <dl><dt>TOTP</dt><dd>Time-based code</dd></dl>
  <blockquote><p>Keep backup codes safe.</p></blockquote>
  <div>Loose text <span>in a div</span></div>
  <h2>Lost your phone? <a class="headerlink" href="#lost">¶</a></h2>
  <p>Use a backup code.</p>
  <div aria-hidden="true">Hidden decoration</div>
  <div role="navigation">Previous | Next</div>
  <form><label>Search</label><input></form>
</article></main>
<footer>Copyright</footer>
</body></html>"""


def test_html_structure_and_boilerplate_removal():
    document = parse_document(HTML.encode(), "account/two-factor-authentication.html")
    assert document.title == "Two-factor authentication"  # "<h1> | Site" title becomes the h1
    assert document.blocks[0] == Block("heading", "Two-factor authentication", level=1)
    assert document.blocks[1].text == "Turn on `2FA` to protect & secure your account → now.\nSecond line"
    assert texts(document, "list") == [
        "- Open Settings\n  - Security\n    - 2FA\n- Click Enable",
        "3. Scan the code\n4. Confirm",
        "- TOTP: Time-based code",
    ]
    assert [b for b in document.blocks if b.kind == "code"] == [
        Block("code", "curl -X POST \\\n  https://api.example.com", info="bash")]
    assert texts(document, "table") == [
        "| Method | Valid for |\n| --- | --- |\n| App | 30 seconds |\n| SMS \\| text | 10 minutes |"]
    assert Block("heading", "Lost your phone?", level=2) in document.blocks
    all_text = " ".join(b.text for b in document.blocks)
    for boilerplate in ("Home", "Related articles", "track()", "color", "Hidden decoration", "Previous", "Search",
                        "Copyright"):
        assert boilerplate not in all_text
    assert "Keep backup codes safe." in texts(document, "paragraph")
    assert "Loose text in a div" in texts(document, "paragraph")


def test_html_title_rules():
    assert parse_document(b"<title>Pricing</title><p>Text</p>", "p.html").title == "Pricing"
    assert parse_document(b"<h1>Heading title</h1><p>Text</p>", "p.html").title == "Heading title"
    assert parse_document(b"<p>Just text</p>", "billing/invoices.htm").title == "Invoices"


def test_html_table_without_thead_uses_first_row_as_header():
    document = parse_document(b"<table><tr><td>a</td><td>b</td></tr><tr><td>1</td></tr></table>", "t.html")
    assert texts(document, "table") == ["| a | b |\n| --- | --- |\n| 1 |  |"]


def test_html_in_cp1252_is_decoded():
    document = parse_document("<p>Café prices – in €</p>".encode("cp1252"), "cafe.html")
    assert texts(document, "paragraph") == ["Café prices – in €"]


def test_html_without_text_is_empty():
    with pytest.raises(EmptyDocument):
        parse_document(b"<html><body><nav>Menu</nav><script>x()</script></body></html>", "empty.html")


# ---------------------------------------------------------------------------------------------------------------
# Plain text
# ---------------------------------------------------------------------------------------------------------------

TEXT = """Calendar sync issues
====================

Most problems are fixed by reconnecting the
calendar. This text is wrapped.

BOOKINGS DO NOT APPEAR
1. Open Settings > Integrations
2. Check the calendar
   that is selected
   - a nested item
* Another bullet

Closing paragraph.
"""


def test_text_structure():
    document = parse_document(TEXT.encode(), "troubleshooting/sync-issues.txt")
    assert document.title == "Calendar sync issues"
    assert document.blocks == [
        Block("heading", "Calendar sync issues", level=1),
        Block("paragraph", "Most problems are fixed by reconnecting the calendar. This text is wrapped."),
        Block("heading", "BOOKINGS DO NOT APPEAR", level=2),
        Block("list", "1. Open Settings > Integrations\n2. Check the calendar that is selected\n"
                      "  - a nested item\n- Another bullet"),
        Block("paragraph", "Closing paragraph."),
    ]


def test_text_title_from_file_name_without_underlined_heading():
    document = parse_document(codecs.BOM_UTF8 + b"Just a note.\n\nSecond paragraph.", "release-notes.txt")
    assert document.title == "Release notes"
    assert texts(document, "paragraph") == ["Just a note.", "Second paragraph."]


# ---------------------------------------------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------------------------------------------


def make_pdf(content, title="Quick start", pages_footer=True, password=None) -> bytes:
    """content: (kind, text) with kind h1 | h2 | bold | p | li."""
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    if password:
        pdf.set_encryption(owner_password="owner-secret", user_password=password)
    if pages_footer:
        def footer():
            pdf.set_y(-15)
            pdf.set_font("Helvetica", "", 8)
            pdf.cell(0, 10, f"Brightwave Guide | Page {pdf.page_no()}", align="C")
        pdf.footer = footer
    pdf.add_page()
    styles = {"h1": ("B", 20, 10), "h2": ("B", 14, 8), "bold": ("B", 11, 6), "p": ("", 11, 6), "li": ("", 11, 6)}
    for kind, text in content:
        style, size, height = styles[kind]
        if kind != "li":
            pdf.ln(4)
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, height, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


PDF_CONTENT = [
    ("h1", "Quick start guide"),
    ("p", "Welcome to Brightwave. This guide takes about ten minutes and shows every step from sign-up to the "
          "first booking on your page."),
    ("h2", "Step 1: Create your account"),
    ("p", "Go to the sign-up page and enter your email. The exam-\nple shows a hyphenated line break."),
    ("li", "- Verify your email within 24 hours"),
    ("li", "- Choose a password of at least 12 characters"),
    ("bold", "Breaks and days off"),
    ("p", "Add a recurring break under Breaks."),
]


def test_pdf_structure_from_font_sizes():
    document = parse_document(make_pdf(PDF_CONTENT), "getting-started/quick-start-guide.pdf")
    assert document.title == "Quick start"  # the /Title metadata
    assert document.blocks == [
        Block("heading", "Quick start guide", level=1),
        Block("paragraph", "Welcome to Brightwave. This guide takes about ten minutes and shows every step from "
                           "sign-up to the first booking on your page."),
        Block("heading", "Step 1: Create your account", level=2),
        Block("paragraph", "Go to the sign-up page and enter your email. The example shows a hyphenated line break."),
        Block("list", "- Verify your email within 24 hours\n- Choose a password of at least 12 characters"),
        Block("heading", "Breaks and days off", level=3),
        Block("paragraph", "Add a recurring break under Breaks."),
    ]  # and no "Page 1" footer


def test_pdf_title_falls_back_to_first_heading():
    document = parse_document(make_pdf(PDF_CONTENT, title=""), "guide.pdf")
    assert document.title == "Quick start guide"


def test_pdf_running_footers_are_dropped_on_every_page():
    content = [("h1", "Long document")] + [("p", f"Paragraph {i} " + "with enough words to fill lines. " * 8)
                                          for i in range(40)]
    document = parse_document(make_pdf(content), "long.pdf")
    all_text = " ".join(b.text for b in document.blocks)
    assert "Brightwave Guide" not in all_text and "Page " not in all_text
    assert "Paragraph 39" in all_text


def test_pdf_without_text_is_reported_as_scanned():
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(10, 10, 50, 50)  # a drawing but no text, like a scanned page
    with pytest.raises(EmptyDocument, match="no extractable text"):
        parse_document(bytes(pdf.output()), "scan.pdf")


def test_pdf_with_a_password_is_rejected():
    with pytest.raises(CorruptFile, match=r"password|encrypted"):
        parse_document(make_pdf(PDF_CONTENT, password="s3cret"), "locked.pdf")


def test_pdf_encrypted_without_user_password_is_read():
    document = parse_document(make_pdf(PDF_CONTENT, password=""), "restricted.pdf")
    assert document.blocks[0].text == "Quick start guide"


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
def test_truncated_pdf_is_corrupt(cut):
    data = make_pdf(PDF_CONTENT)
    with pytest.raises(CorruptFile) as error:
        parse_document(data[: int(len(data) * cut)], "truncated.pdf")
    assert "truncated" in str(error.value)


def test_random_bytes_named_pdf_are_corrupt():
    with pytest.raises(CorruptFile, match="not a PDF"):
        parse_document(random.Random(1).randbytes(2048), "random.pdf")


def test_pdf_with_broken_body_is_corrupt_with_a_short_reason():
    data = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    with pytest.raises(CorruptFile) as error:
        parse_document(data, "broken.pdf")
    assert "Traceback" not in str(error.value) and len(str(error.value)) < 250


# ---------------------------------------------------------------------------------------------------------------
# DOCX
# ---------------------------------------------------------------------------------------------------------------


def make_docx(build) -> bytes:
    document = docx.Document()
    build(document)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def build_plans(document):
    document.add_paragraph("Plans and pricing", style="Title")
    document.add_paragraph("Intro paragraph.")
    document.add_heading("Plans", level=1)
    document.add_paragraph("Starter", style="List Bullet")
    document.add_paragraph("Nested detail", style="List Bullet 2")
    document.add_paragraph("Pro", style="List Bullet")
    table = document.add_table(rows=3, cols=2)
    for r, row in enumerate([("Plan", "Price"), ("Starter", "$12"), ("Pro", "$29")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("After the table.")
    document.add_heading("Change your plan", level=2)
    document.add_paragraph("Open Billing", style="List Number")
    document.add_paragraph("Click Change plan", style="List Number")


def test_docx_structure_in_body_order():
    document = parse_document(make_docx(build_plans), "billing/plans-and-pricing.docx")
    assert document.title == "Plans and pricing"  # the Title-styled paragraph
    assert document.blocks == [
        Block("heading", "Plans and pricing", level=1),
        Block("paragraph", "Intro paragraph."),
        Block("heading", "Plans", level=1),
        Block("list", "- Starter\n  - Nested detail\n- Pro"),
        Block("table", "| Plan | Price |\n| --- | --- |\n| Starter | $12 |\n| Pro | $29 |"),
        Block("paragraph", "After the table."),
        Block("heading", "Change your plan", level=2),
        Block("list", "1. Open Billing\n2. Click Change plan"),
    ]


def test_docx_lists_from_direct_numbering():
    """Word often numbers a plain paragraph directly (w:numPr) instead of using a List style."""
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    def numbered(document, text, num_id, level):
        paragraph = document.add_paragraph(text)
        paragraph._p.get_or_add_pPr().append(parse_xml(
            f'<w:numPr {nsdecls("w")}><w:ilvl w:val="{level}"/><w:numId w:val="{num_id}"/></w:numPr>'))

    def build(document):
        # In python-docx's default template numId 1 is a bullet list and numId 5 a decimal one.
        numbered(document, "Bullet A", 1, 0)
        numbered(document, "Sub item", 1, 1)
        numbered(document, "Bullet B", 1, 0)
        document.add_paragraph("Between.")
        numbered(document, "Step one", 5, 0)
        numbered(document, "Step two", 5, 0)

    document = parse_document(make_docx(build), "numbered.docx")
    assert document.blocks == [
        Block("list", "- Bullet A\n  - Sub item\n- Bullet B"),
        Block("paragraph", "Between."),
        Block("list", "1. Step one\n2. Step two"),
    ]


def test_docx_title_from_core_properties_then_heading_then_file_name():
    def with_core_title(document):
        document.core_properties.title = "Core title"
        document.add_heading("Heading one", level=1)
        document.add_paragraph("Text.")

    def with_heading(document):
        document.core_properties.title = ""
        document.add_heading("Heading one", level=1)
        document.add_paragraph("Text.")

    def plain(document):
        document.core_properties.title = ""
        document.add_paragraph("Text.")

    assert parse_document(make_docx(with_core_title), "a.docx").title == "Core title"
    assert parse_document(make_docx(with_heading), "a.docx").title == "Heading one"
    assert parse_document(make_docx(plain), "team-roles.docx").title == "Team roles"


def test_docx_without_text_is_empty():
    with pytest.raises(EmptyDocument):
        parse_document(make_docx(lambda document: None), "blank.docx")


def test_random_bytes_named_docx_are_corrupt():
    with pytest.raises(CorruptFile, match="not a zip"):
        parse_document(random.Random(2).randbytes(4096), "random.docx")


def test_zip_that_is_not_a_docx_is_corrupt():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a word document")
    with pytest.raises(CorruptFile, match="DOCX"):
        parse_document(buffer.getvalue(), "fake.docx")


def test_truncated_docx_is_corrupt():
    data = make_docx(build_plans)
    with pytest.raises(CorruptFile):
        parse_document(data[: len(data) // 2], "truncated.docx")


# ---------------------------------------------------------------------------------------------------------------
# FAQ sheets
# ---------------------------------------------------------------------------------------------------------------


def faq_pairs(document):
    return [(b.info, b.text) for b in document.blocks if b.kind == "faq"]


def test_csv_with_categories():
    data = (b"question,answer,category\n"
            b"Can I get a refund?,\"Yes, within 30 days.\",Billing\n"
            b"How long does it take?,5-10 business days.,Billing\n"
            b"How do I reset my password?,\"Use the link.\nIt expires after 60 minutes.\",Account\n"
            b"Unanswered question,,Account\n")
    document = parse_document(data, "faq/general-faq.csv")
    assert document.title == "General FAQ"
    assert document.blocks == [
        Block("heading", "Billing", level=2),
        Block("faq", "Yes, within 30 days.", info="Can I get a refund?"),
        Block("faq", "5-10 business days.", info="How long does it take?"),
        Block("heading", "Account", level=2),
        Block("faq", "Use the link.\nIt expires after 60 minutes.", info="How do I reset my password?"),
    ]


@pytest.mark.parametrize("data", [
    codecs.BOM_UTF8 + b'Question;Answer\nWhat is it?;A booking tool, for you.\nIs it free?;"Yes; there is a Free '
                      b'plan."\n',
    b"Q\tA\nWhat is it?\tA booking tool, for you.\nIs it free?\tYes; there is a Free plan.\n",
    b"QUERY,Reply\nWhat is it?,\"A booking tool, for you.\"\nIs it free?,Yes; there is a Free plan.\n",
    'Title;Response\r\nWhat is it?;A booking tool, for you.\r\nIs it free?;"Yes; there is a Free plan."\r\n'
    .encode("cp1252"),
])
def test_csv_delimiters_bom_and_column_aliases(data):
    document = parse_document(data, "faq.csv")
    assert faq_pairs(document) == [("What is it?", "A booking tool, for you."),
                                   ("Is it free?", "Yes; there is a Free plan.")]
    assert kinds(document) == ["faq", "faq"]  # no category column, no headings


def test_csv_without_question_and_answer_columns_names_what_it_found():
    with pytest.raises(UnsupportedFile) as error:
        parse_document(b"name,email,plan\nSam,sam@example.com,Pro\n", "customers.csv")
    assert "'name', 'email', 'plan'" in str(error.value)


@pytest.mark.parametrize("payload", [
    [{"question": "Q1?", "answer": "A1."}, {"question": "Q2?", "answer": "A2."}],
    {"faqs": [{"Question": "Q1?", "Answer": "A1."}, {"q": "Q2?", "a": "A2."}]},
    {"questions": [{"title": "Q1?", "response": "A1."}, {"query": "Q2?", "reply": "A2."}]},
    {"Items": [{"question": "Q1?", "answer": "A1."}, {"question": "Q2?", "answer": "A2.", "extra": [1]}]},
])
def test_json_shapes(payload):
    document = parse_document(json.dumps(payload).encode(), "faq.json")
    assert faq_pairs(document) == [("Q1?", "A1."), ("Q2?", "A2.")]


def test_json_title_and_categories():
    payload = {"title": "Billing FAQ", "faqs": [
        {"question": "Refund?", "answer": "Within 30 days.", "topic": "Refunds"},
        {"question": "Card?", "answer": "Visa and Mastercard.", "topic": "Payments"},
    ]}
    document = parse_document(json.dumps(payload).encode(), "faq/billing-faq.json")
    assert document.title == "Billing FAQ"
    assert kinds(document) == ["heading", "faq", "heading", "faq"]


def test_invalid_json_is_corrupt_with_position():
    with pytest.raises(CorruptFile, match=r"invalid JSON: .* line 1 column"):
        parse_document(b'{"faqs": [', "faq.json")


@pytest.mark.parametrize("payload, reason", [
    ({"settings": {"a": 1}}, "found keys: 'settings'"),
    ([1, 2, 3], "list of objects"),
    ([{"name": "x", "value": "y"}], "found: 'name', 'value'"),
])
def test_json_that_is_not_an_faq_sheet(payload, reason):
    with pytest.raises(UnsupportedFile) as error:
        parse_document(json.dumps(payload).encode(), "data.json")
    assert reason in str(error.value)


def test_faq_sheet_with_no_complete_pairs_is_empty():
    with pytest.raises(EmptyDocument):
        parse_document(b"question,answer\nOnly a question?,\n", "faq.csv")


# ---------------------------------------------------------------------------------------------------------------
# Robustness: bad input only ever raises DocumentRejected
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("extension", [".md", ".html", ".txt", ".pdf", ".docx", ".csv", ".json"])
@pytest.mark.parametrize("seed", range(4))
def test_garbage_never_escapes_as_a_library_error(extension, seed):
    rng = random.Random(seed)
    prefixes = [b"", b"%PDF-1.4\n", b"PK\x03\x04", b"{\"faqs\": ", b"<html><table><tr><td>"]
    data = rng.choice(prefixes) + rng.randbytes(rng.randint(1, 3000))
    try:
        document = parse_document(data, "garbage" + extension)
    except DocumentRejected as error:
        assert str(error) and "Traceback" not in str(error)
    else:
        assert document.blocks


def test_deeply_nested_html_does_not_crash():
    data = b"<div>" * 5000 + b"deep text" + b"</div>" * 5000
    try:
        document = parse_document(data, "deep.html")
    except DocumentRejected:
        return
    assert "deep text" in " ".join(b.text for b in document.blocks)


# ---------------------------------------------------------------------------------------------------------------
# The sample knowledge base
# ---------------------------------------------------------------------------------------------------------------

SAMPLE_FILES = sorted(p for p in SAMPLE_KB.rglob("*") if p.is_file() and p.suffix != ".py")


def test_sample_kb_has_every_format():
    assert {p.suffix for p in SAMPLE_FILES} >= {".md", ".html", ".txt", ".pdf", ".docx", ".csv", ".json"}
    assert len(SAMPLE_FILES) >= 15


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: str(p.relative_to(SAMPLE_KB)))
def test_sample_kb_file_parses(path):
    document = parse_document(path.read_bytes(), str(path.relative_to(SAMPLE_KB)))
    assert document.title
    assert any(block.kind != "heading" for block in document.blocks)
    assert all(block.text.strip() for block in document.blocks)


@pytest.mark.parametrize("name, facts", [
    ("billing/refunds.md", ["within 30 days", "5-10 business days"]),
    ("account/reset-password.md", ["expire after 60 minutes"]),
    ("integrations/webhooks.md", ["BW-4012", "within 10 seconds"]),
    ("billing/plans-and-pricing.docx", ["$29 per month", "14-day free trial"]),
    ("getting-started/quick-start-guide.pdf", ["14-day free trial", "every 5 minutes"]),
    ("policies/terms-summary.pdf", ["within 30 days", "99.9% uptime"]),
    ("faq/general-faq.csv", ["60 minutes"]),
    ("faq/billing-faq.json", ["5-10 business days"]),
])
def test_sample_kb_states_its_key_facts(name, facts):
    document = parse_document((SAMPLE_KB / name).read_bytes(), name)
    text = " ".join(block.text for block in document.blocks)
    for fact in facts:
        assert fact in text


def test_sample_pdf_loses_its_running_footer():
    name = "getting-started/quick-start-guide.pdf"
    document = parse_document((SAMPLE_KB / name).read_bytes(), name)
    assert not any("Page " in block.text for block in document.blocks)
    assert [b.text for b in document.blocks if b.kind == "heading"][:3] == [
        "Brightwave Quick Start Guide", "Step 1: Create your account", "Step 2: Set your working hours"]
