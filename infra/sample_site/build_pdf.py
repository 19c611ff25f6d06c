"""Build the one PDF of the sample docs site, the "Brightwave SMS reminder guide", from the text in this file.

    .venv/bin/python -m infra.sample_site.build_pdf

Writes site/docs/files/sms-reminder-guide.pdf (linked from site/docs/sms-reminders.html). The file is committed;
rebuilding needs fpdf2 and is reproducible (fixed metadata date). The layout is the sample knowledge base's
(`infra/sample_kb/build_binaries.build_pdf`), so both PDFs parse alike; the facts match sms-reminders.html.
"""

from __future__ import annotations

from pathlib import Path

from infra.sample_kb.build_binaries import build_pdf

OUTPUT = Path(__file__).resolve().parent / "site" / "docs" / "files" / "sms-reminder-guide.pdf"

SMS_REMINDER_GUIDE = [
    ("title", "Brightwave SMS reminder guide"),
    ("p", "SMS reminders are included in the Pro plan (250 SMS per month) and the Business plan (1,000 SMS per "
          "month). Email reminders, sent 24 hours before every appointment, stay on for all plans."),
    ("h2", "Set up in three steps"),
    ("ol", ["Go to Settings > Notifications > SMS reminders and switch on Send SMS reminders.",
            "Choose when to send: 1, 2, 4, 12 or 24 hours before the appointment (default 2 hours). Add a second "
            "reminder if you like: at most 2 SMS reminders per booking.",
            "Make the phone number field on your booking form required."]),
    ("h2", "Message length"),
    ("p", "One SMS holds 160 characters, or 70 with emoji or letters outside the GSM alphabet. Longer messages are "
          "sent in up to 3 parts; every part uses one SMS from your allowance."),
    ("h2", "Allowance"),
    ("ul", ["The allowance resets on the 1st of each month at 00:00 UTC; unused SMS do not roll over.",
            "When it runs out, reminders fall back to email and the booking shows error BW-6001.",
            "Top-up: 500 SMS for $15, valid for 12 months. Add-on SMS Plus: 1,000 extra SMS every month."]),
    ("h2", "Sender name, countries and quiet hours"),
    ("ul", ["Sender name: up to 11 letters and digits, default Brightwave.",
            "SMS reminders reach 42 countries; in the United States and Canada they come from a toll-free number.",
            "Quiet hours 21:00-08:00 in the customer's time zone: such reminders go out at 20:45 the evening before.",
            "Customers who reply STOP get no further SMS from your business, only email."]),
]


def main() -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_bytes(build_pdf(SMS_REMINDER_GUIDE, "Brightwave SMS reminder guide",
                                 "Brightwave SMS reminder guide, November 2026"))
    print(f"wrote {OUTPUT.name} ({OUTPUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
