"""Build the binary articles of the sample knowledge base (DOCX and PDF) from the text in this file.

    .venv/bin/python infra/sample_kb/build_binaries.py

Writes billing/plans-and-pricing.docx, getting-started/quick-start-guide.pdf and policies/terms-summary.pdf next to
this script. The generated files are committed, so using the knowledge base needs nothing extra; building them
needs python-docx and fpdf2 (a development dependency). Output is reproducible: metadata dates and zip entry times
are fixed, so rebuilding without edits leaves git clean.

Content is a list of (kind, payload) pairs: ("title", str), ("h1".."h3", str), ("p", str), ("ul", [str]),
("ol", [str]), ("table", [[str]]) with the header row first.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXED_DATE = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
AUTHOR = "Brightwave Help Center"

PLANS_AND_PRICING = [
    ("title", "Plans and pricing"),
    ("p", "Brightwave has four plans. Every plan includes unlimited booking pages, email confirmations and "
          "reminders, and two-way calendar sync. Prices are in US dollars and exclude VAT."),
    ("h1", "Plans at a glance"),
    ("table", [
        ["Plan", "Billed monthly", "Billed annually", "Staff members", "Bookings", "SMS included"],
        ["Free", "$0", "$0", "1", "50 per month", "none"],
        ["Starter", "$12 per month", "$10 per month ($120 per year)", "1", "unlimited", "none"],
        ["Pro", "$29 per month", "$24 per month ($288 per year)", "5", "unlimited", "250 per month"],
        ["Business", "$79 per month", "$66 per month ($792 per year)", "20", "unlimited", "1,000 per month"],
    ]),
    ("p", "Paying annually saves about 17%, the same as two months free."),
    ("h1", "What each plan includes"),
    ("h2", "Free"),
    ("ul", ["One staff member and up to 50 bookings per month",
            "Email confirmations and reminders",
            "One calendar checked for conflicts",
            "Brightwave branding on your booking page"]),
    ("h2", "Starter"),
    ("ul", ["Everything in Free, with unlimited bookings",
            "Custom booking page link and welcome text",
            "Intake questions on the booking form"]),
    ("h2", "Pro"),
    ("ul", ["Everything in Starter, for up to 5 staff members",
            "SMS reminders: 250 SMS per month included",
            "Online payments, deposits and no-show fees with Brightwave Payments",
            "Zoom and Google Meet links, webhooks (up to 10 endpoints)",
            "Up to 5 calendars checked for conflicts per staff member",
            "No Brightwave branding",
            "Live chat support, Monday to Friday 8:00-18:00 CET"]),
    ("h2", "Business"),
    ("ul", ["Everything in Pro, for up to 20 staff members",
            "1,000 SMS per month included",
            "Single sign-on (SAML) with Okta, Microsoft Entra ID or Google Workspace",
            "Custom domain for your booking page and the REST API",
            "Required two-factor authentication for the whole team",
            "Phone support with a 4-hour response time for urgent issues",
            "99.9% monthly uptime commitment with service credits"]),
    ("h1", "Free trial"),
    ("p", "New accounts get a 14-day free trial of the Pro plan. No credit card is needed. When the trial ends, the "
          "account moves to the Free plan unless you have chosen a paid plan; nothing is charged automatically."),
    ("h1", "Change your plan"),
    ("ol", ["Go to Settings > Billing > Plan.",
            "Click Change plan and pick the new plan and billing period.",
            "Confirm. Upgrades apply at once and you pay the pro-rated difference for the rest of the period.",
            "Downgrades take effect at the end of the current billing period."]),
    ("h1", "Extra seats and SMS top-ups"),
    ("p", "On Pro and Business you can add staff members beyond those included for $6 per seat per month. If you "
          "send more SMS reminders than your plan includes, buy a top-up of 500 SMS for $15; top-ups are valid for "
          "12 months and unused top-ups can be refunded within 30 days of purchase."),
    ("h1", "Refunds"),
    ("p", "You can get a full refund within 30 days of any charge. Refunds take 5-10 business days to reach your card. "
          "See the Refunds article for details."),
]

QUICK_START = [
    ("title", "Brightwave Quick Start Guide"),
    ("p", "This guide takes you from a new account to your first booking in about ten minutes. You need an email "
          "address and, if you want calendar sync, a Google or Microsoft Outlook calendar."),
    ("h2", "Step 1: Create your account"),
    ("ol", ["Go to app.brightwave.io/signup and enter your name, business name and email address.",
            "Open the confirmation email and click Verify email. The link is valid for 24 hours.",
            "Choose a password of at least 12 characters."]),
    ("p", "Every new account starts with a 14-day free trial of the Pro plan. No credit card is required, and when "
          "the trial ends the account simply moves to the Free plan unless you pick a paid plan."),
    ("h2", "Step 2: Set your working hours"),
    ("p", "Go to Settings > Availability. New accounts start with Monday to Friday, 9:00 to 17:00, in the time zone "
          "of your browser. Change the hours per day, or add several time ranges on one day, for example 9:00-12:00 "
          "and 14:00-18:00."),
    ("h3", "Breaks and days off"),
    ("p", "Add a recurring break (such as lunch) under Breaks, and block holidays or single days off under Days off. "
          "Customers never see why a time is unavailable, only that it is."),
    ("h2", "Step 3: Add your services"),
    ("p", "A service is something customers can book. Go to Services and click New service, then fill in:"),
    ("ul", ["Name, as customers will see it, for example Initial consultation.",
            "Duration, from 5 minutes to 8 hours.",
            "Price, or leave it empty for free services. Taking payments online needs the Pro or Business plan.",
            "Location: in person (with an address), phone call, Zoom or Google Meet."]),
    ("h2", "Step 4: Connect your calendar"),
    ("p", "Go to Settings > Integrations and connect Google Calendar or Microsoft Outlook. Brightwave checks your "
          "calendar for busy times every 5 minutes and adds each new booking to it within 1 minute, so you are never "
          "double-booked."),
    ("h2", "Step 5: Share your booking page"),
    ("p", "Your booking page lives at book.brightwave.io/your-link. Copy the link from Booking pages > Share and add "
          "it to your website, email signature and social media profiles, or embed the booking widget on your site."),
    ("h2", "Step 6: Take your first booking"),
    ("p", "Open your booking page in a private browser window and book a test appointment. You will receive the same "
          "confirmation email as your customers, and the booking appears in your Brightwave calendar and in your "
          "connected calendar. Customers receive an email reminder 24 hours before each appointment."),
    ("h2", "What to read next"),
    ("ul", ["Set up your first booking page: colors, logo and booking rules.",
            "Plans and pricing: what each plan includes.",
            "Connect Google Calendar: how sync works in detail.",
            "Error codes: what a BW code means and how to fix it."]),
    ("p", "Need help? Email support@brightwave.io. We answer within 1 business day."),
]

TERMS_SUMMARY = [
    ("title", "Terms of Service Summary"),
    ("p", "This is a plain-language summary of the Brightwave Terms of Service (version of 1 September 2026). It "
          "does not replace the full terms at brightwave.io/terms; where they differ, the full terms apply."),
    ("h2", "1. Your account"),
    ("ul", ["You must be at least 18 years old and use Brightwave for a business or profession.",
            "Keep your sign-in details secret. You are responsible for what your staff members do in your account.",
            "The account Owner is the person or business that accepted these terms."]),
    ("h2", "2. Acceptable use"),
    ("p", "You may not use Brightwave to send spam, to offer unlawful services, to collect health or payment data "
          "outside the fields built for it, or to resell Brightwave without a written agreement. API clients may "
          "make up to 600 requests per minute per account."),
    ("h2", "3. Plans, billing and refunds"),
    ("p", "Paid plans are billed in advance, monthly or annually, and renew automatically until cancelled. You can "
          "get a full refund within 30 days of any charge; refunds take 5-10 business days to reach your card. "
          "We announce price changes at least 30 days before they apply to you."),
    ("h2", "4. Cancellation"),
    ("p", "You can cancel at any time in Settings > Billing > Cancel plan. A cancelled plan stays active until the "
          "end of the period you paid for and is not renewed. We may suspend accounts that break these terms, after "
          "a warning by email unless the breach is serious."),
    ("h2", "5. Your data"),
    ("p", "You own the data you and your customers put into Brightwave. We store it in data centers in Frankfurt, "
          "Germany. You can export it at any time as CSV files from Settings > Account > Export data."),
    ("p", "When you delete your account, your data is deleted within 30 days and removed from backups within "
          "90 days. Invoices are kept for 7 years because tax law requires it."),
    ("h2", "6. Availability and service credits"),
    ("p", "On the Business plan we commit to 99.9% uptime each calendar month. If we miss it, you receive a service "
          "credit of 10% of that month's fee, or 25% if uptime falls below 99.0%. Request the credit within 30 days "
          "after the end of the month. Other plans have no uptime commitment. Planned maintenance is announced at "
          "least 48 hours ahead on status.brightwave.io."),
    ("h2", "7. Liability"),
    ("p", "Our total liability is limited to the fees you paid in the 12 months before the claim. Neither side is "
          "liable for indirect losses such as lost profits."),
    ("h2", "8. Changes to these terms"),
    ("p", "We tell you about material changes by email at least 30 days before they take effect. If you do not "
          "agree, you can cancel before then and receive a pro-rated refund of any prepaid annual fee."),
    ("h2", "9. Contact"),
    ("p", "Questions about these terms: legal@brightwave.io. Brightwave Labs Ltd. is a fictional company created "
          "for this sample knowledge base."),
]


# ---------------------------------------------------------------------------------------------------------------
# DOCX
# ---------------------------------------------------------------------------------------------------------------


def build_docx(content: list, title: str) -> bytes:
    """A Word document with real Title/Heading/List styles and tables, as an editor would write it."""
    import docx

    document = docx.Document()
    properties = document.core_properties
    properties.title, properties.author, properties.last_modified_by = title, AUTHOR, AUTHOR
    properties.created = properties.modified = FIXED_DATE.replace(tzinfo=None)
    properties.revision = 1
    for kind, payload in content:
        if kind == "title":
            document.add_paragraph(payload, style="Title")
        elif kind in ("h1", "h2", "h3"):
            document.add_heading(payload, level=int(kind[1]))
        elif kind == "p":
            document.add_paragraph(payload)
        elif kind in ("ul", "ol"):
            for item in payload:
                document.add_paragraph(item, style="List Bullet" if kind == "ul" else "List Number")
        elif kind == "table":
            table = document.add_table(rows=len(payload), cols=len(payload[0]), style="Table Grid")
            for r, row in enumerate(payload):
                for c, text in enumerate(row):
                    table.cell(r, c).text = text
    buffer = io.BytesIO()
    document.save(buffer)
    return _reproducible_zip(buffer.getvalue())


def _reproducible_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed entry times: python-docx stamps entries with the current time."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            info = zipfile.ZipInfo(entry.filename, date_time=FIXED_DATE.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, source.read(entry.filename))
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------------------------------------------

_PDF_STYLE = {  # kind: (font style, size in points, line height in mm)
    "title": ("B", 20, 10),
    "h1": ("B", 16, 8),
    "h2": ("B", 14, 8),
    "h3": ("B", 11, 6),
    "p": ("", 11, 6),
}


def build_pdf(content: list, title: str, footer: str) -> bytes:
    """A PDF with text pypdf can extract: headings in larger or bold type, paragraphs separated by space, list
    items one per line, and a running footer with page numbers (which the parser is expected to drop)."""
    from fpdf import FPDF

    class _Pdf(FPDF):
        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("Helvetica", "", 8)
            self.cell(0, 10, f"{footer} | Page {self.page_no()} of {{nb}}", align="C")

    pdf = _Pdf(format="A4")
    pdf.set_title(title)
    pdf.set_author(AUTHOR)
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_auto_page_break(True, margin=20)
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    for kind, payload in content:
        if kind in ("ul", "ol"):
            pdf.set_font("Helvetica", "", 11)
            for number, item in enumerate(payload, start=1):
                marker = f"{number}." if kind == "ol" else "-"
                pdf.set_x(pdf.l_margin + 4)
                pdf.multi_cell(0, 6, _latin1(f"{marker} {item}"), new_x="LMARGIN", new_y="NEXT")
        else:
            style, size, height = _PDF_STYLE[kind]
            if kind != "title":
                pdf.ln(2 if kind == "p" else 4)
            pdf.set_font("Helvetica", style, size)
            pdf.multi_cell(0, height, _latin1(payload), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    return bytes(pdf.output())


def _latin1(text: str) -> str:
    """The built-in PDF fonts cover Latin-1 only: use ASCII stand-ins for arrows and dashes."""
    text = text.replace("→", ">").replace("–", "-").replace("—", "-").replace("’", "'")
    text.encode("latin-1")  # fail loudly on anything else
    return text


def main() -> None:
    outputs = {
        "billing/plans-and-pricing.docx": build_docx(PLANS_AND_PRICING, "Plans and pricing"),
        "getting-started/quick-start-guide.pdf": build_pdf(QUICK_START, "Brightwave Quick Start Guide",
                                                           "Brightwave Quick Start Guide"),
        "policies/terms-summary.pdf": build_pdf(TERMS_SUMMARY, "Terms of Service Summary",
                                                "Brightwave Terms of Service Summary, version 2026-09"),
    }
    for name, data in outputs.items():
        path = HERE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path.relative_to(HERE)} ({len(data):,} bytes)")


if __name__ == "__main__":
    main()
