"""The web widget in a real browser (Debian's Chromium through Playwright) against the real local stack.

The pages come from the demo site (infra/demo): `index.html` is a fake company site with hostile global CSS,
`plain.html` the same script tag on a page without CSS, `inline.html` the inline element. The widget is found
through its DOM contract (roles, aria labels, data-* attributes; see functions/chat/widget/widget.js), never through
its class names. Screenshots of every test's final state: test-artifacts/browser/<test>.png.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.conftest import ANSWER_TIMEOUT_MS, MARKUP_QUESTION, MARKUP_TITLE

pytestmark = pytest.mark.browser

PRIMARY = "rgb(11, 107, 203)"  # data-primary-color="#0b6bcb" on the demo pages
TURNS = '[data-role="assistant"]:not([data-kind])'  # answers, not the greeting (data-kind="greeting")
SOURCES = 'ol[aria-label="Sources"] > li'  # the numbered citation list under an answer


def expect(*args, **kwargs):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(*args, **kwargs)


class Widget:
    """The widget on a page, by its DOM contract. `host` selects the <support-chat> element."""

    def __init__(self, page, host: str = "support-chat"):
        self.page = page
        self.host = page.locator(host).first
        self.launcher = self.host.locator('button[aria-label="Open chat"]')
        self.dialog = self.host.locator('[role="dialog"]')
        self.log = self.host.locator('[role="log"]')
        self.textarea = self.host.locator('textarea[aria-label="Message"]')
        self.send = self.host.locator('button[aria-label="Send"]')
        self.users = self.log.locator('[data-role="user"]')
        self.turns = self.log.locator(TURNS)
        self.system = self.log.locator('[data-role="system"]')

    def open(self) -> Widget:
        if not self.dialog.is_visible():
            expect(self.launcher).to_be_visible()
            self.launcher.click()
        expect(self.dialog).to_be_visible()
        expect(self.launcher).to_have_attribute("aria-expanded", "true")
        return self

    def ask(self, question: str, action: str | None = "answer"):
        """Send `question`; return the answer's locator once it is complete (and check its action)."""
        before = self.turns.count()
        self.textarea.fill(question)
        self.send.click()
        answer = self.turns.nth(before)
        expect(answer).to_have_attribute("data-state", "done", timeout=ANSWER_TIMEOUT_MS)
        if action:
            expect(answer).to_have_attribute("data-action", action)
        return answer

    def header_button(self, label: str):
        return self.host.locator(f'button[aria-label="{label}"]')


def open_demo(stack, browsing, page: str = "", record: bool = False, fresh: bool = False):
    tab = browsing.new_page(fresh)
    if record:
        tab.add_init_script(RECORD_ANSWERS_JS)
    tab.goto(stack.page_url(page))
    return tab


def citations_of(answer) -> list[str]:
    return [text.strip() for text in answer.locator(SOURCES).all_inner_texts()]


def assert_cited(answer, title: str) -> None:
    """At least one numbered source with a link, `title` among them, and markers in the text that link to them."""
    sources = answer.locator(SOURCES)
    expect(sources.first).to_be_visible()
    assert any(title in text for text in citations_of(answer)), citations_of(answer)
    links = answer.locator(f"{SOURCES} a[href]")
    assert links.count() >= 1, "no source is a link"
    assert links.first.get_attribute("href").startswith("https://help.brightwave.example/")
    markers = answer.locator("sup a")
    assert markers.count() >= 1, "no citation marker in the text"
    numbers = {int(n) for n in re.findall(r"\d+", " ".join(markers.all_inner_texts()))}
    assert numbers and max(numbers) <= sources.count(), f"markers {numbers} for {sources.count()} sources"


# Records every change to answer messages from the moment the widget attaches its shadow root: (data-state, text
# length) pairs. MutationObserver records keep the old attribute value, so a short "streaming" phase is not missed.
RECORD_ANSWERS_JS = """
(() => {
  const seen = window.__answerStates = [];
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    const root = attach.call(this, init);
    const note = (el, old) => {
      const msg = el && el.closest && el.closest('[data-role="assistant"]:not([data-kind])');
      if (msg) seen.push({old, state: msg.getAttribute("data-state"), length: msg.textContent.length});
    };
    new MutationObserver((records) => {
      for (const r of records) {
        const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
        if (r.type === "attributes") note(el, r.oldValue);
        else note(el, null);
        for (const added of r.addedNodes || []) if (added.nodeType === 1) note(added, null);
      }
    }).observe(root, {subtree: true, childList: true, characterData: true, attributes: true,
                      attributeFilter: ["data-state"], attributeOldValue: true});
    return root;
  };
})();
"""

# What must never appear inside the conversation: markup that ran, or could run.
LIVE_MARKUP_JS = """
(host) => {
  const log = host.shadowRoot.querySelector('[role="log"]');
  const found = [];
  for (const el of log.querySelectorAll("*")) {
    if (["SCRIPT", "IMG", "IFRAME", "OBJECT", "EMBED", "B"].includes(el.tagName)) found.push(el.outerHTML);
    for (const attr of el.attributes) if (/^on/i.test(attr.name)) found.push(el.outerHTML);
  }
  for (const a of host.shadowRoot.querySelectorAll("a[href]")) {
    if (!/^(https?|mailto):$/.test(a.protocol) && !a.getAttribute("href").startsWith("#")) found.push(a.outerHTML);
  }
  return found;
}
"""


# --- asking ----------------------------------------------------------------------------------------------------------
def test_a_question_streams_a_cited_answer(widget_stack, browsing):
    page = open_demo(widget_stack, browsing, record=True)
    widget = Widget(page).open()
    answer = widget.ask("Can I get a refund?")

    expect(widget.users).to_have_count(1)
    expect(widget.users.first).to_have_text("Can I get a refund?")
    expect(answer).to_contain_text("30 days")
    assert answer.get_attribute("data-turn-id")
    assert_cited(answer, "Refunds")
    states = page.evaluate("window.__answerStates")
    assert any("streaming" in (s["old"], s["state"]) for s in states), f"never seen streaming: {states}"
    assert states[-1]["state"] == "done"
    assert not browsing.consoles[0].errors


def test_a_follow_up_is_answered_in_the_same_conversation(widget_stack, browsing):
    widget = Widget(open_demo(widget_stack, browsing)).open()
    widget.ask("Can I get a refund?")
    follow_up = widget.ask("and how long does that take?")

    expect(follow_up).to_contain_text("business days")
    assert_cited(follow_up, "Refunds")
    expect(widget.users).to_have_count(2)
    expect(widget.turns).to_have_count(2)


def test_an_answer_is_rated_with_a_reason_stored_in_firestore(widget_stack, browsing):
    widget = Widget(open_demo(widget_stack, browsing)).open()
    answer = widget.ask("How do I reset my password?")
    turn_id = answer.get_attribute("data-turn-id")

    answer.locator('button[aria-label="Not helpful"]').click()
    reason = answer.locator('input[aria-label="What was missing or wrong? (optional)"]')
    expect(reason).to_be_visible()
    reason.fill("The link in the email had already expired")
    answer.locator('button[aria-label="Send feedback"]').click()
    expect(answer.locator('[role="status"]')).to_contain_text("Thanks")

    stored = wait_for(lambda: widget_stack.tenant().collection("feedback").document(turn_id).get().to_dict(),
                      lambda d: d and d.get("reason"), "the feedback in Firestore")
    assert stored["rating"] == "down"
    assert stored["reason"] == "The link in the email had already expired"
    expect(answer.locator('button[aria-label="Not helpful"]')).to_have_attribute("aria-pressed", "true")


def test_talk_to_a_human_opens_a_ticket_with_the_transcript(widget_stack, browsing):
    widget = Widget(open_demo(widget_stack, browsing)).open()
    question = "What does BW-4012 mean?"
    widget.ask(question)

    widget.header_button("Talk to a human").click()
    form = widget.host.locator('form[aria-label="Talk to a human"]')
    expect(form).to_be_visible()
    form.locator('input[aria-label="Email or phone (optional)"]').fill("maya@example.com")
    form.locator('textarea[aria-label="How can we help?"]').fill("My webhook keeps timing out")
    form.get_by_role("button", name="Send to our team").click()

    notice = widget.system.last
    expect(notice).to_contain_text("ticket", timeout=10_000)
    ticket_id = notice.get_attribute("data-ticket-id")
    assert ticket_id and ticket_id in notice.inner_text()
    ticket = widget_stack.tenant().collection("tickets").document(ticket_id).get().to_dict()
    assert ticket["status"] == "open" and ticket["contact"] == "maya@example.com"
    assert ticket["reason"] == "My webhook keeps timing out"
    assert [m["role"] for m in ticket["transcript"]] == ["user", "assistant"]
    assert ticket["transcript"][0]["text"] == question


def test_a_reload_resumes_the_conversation_and_new_conversation_clears_it(widget_stack, browsing):
    page = open_demo(widget_stack, browsing)
    widget = Widget(page).open()
    answer = widget.ask("How do I reset my password?")
    turn_id, sources = answer.get_attribute("data-turn-id"), citations_of(answer)

    page.reload()
    widget = Widget(page).open()
    expect(widget.users).to_have_count(1)
    expect(widget.users.first).to_have_text("How do I reset my password?")
    expect(widget.turns).to_have_count(1)
    restored = widget.turns.first
    expect(restored).to_have_attribute("data-turn-id", turn_id)
    expect(restored).to_have_attribute("data-state", "done")
    assert citations_of(restored) == sources
    assert_cited(restored, "Reset")

    widget.header_button("New conversation").click()
    expect(widget.users).to_have_count(0)
    expect(widget.turns).to_have_count(0)
    page.reload()
    widget = Widget(page).open()
    page.wait_for_load_state("networkidle")
    expect(widget.users).to_have_count(0)


# --- the page and the widget leave each other alone -----------------------------------------------------------------
STYLE_PROPERTIES = [
    "font-family", "font-size", "font-style", "font-weight", "color", "background-color", "line-height",
    "letter-spacing", "word-spacing", "text-transform", "text-align", "text-shadow", "box-sizing", "display",
    "visibility", "opacity", "padding-top", "padding-left", "border-top-width", "border-top-style",
    "border-top-color", "margin-top", "list-style-type", "cursor", "white-space", "position", "width", "height",
]

WIDGET_PARTS = {
    "launcher": 'button[aria-label="Open chat"]',
    "dialog": '[role="dialog"]',
    "log": '[role="log"]',
    "textarea": 'textarea[aria-label="Message"]',
    "send": 'button[aria-label="Send"]',
    "human": 'button[aria-label="Talk to a human"]',
    "new": 'button[aria-label="New conversation"]',
    "user": '[data-role="user"]',
    "answer": TURNS,
    "answer paragraph": f"{TURNS} p",
    "sources": 'ol[aria-label="Sources"]',
    "source": SOURCES,
    "source link": f"{SOURCES} a",
    "marker": f"{TURNS} sup a",
    "helpful": 'button[aria-label="Helpful"]',
}

# Computed style and position of each part, inside the shadow root (or, with light=true, in the page itself).
STYLES_JS = """
([parts, properties, light]) => {
  const scope = light ? document : document.querySelector("support-chat").shadowRoot;
  const out = {};
  for (const [name, selector] of Object.entries(parts)) {
    const el = scope.querySelector(selector);
    if (!el) { out[name] = null; continue; }
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    out[name] = Object.fromEntries(properties.map((p) => [p, style.getPropertyValue(p)]));
    out[name].box = [box.x, box.y, box.width, box.height].map(Math.round).join(",");
  }
  return out;
}
"""

# True where the topmost element at (x, y) is the widget (shadow content hit-tests as its host).
TOPMOST_JS = "([x, y]) => document.elementFromPoint(x, y)?.tagName === 'SUPPORT-CHAT'"


def widget_styles(page) -> dict:
    return page.evaluate(STYLES_JS, [WIDGET_PARTS, STYLE_PROPERTIES, False])


def differences(expected: dict, actual: dict) -> list[str]:
    found = []
    for part, props in expected.items():
        if props is None or actual.get(part) is None:
            if props != actual.get(part):
                found.append(f"{part}: {'missing' if actual.get(part) is None else 'unexpected'}")
            continue
        found += [f"{part} {p}: {v!r} -> {actual[part][p]!r}" for p, v in props.items() if actual[part][p] != v]
    return found


def styled_widget(stack, browsing, page_name: str) -> tuple[dict, dict, object]:
    """The widget's computed styles on `page_name`: closed (the launcher), then open with an answer."""
    page = open_demo(stack, browsing, page_name, fresh=True)  # a conversation of its own
    widget = Widget(page)
    expect(widget.launcher).to_be_visible()
    page.mouse.move(0, 0)
    closed = page.evaluate(STYLES_JS, [{"launcher": WIDGET_PARTS["launcher"]}, STYLE_PROPERTIES, False])
    box = widget.launcher.bounding_box()
    assert page.evaluate(TOPMOST_JS, [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2]), \
        f"something on {page_name or 'index.html'} covers the launcher"
    widget.open()
    widget.ask("How long does a refund take?")
    widget.textarea.focus()
    page.mouse.move(0, 0)  # no hover styles
    return closed, widget_styles(page), widget


def test_the_host_pages_css_does_not_change_the_widget(widget_stack, browsing):
    plain_closed, plain_open, _ = styled_widget(widget_stack, browsing, "plain.html")
    site_closed, site_open, widget = styled_widget(widget_stack, browsing, "")

    assert not differences(plain_closed, site_closed), "\n".join(differences(plain_closed, site_closed))
    assert not differences(plain_open, site_open), "\n".join(differences(plain_open, site_open))
    # And on their own terms: the widget's font, a visible composer, the theme colour, a numbered source list.
    assert "comic" not in site_open["textarea"]["font-family"].lower()
    assert site_open["textarea"]["display"] != "none" and widget.textarea.is_visible()
    assert site_closed["launcher"]["background-color"] == PRIMARY
    widget.textarea.fill("Is there a free trial?")
    send = widget.page.evaluate(STYLES_JS, [{"send": WIDGET_PARTS["send"]}, STYLE_PROPERTIES, False])["send"]
    assert send["background-color"] == PRIMARY and send["padding-top"] != "40px"
    assert site_open["sources"]["list-style-type"] == plain_open["sources"]["list-style-type"] == "decimal"


HOST_PARTS = {
    "html": "html", "body": "body", "header": ".site-header", "title": "#host-title", "lead": "#host-lead",
    "cta": "#host-cta", "nav link": "#host-nav a", "feature": "#host-features li", "plan": ".plan",
    "price": ".price", "footer": "footer", "hidden textarea": "#host-message", "legal link": ".legal a",
}
PAGE_STATE_JS = """
() => ({
  stylesheets: document.styleSheets.length,
  adopted: (document.adoptedStyleSheets || []).length,
  head: document.head.innerHTML,
  body: [...document.body.children].map((el) => el.tagName).join(" "),
  root: document.documentElement.getAttribute("style") || "",
  bodyStyle: document.body.getAttribute("style") || "",
})
"""


def test_the_widget_does_not_change_the_host_page(widget_stack, browsing):
    bare = browsing.new_page()
    bare.route("**/widget/v1/widget.js", lambda route: route.abort())  # the same page, the widget never loads
    bare.goto(widget_stack.page_url())
    bare.mouse.move(0, 0)
    without = bare.evaluate(STYLES_JS, [HOST_PARTS, STYLE_PROPERTIES, True])
    state_without = bare.evaluate(PAGE_STATE_JS)
    assert bare.locator("support-chat").count() == 0

    page = open_demo(widget_stack, browsing)
    widget = Widget(page).open()
    widget.ask("How do I connect Google Calendar?")
    page.mouse.move(0, 0)
    with_widget = page.evaluate(STYLES_JS, [HOST_PARTS, STYLE_PROPERTIES, True])
    state_with = page.evaluate(PAGE_STATE_JS)

    assert not differences(without, with_widget), "\n".join(differences(without, with_widget))
    assert state_with["body"] == state_without["body"] + " SUPPORT-CHAT"  # one element added, at the end
    for key in ("stylesheets", "adopted", "head", "root", "bodyStyle"):
        assert state_with[key] == state_without[key], key


# --- markup in documents and answers stays text ----------------------------------------------------------------------
def test_markup_in_a_document_is_shown_as_text_and_never_runs(widget_stack, browsing):
    page = open_demo(widget_stack, browsing)
    widget = Widget(page).open()
    answer = widget.ask(MARKUP_QUESTION)

    source = answer.locator(SOURCES).first
    expect(source).to_contain_text(MARKUP_TITLE)  # the title, with its markup, as text
    assert source.locator("a").count() == 0, "its source URL is javascript:, which must not become a link"
    source.click()
    page.wait_for_timeout(300)  # an <img onerror> would have fired by now
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate(LIVE_MARKUP_JS, widget.host.element_handle()) == []
    # Inert, and also shown exactly as written.
    expect(answer).to_contain_text('<img src=x onerror="window.__pwned=1">')
    expect(answer).to_contain_text("<script>window.__pwned=1</script>")


def test_markup_in_the_models_answer_streams_in_as_text(widget_stack, gemini_chat, browsing):
    _, gemini, site = gemini_chat
    gemini.script_stream(["Refunds take <b>5-10</b> business days ", '<img src=x onerror="window.__pwned=4"> ',
                          "and <script>window.__pwned=5</script> then it is done [1]."])
    page = browsing.new_page()
    page.add_init_script(RECORD_ANSWERS_JS)
    page.goto(site.url + "/")
    widget = Widget(page).open()
    answer = widget.ask("How long does a refund take?")

    assert_cited(answer, "Refunds")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate(LIVE_MARKUP_JS, widget.host.element_handle()) == []
    expect(answer).to_contain_text("Refunds take <b>5-10</b> business days")
    expect(answer).to_contain_text('<img src=x onerror="window.__pwned=4">')
    expect(answer).to_contain_text("<script>window.__pwned=5</script>")
    # The model's pieces arrive a quarter of a second apart: the text is seen growing while it streams.
    lengths = [s["length"] for s in page.evaluate("window.__answerStates") if s["state"] == "streaming"]
    growing = sorted(set(lengths))
    assert len(growing) >= 3 and lengths == sorted(lengths), lengths


# --- layout and keyboard ---------------------------------------------------------------------------------------------
def test_on_a_phone_the_open_panel_covers_the_screen(widget_stack, mobile_browsing):
    page = open_demo(widget_stack, mobile_browsing)
    widget = Widget(page)
    expect(widget.launcher).to_be_visible()
    widget.launcher.tap()
    expect(widget.dialog).to_be_visible()

    box = widget.dialog.bounding_box()
    assert [round(v) for v in (box["x"], box["y"], box["width"], box["height"])] == [0, 0, 375, 667], box
    for point in ([2, 2], [372, 2], [187, 333], [2, 664], [372, 664]):
        assert page.evaluate(TOPMOST_JS, point), f"the page covers the panel at {point}"
    answer = widget.ask("How do I reset my password?")
    assert_cited(answer, "Reset")
    expect(widget.textarea).to_be_in_viewport()
    widget.header_button("Close chat").tap()
    expect(widget.dialog).to_be_hidden()
    expect(widget.launcher).to_be_visible()


def test_enter_sends_shift_enter_adds_a_line_and_escape_closes(widget_stack, browsing):
    page = open_demo(widget_stack, browsing)
    widget = Widget(page)
    widget.launcher.focus()
    page.keyboard.press("Enter")  # the launcher is a button: the keyboard opens it
    expect(widget.dialog).to_be_visible()
    expect(widget.textarea).to_be_focused()

    page.keyboard.type("How do I reset my password?")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("I use two-factor authentication.")
    expect(widget.textarea).to_have_value("How do I reset my password?\nI use two-factor authentication.")
    expect(widget.users).to_have_count(0)

    page.keyboard.press("Enter")
    expect(widget.users).to_have_count(1)
    assert widget.users.first.inner_text().splitlines() == ["How do I reset my password?",
                                                             "I use two-factor authentication."]
    expect(widget.textarea).to_have_value("")
    expect(widget.turns.first).to_have_attribute("data-state", "done", timeout=ANSWER_TIMEOUT_MS)

    widget.textarea.focus()
    page.keyboard.press("Escape")
    expect(widget.dialog).to_be_hidden()
    expect(widget.launcher).to_have_attribute("aria-expanded", "false")
    assert widget.launcher.evaluate("el => el.getRootNode().activeElement === el"), "focus is not on the launcher"


def test_the_inline_element_on_the_help_centre_page(widget_stack, browsing):
    page = open_demo(widget_stack, browsing, "inline.html")
    widget = Widget(page, "support-chat#help-chat")
    expect(widget.textarea).to_be_visible()
    assert page.locator("support-chat").count() == 1, "inline mode must not add a floating launcher"
    expect(widget.launcher).to_be_hidden()
    box = widget.dialog.bounding_box()
    assert box["height"] >= 500 and box["width"] >= 380, box  # it fills the element the page sized
    answer = widget.ask("How do I connect Google Calendar?")
    assert_cited(answer, "Google Calendar")


# --- helpers ---------------------------------------------------------------------------------------------------------
def wait_for(read, ok, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {value!r}")
        time.sleep(0.1)


def test_a_dropped_connection_is_retried_politely_and_a_broken_stream_is_never_resent_by_itself(widget_stack,
                                                                                                  browsing):
    page = open_demo(widget_stack, browsing)
    widget = Widget(page).open()
    calls = []

    def refuse_the_first(route):  # the network fails before the server saw the question: safe to send again
        calls.append("refused" if not calls else "passed")
        if calls[-1] == "refused":
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/v1/chat", refuse_the_first)
    answer = widget.ask("Can I get a refund?")
    expect(answer).to_contain_text("30 days")
    assert calls == ["refused", "passed"]  # retried once, after a pause, by itself
    page.unroute("**/v1/chat")

    # The server started the answer, then the stream broke: the widget keeps what came, says so, and waits.
    broken = ('event: session\ndata: {"session_id": "s", "turn_id": "t"}\n\n'
              'event: delta\ndata: {"text": "Password reset links expire after"}\n\n')
    page.route("**/v1/chat", lambda route: (calls.append("broken"),
                                            route.fulfill(status=200, body=broken,
                                                          headers={"Content-Type": "text/event-stream"})))
    widget.textarea.fill("How long is a password reset link valid?")
    widget.send.click()
    failed = widget.turns.nth(1)
    expect(failed).to_have_attribute("data-state", "error", timeout=ANSWER_TIMEOUT_MS)
    expect(failed).to_contain_text("Password reset links expire after")
    expect(failed).to_contain_text("The connection dropped.")
    page.wait_for_timeout(1500)
    assert calls.count("broken") == 1  # not resent: the server may have saved that turn
    page.unroute("**/v1/chat")

    failed.get_by_role("button", name="Retry").click()
    expect(failed).to_have_attribute("data-state", "done", timeout=ANSWER_TIMEOUT_MS)
    expect(failed).to_contain_text("60 minutes")
    expect(widget.turns).to_have_count(2)  # asked again in place, as the last answer


# --- several sites: the site key -------------------------------------------------------------------------------------
def test_the_site_key_names_the_tenant_in_every_call(widget_stack, registry_chat, browsing):
    _, site, key = registry_chat
    page = browsing.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.method + " " + r.url + " " + (r.post_data or "")))
    page.goto(site.url + "/plain.html")  # its script tag carries data-site-key (the tenant's embed snippet)
    widget = Widget(page).open()
    answer = widget.ask("Can I get a refund?")
    assert_cited(answer, "Refunds")
    turn_id = answer.get_attribute("data-turn-id")
    answer.locator('button[aria-label="Helpful"]').click()
    expect(answer.locator('button[aria-label="Helpful"]')).to_have_attribute("aria-pressed", "true")
    wait_for(lambda: widget_stack.tenant().collection("feedback").document(turn_id).get().to_dict(),
             lambda d: d and d.get("rating") == "up", "the feedback in Firestore")

    page.reload()
    widget = Widget(page).open()
    expect(widget.turns).to_have_count(1)  # resumed: GET /v1/sessions/{id}?site_key=…
    api = [r for r in requests if "/v1/" in r and "/widget/" not in r and not r.startswith("OPTIONS")]
    assert any(r.startswith("POST") and "/v1/chat" in r and key in r for r in api)
    assert any(r.startswith("POST") and "/v1/feedback" in r and key in r for r in api)
    assert any(r.startswith("GET") and f"site_key={key}" in r for r in api)
    assert all(key in r for r in api), api
    assert all('"tenant"' not in r for r in api)


def test_a_wrong_site_key_is_refused_with_a_message(widget_stack, registry_chat, browsing):
    _, site, _ = registry_chat
    page = browsing.new_page()
    page.goto(site.url + "/plain.html")
    widget = Widget(page).open()
    widget.host.evaluate('(el, key) => el.setAttribute("site-key", key)', "pk_" + "x" * 24)  # wins over data-*
    widget.textarea.fill("Can I get a refund?")
    widget.send.click()
    expect(widget.log).to_contain_text("unknown site key", timeout=ANSWER_TIMEOUT_MS)
