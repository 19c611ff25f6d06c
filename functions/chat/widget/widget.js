/*
 * support-chat: the embeddable chat widget of the support agent (vanilla ES2020, no dependencies, no build step).
 * Served by the chat function at GET /widget/v1/widget.js; the API it calls is functions/chat/openapi.yaml.
 *
 * Embed (a floating launcher, bottom right):
 *   <script src="https://CHAT_HOST/widget/v1/widget.js" data-title="Help" async></script>
 * Inline (the panel fills the element; no launcher is added):
 *   <support-chat mode="inline" style="height: 600px"></support-chat>
 *   <script src="https://CHAT_HOST/widget/v1/widget.js" async></script>
 *
 * Options: an attribute of <support-chat>, else the same name as data-* on the script tag, else the default.
 *   chat-url       the chat API's base URL      default: the script's own URL up to "/widget/" (its origin)
 *   title          panel title                   default: "Help"
 *   greeting       first assistant message       default: "Hi! How can I help you today?" (never sent)
 *   position       right | left (launcher)       default: right
 *   primary-color  sets --sc-primary             default: #0b57d0
 *   language       UI strings (STRINGS below)    default: en (unknown languages fall back to en)
 *   mode           launcher | inline             default: launcher
 *   site-key       the site's public key (`site_key`), from `python -m infra.tenants add`; it names the tenant
 *                  default: none (a deployment without a tenant registry needs none)
 *   user-token     signed user id (`user_token`) default: none (sent with every question, hand-off and vote, and
 *                  as the X-User-Token header when a saved conversation is read back: a signed user's needs it)
 *   session-ttl    seconds a saved conversation is resumed for; match SESSION_TTL_SECONDS   default: 86400
 * The script appends one <support-chat> to <body> unless its data-mode is "inline" or the page already has a
 * <support-chat> element when the document has been parsed.
 *
 * Theming: CSS custom properties set on the element (support-chat { --sc-primary: #c00 }) or inherited:
 *   --sc-primary     accent: launcher, header, user bubbles, links  #0b57d0
 *   --sc-on-primary  text and icons on the accent                   #fff
 *   --sc-bg          panel background                              #fff
 *   --sc-surface     assistant bubbles, code, pressed buttons      #f1f3f6
 *   --sc-text        body text                                     #1f1f1f
 *   --sc-muted       secondary text (snippets, counters)           #5e6268
 *   --sc-border      borders and dividers                          #d9dce1
 *   --sc-error       error notices                                 #b3261e
 *   --sc-focus       focus ring                                    --sc-primary
 *   --sc-radius      corner radius of the panel and bubbles        14px
 *   --sc-font        font family                                   system-ui stack
 *   --sc-font-size   base font size                                15px
 *   --sc-shadow      shadow of the panel and launcher              0 12px 40px rgba(0,0,0,.18)
 *   --sc-width       floating panel width                          380px
 *   --sc-height      floating panel height (inline: the element's) 600px
 *   --sc-offset      launcher distance from the viewport edges     20px
 *   --sc-z-index     stacking order of launcher and panel          2147483000
 *
 * DOM contract (open shadow root; browser tests rely on it):
 *   button.launcher[aria-label="Open chat"][aria-expanded]  section.panel[role=dialog][aria-label=<title>][lang]
 *   header buttons: [aria-label="Talk to a human"], [aria-label="New conversation"], [aria-label="Close chat"]
 *   .log[role=log][aria-live=polite]  >  .msg[data-role=user|assistant|system]
 *     assistant: [data-turn-id][data-state=streaming|done|error][data-action=answer|clarify|handoff]; the greeting
 *     has data-kind="greeting"; .content[aria-busy] holds the Markdown, ol.cites the sources, .typing the dots,
 *     .notice errors and retries (button "Retry"), .fb the [aria-label=Helpful]/[aria-label="Not helpful"] votes
 *     system: data-kind="handoff" and data-ticket-id after a hand-off
 *   form.composer: textarea[aria-label=Message], button[aria-label=Send]; form.handoff: the hand-off form
 *
 * Safety: answers, titles and snippets become DOM through createElement/textContent only; links only to http(s)
 * and mailto. Nothing is fetched except from chat-url.
 */
(() => {
  "use strict";
  const TAG = "support-chat";
  if (typeof customElements === "undefined" || customElements.get(TAG)) return; // loaded twice: the first wins

  const SCRIPT = document.currentScript;
  const MAX_CHARS = 4000; // CHAT_MAX_MESSAGE_CHARS
  const COUNTER_FROM = 3500; // show "N characters left" from here on
  const RETRY_DELAYS = [1000, 2000, 4000]; // network failures before any response
  const IDLE_MS = 45000; // no byte for this long (the server pings every 10 s): the stream is dead
  const SVG = "http://www.w3.org/2000/svg"; // the SVG namespace name, never fetched
  const DEFAULTS = {position: "right", mode: "launcher", language: "en", "session-ttl": "86400"};

  // UI strings, one object per language; add a language by adding a key with the same fields.
  const STRINGS = {
    en: {
      title: "Help",
      greeting: "Hi! How can I help you today?",
      open: "Open chat",
      close: "Close chat",
      newChat: "New conversation",
      human: "Talk to a human",
      message: "Message",
      placeholder: "Ask a question…",
      send: "Send",
      typing: "Assistant is typing",
      sources: "Sources",
      source: "Source {n}",
      feedback: "Was this answer helpful?",
      helpful: "Helpful",
      notHelpful: "Not helpful",
      reason: "What was missing or wrong? (optional)",
      sendFeedback: "Send feedback",
      thanks: "Thanks for the feedback",
      feedbackFailed: "Your feedback could not be sent. Please try again.",
      retrying: "Connection lost — retrying…",
      rateLimited: "Too many messages, retrying in {n}s",
      offline: "The assistant could not be reached. Check your connection and try again.",
      serverError: "Something went wrong on our side. Please try again.",
      dropped: "The connection dropped.",
      retry: "Retry",
      charsLeft: "{n} characters left",
      handoffIntro: "Leave a way to reach you and a short note; a person from our team will reply.",
      contact: "Email or phone (optional)",
      note: "How can we help?",
      noteRequired: "Please describe your question first.",
      handoffSend: "Send to our team",
      cancel: "Cancel",
      handoffDone: "A person from our team will get back to you (ticket {id}).",
      handoffFailed: "Our team could not be reached. Please try again.",
      expired: "This conversation has expired. Please describe your question again.",
    },
  };

  const fmt = (text, vars) => text.replace(/\{(\w+)\}/g, (all, key) => (key in vars ? String(vars[key]) : all));
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Where the script came from, up to "/widget/": the chat API's default base URL.
  const SCRIPT_BASE = (() => {
    try {
      const url = new URL(SCRIPT.src);
      const at = url.pathname.lastIndexOf("/widget/");
      return url.origin + (at > 0 ? url.pathname.slice(0, at) : "");
    } catch (e) {
      return "";
    }
  })();

  // --- storage that may be missing or throw (private mode, blocked cookies) -------------------------------------
  function storage(kind) {
    try {
      return window[kind] || null;
    } catch (e) {
      return null;
    }
  }
  function load(kind, key) {
    try {
      return JSON.parse(storage(kind).getItem(key));
    } catch (e) {
      return null;
    }
  }
  function save(kind, key, value) {
    try {
      if (value == null) storage(kind).removeItem(key);
      else storage(kind).setItem(key, JSON.stringify(value));
    } catch (e) {
      /* nothing to do: the widget works without memory */
    }
  }

  // --- Server-Sent Events: chunks split anywhere in, (event name, data) out ---------------------------------------
  class SSEParser {
    constructor(onEvent) {
      this.onEvent = onEvent;
      this.buffer = "";
      this.name = "";
      this.data = [];
      this.first = true;
    }

    /** Feed decoded text; complete events are dispatched, the unfinished rest is kept. */
    feed(text) {
      let buffer = this.buffer + text;
      if (this.first && buffer) {
        this.first = false;
        if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
      }
      const eol = /\r\n|\r|\n/g;
      let start = 0;
      let match;
      while ((match = eol.exec(buffer))) {
        // A CR at the very end may be the first half of a CRLF that the next chunk completes.
        if (match[0] === "\r" && eol.lastIndex === buffer.length) break;
        this.line(buffer.slice(start, match.index));
        start = eol.lastIndex;
      }
      this.buffer = buffer.slice(start);
    }

    /** The stream ended: a last line ended by a lone CR still counts; an unterminated event is dropped. */
    end() {
      if (this.buffer.endsWith("\r")) this.line(this.buffer.slice(0, -1));
      this.buffer = "";
    }

    line(line) {
      if (line === "") {
        if (this.data.length) this.onEvent(this.name || "message", this.data.join("\n"));
        this.name = "";
        this.data = [];
        return;
      }
      if (line[0] === ":") return; // a comment, such as the `: ping` heartbeat
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "event") this.name = value;
      else if (field === "data") this.data.push(value);
    }
  }

  // --- DOM building (text is always a text node) -----------------------------------------------------------------
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value == null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) if (child != null) el.append(child);
    return el;
  }

  const ICONS = {
    chat: "M21 11.5a8.5 8.5 0 0 1-12.3 7.6L3 21l1.9-5.7A8.5 8.5 0 1 1 21 11.5z",
    close: "M6 6l12 12M18 6L6 18",
    send: "M22 2L11 13M22 2l-7 20-4-9-9-4z",
    person: "M12 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21a8 8 0 0 1 16 0",
    compose: "M12 20h9M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z",
    thumb: "M7 10v11H3V10zm0 0l4-8a3 3 0 0 1 3 3v4h5.7a2 2 0 0 1 2 2.3l-1.4 8a2 2 0 0 1-2 1.7H7",
  };
  function icon(name, cls) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    if (cls) svg.setAttribute("class", cls);
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", ICONS[name]);
    svg.append(path);
    return svg;
  }

  // --- safe Markdown ---------------------------------------------------------------------------------------------
  /** An absolute http(s) (or, with `mail`, mailto) URL, normalised; null for anything else (javascript:, data:…). */
  function safeUrl(value, mail = true) {
    try {
      const url = new URL(String(value).trim());
      return url.protocol === "http:" || url.protocol === "https:" || (mail && url.protocol === "mailto:")
        ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function link(href, text) {
    return h("a", {href, target: "_blank", rel: "noopener noreferrer"}, text);
  }

  // `code` | **bold** | __bold__ | *italic* | [text](url) | [1] or [1, 2] | bare http(s) URL
  const INLINE = new RegExp([
    "`([^`\\n]+)`",
    "\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*",
    "(?<![\\w.])__(?=\\S)([\\s\\S]*?\\S)__(?!\\w)", // not inside names like window.__init__
    "\\*(?=[^\\s*])([^*\\n]*?[^\\s*])\\*",
    "\\[((?:[^\\[\\]\\n]|\\[[^\\[\\]\\n]*\\])+)\\]" + // link text: may hold one level of [brackets]
      "\\(\\s*<?([^\\s<>()]*(?:\\([^\\s<>()]*\\)[^\\s<>()]*)*)>?(?:\\s+\"[^\"\\n]*\")?\\s*\\)",
    "\\[(\\d{1,3}(?:\\s*,\\s*\\d{1,3})*)\\]",
    "\\b(https?:\\/\\/[^\\s<>\"'`]*[^\\s<>\"'`.,;:!?)\\]}*_])",
  ].join("|"), "g");

  /** Append the inline Markdown of `text` to `parent`; `ctx.cites` maps citation numbers to citations. */
  function inline(text, parent, ctx, inLink = false) {
    const pattern = new RegExp(INLINE.source, "g"); // own lastIndex: this function recurses
    let last = 0;
    let m;
    while ((m = pattern.exec(text))) {
      if (m.index > last) parent.append(text.slice(last, m.index));
      last = pattern.lastIndex;
      if (m[1] != null) parent.append(h("code", {text: m[1]}));
      else if (m[2] != null || m[3] != null) inline(m[2] ?? m[3], parent.appendChild(h("strong")), ctx, inLink);
      else if (m[4] != null) inline(m[4], parent.appendChild(h("em")), ctx, inLink);
      else if (m[5] != null) {
        const href = inLink ? null : safeUrl(m[6]);
        inline(m[5], href ? parent.appendChild(link(href)) : parent, ctx, inLink || !!href);
      } else if (m[7] != null) {
        m[7].split(",").forEach((n) => parent.append(marker(Number(n), ctx, inLink)));
      } else if (m[8] != null) parent.append(inLink ? m[8] : link(m[8], m[8]));
    }
    if (last < text.length) parent.append(text.slice(last));
  }

  /** A citation marker: a link to the numbered source below the answer once the citations are known. */
  function marker(n, ctx, inLink) {
    const citation = ctx.cites && ctx.cites.get(n);
    if (!citation || inLink) return h("sup", {class: "cite"}, `[${n}]`);
    const label = fmt(ctx.t.source, {n}) + (citation.title ? `: ${citation.title}` : "");
    return h("sup", {class: "cite"}, h("a", {href: "#" + ctx.id(n), "data-cite": n, "aria-label": label}, `[${n}]`));
  }

  /** A DocumentFragment for `source`: paragraphs, line breaks, headings, lists, fenced code, inline spans. */
  function markdown(source, ctx) {
    const out = document.createDocumentFragment();
    const lines = String(source).replace(/\r\n?/g, "\n").split("\n");
    let para = null;
    let list = null;
    let listKind = "";
    let item = null;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      const fence = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/.exec(line);
      if (fence) {
        const code = [];
        while (++i < lines.length && !lines[i].trim().startsWith(fence[1])) code.push(lines[i]);
        out.append(h("pre", null, h("code", {"data-lang": fence[2] || null, text: code.join("\n")})));
        para = list = null;
        continue;
      }
      if (!line.trim()) {
        para = list = null;
        continue;
      }
      const heading = /^\s{0,3}#{1,6}\s+(.*?)[\s#]*$/.exec(line);
      if (heading) {
        const strong = h("strong");
        inline(heading[1], strong, ctx);
        out.append(h("p", {class: "md-h"}, strong));
        para = list = null;
        continue;
      }
      if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
        out.append(h("hr"));
        para = list = null;
        continue;
      }
      const bullet = /^\s*(?:([-*+•])|(\d{1,9})[.)])\s+(.*)$/.exec(line);
      if (bullet) {
        const kind = bullet[1] ? "ul" : "ol";
        if (!list || listKind !== kind) {
          list = h(kind, kind === "ol" && bullet[2] !== "1" ? {start: Number(bullet[2])} : null);
          listKind = kind;
          out.append(list);
        }
        item = list.appendChild(h("li"));
        inline(bullet[3], item, ctx);
        para = null;
        continue;
      }
      if (list && /^\s/.test(line)) { // an indented continuation of the last list item
        item.append(h("br"));
        inline(line.trim(), item, ctx);
        continue;
      }
      list = null;
      if (para) para.append(h("br"));
      else para = out.appendChild(h("p"));
      inline(line, para, ctx);
    }
    return out;
  }

  /** The numbered source list under an answer: each source's title, linked when it has a public http(s) page.
   *  Nothing else of the citation is shown as a place (a path is never a customer's business). */
  function sourceList(citations, ctx) {
    const list = h("ol", {class: "cites", "aria-label": ctx.t.sources});
    for (const c of citations) {
      const href = safeUrl(c.url, false);
      const title = c.title || fmt(ctx.t.source, {n: c.number});
      const entry = h("li", {id: ctx.id(c.number), value: c.number, tabindex: -1}, href ? link(href, title) : title);
      if (c.snippet) {
        const snippet = String(c.snippet);
        entry.append(h("span", {class: "snip", title: snippet,
                                text: snippet.length > 160 ? snippet.slice(0, 157).trimEnd() + "…" : snippet}));
      }
      list.append(entry);
    }
    return list;
  }

  // --- styles (inside the shadow root: the page's CSS cannot reach in, ours cannot leak out) ---------------------
  const STYLE = `
:host{all:initial;display:block;--p:var(--sc-primary,#0b57d0);--op:var(--sc-on-primary,#fff);--bg:var(--sc-bg,#fff);
--sf:var(--sc-surface,#f1f3f6);--tx:var(--sc-text,#1f1f1f);--mu:var(--sc-muted,#5e6268);--bd:var(--sc-border,#d9dce1);
--er:var(--sc-error,#b3261e);--fc:var(--sc-focus,var(--p));--r:var(--sc-radius,14px);--fs:var(--sc-font-size,15px);
--f:var(--sc-font,system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif);
--sh:var(--sc-shadow,0 12px 40px rgba(0,0,0,.18));--w:var(--sc-width,380px);--h:var(--sc-height,600px);
--off:var(--sc-offset,20px);--z:var(--sc-z-index,2147483000)}
:host(:not([mode=inline])){position:static!important;transform:none!important;filter:none!important;
perspective:none!important;contain:none!important;z-index:auto!important;outline:none!important;margin:0!important}
*,*::before,*::after{box-sizing:border-box}
[hidden]{display:none!important}
.root{font-family:var(--f);font-size:var(--fs);line-height:1.45;color:var(--tx);font-weight:400;font-style:normal;
letter-spacing:normal;word-spacing:normal;text-align:left;text-transform:none;text-indent:0;white-space:normal;
direction:ltr;visibility:visible;cursor:auto;text-shadow:none;-webkit-font-smoothing:antialiased}
.root.inline{height:100%}
button,input,textarea{font:inherit;color:inherit;letter-spacing:inherit;margin:0;text-transform:none}
button{cursor:pointer}
:focus{outline:none}
:focus-visible{outline:2px solid var(--fc);outline-offset:2px}
svg{width:20px;height:20px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round;
flex:none}
.launcher{position:fixed;bottom:var(--off);right:var(--off);z-index:var(--z);width:56px;height:56px;padding:0;
border:0;border-radius:50%;background:var(--p);color:var(--op);box-shadow:var(--sh);display:grid;place-items:center;
transition:transform .15s}
.launcher:hover{transform:scale(1.05)}
.launcher svg{width:26px;height:26px;grid-area:1/1}
.launcher .i-close,.open .launcher .i-chat{display:none}
.open .launcher .i-close{display:block}
.left .launcher{right:auto;left:var(--off)}
.panel{display:flex;flex-direction:column;overflow:hidden;background:var(--bg);color:var(--tx)}
.float .panel{position:fixed;right:var(--off);bottom:calc(var(--off) + 68px);z-index:var(--z);
width:min(var(--w),calc(100vw - 2*var(--off)));height:min(var(--h),calc(100vh - var(--off) - 88px));
border:1px solid var(--bd);border-radius:var(--r);box-shadow:var(--sh)}
.float.left .panel{right:auto;left:var(--off)}
.inline .panel{width:100%;height:100%;min-height:320px;border:1px solid var(--bd);border-radius:var(--r)}
.header{display:flex;align-items:center;gap:4px;padding:8px 8px 8px 16px;background:var(--p);color:var(--op);flex:none}
.title{flex:1;min-width:0;margin:0;font-size:1.05em;font-weight:600;line-height:1.3;overflow:hidden;
text-overflow:ellipsis;white-space:nowrap}
.header :focus-visible{outline-color:var(--op)}
.hbtn{display:inline-flex;align-items:center;gap:6px;height:34px;min-width:34px;padding:0 7px;border:0;
border-radius:8px;background:transparent;color:var(--op);font-size:.87em;justify-content:center}
.hbtn:hover{background:rgba(255,255,255,.16)}
.hbtn svg{width:18px;height:18px}
.log{flex:1;min-height:0;overflow-y:auto;overscroll-behavior:contain;padding:16px 14px;display:flex;
flex-direction:column;gap:12px}
.msg{display:flex;flex-direction:column;gap:6px;max-width:88%;align-items:flex-start}
.msg[data-role=user]{align-self:flex-end;align-items:flex-end}
.msg[data-role=system]{align-self:center;max-width:95%;text-align:center;color:var(--mu);font-size:.87em}
.bubble{padding:9px 13px;border-radius:var(--r);background:var(--sf);overflow-wrap:anywhere;max-width:100%}
[data-role=assistant] .bubble{border-bottom-left-radius:4px}
[data-role=user] .bubble{background:var(--p);color:var(--op);white-space:pre-wrap;border-bottom-right-radius:4px}
.content p,.content ul,.content ol,.content pre{margin:0 0 .6em}
.content>:last-child{margin-bottom:0}
.content ul,.content ol{padding-left:1.4em}
.content li{margin:.15em 0}
.content hr{border:0;border-top:1px solid var(--bd);margin:.6em 0}
.content a,.cites a{color:var(--p);text-decoration:underline}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em;background:rgba(0,0,0,.06);
padding:.1em .3em;border-radius:4px}
pre{background:rgba(0,0,0,.06);padding:8px 10px;border-radius:8px;overflow-x:auto;white-space:pre}
pre code{background:none;padding:0;white-space:pre}
sup.cite{font-size:.72em;line-height:0;vertical-align:super;margin-left:1px}
sup.cite a{text-decoration:none;font-weight:600}
.cites{margin:0;padding:0 0 0 1.6em;font-size:.85em;max-width:100%}
.cites li{margin:3px 0;overflow-wrap:anywhere}
.cites li:focus-visible{outline-offset:1px}
.snip{display:block;font-size:.95em;color:var(--mu)}
.typing{display:flex;gap:4px;padding:5px 0}
.typing i{width:7px;height:7px;border-radius:50%;background:var(--mu);animation:sc-dot 1.2s infinite ease-in-out}
.typing i:nth-child(2){animation-delay:.15s}
.typing i:nth-child(3){animation-delay:.3s}
@keyframes sc-dot{0%,80%,100%{opacity:.3;transform:none}40%{opacity:1;transform:translateY(-3px)}}
@media (prefers-reduced-motion:reduce){.typing i{animation:none}.launcher{transition:none}}
.sr{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);
white-space:nowrap;border:0}
.notice{display:flex;flex-wrap:wrap;align-items:center;gap:8px;font-size:.87em;color:var(--mu)}
[data-state=error] .notice{color:var(--er)}
.btn{padding:5px 12px;border:1px solid var(--bd);border-radius:999px;background:var(--bg);color:var(--tx);
font-size:.87em;line-height:1.3}
.btn:hover{border-color:var(--p)}
.btn.primary{background:var(--p);border-color:var(--p);color:var(--op)}
.btn:disabled{opacity:.5;cursor:default}
.fb{display:flex;flex-wrap:wrap;align-items:center;gap:2px;color:var(--mu);font-size:.85em}
.ibtn{width:30px;height:30px;display:grid;place-items:center;padding:0;border:0;border-radius:8px;
background:transparent;color:var(--mu)}
.ibtn svg{width:17px;height:17px}
.ibtn:hover,.ibtn[aria-pressed=true]{color:var(--p);background:var(--sf)}
.ibtn[aria-pressed=true] svg{fill:currentColor;fill-opacity:.2}
.flip{transform:rotate(180deg)}
.fb form{display:flex;gap:6px;flex-basis:100%;margin-top:4px}
.fb-status{margin-left:4px}
input,textarea{min-width:0;border:1px solid var(--bd);border-radius:10px;padding:7px 10px;background:var(--bg);
color:var(--tx);line-height:1.4}
input{flex:1}
input:focus-visible,textarea:focus-visible{outline-offset:0;border-color:var(--fc)}
.handoff{display:flex;flex-direction:column;gap:8px;padding:12px 14px;border-top:1px solid var(--bd);flex:none;
background:var(--sf)}
.handoff p{margin:0;font-size:.87em;color:var(--mu)}
.handoff textarea{resize:vertical;min-height:56px}
.row{display:flex;gap:8px;justify-content:flex-end;align-items:center}
.ho-status{flex:1;font-size:.85em;color:var(--er)}
.composer{display:flex;align-items:flex-end;gap:8px;padding:10px 12px;border-top:1px solid var(--bd);flex:none;
background:var(--bg);position:relative}
.composer textarea{flex:1;resize:none;height:42px;max-height:140px;overflow-y:auto}
.counter{position:absolute;right:66px;top:-20px;font-size:.78em;color:var(--mu);background:var(--bg);padding:0 4px}
.send{width:42px;height:42px;flex:none;display:grid;place-items:center;padding:0;border:0;border-radius:10px;
background:var(--p);color:var(--op)}
.send:disabled{opacity:.4;cursor:default}
@media (max-width:480px){
.float .panel{inset:0;width:100%;height:100%;max-width:none;border:0;border-radius:0}
.float.open .launcher{display:none}
.human-text{display:none}
}
`;

  let instances = 0;

  class SupportChat extends HTMLElement {
    static get observedAttributes() {
      return ["title", "greeting", "position", "primary-color", "mode"];
    }

    constructor() {
      super();
      this.attachShadow({mode: "open"});
      this.uid = "sc" + ++instances;
      this.session = null; // the conversation's session_id once the server named one
      this.busy = false; // a question is in flight: sending is disabled
      this.gen = 0; // bumped by "New conversation": late results of the old one are dropped
      this.loaded = false;
      this.seq = 0;
    }

    /** An option: the element's attribute, else the script tag's data-* attribute, else the default. */
    opt(name) {
      const own = this.getAttribute(name);
      if (own) return own;
      const fromScript = SCRIPT && SCRIPT.getAttribute && SCRIPT.getAttribute("data-" + name);
      return fromScript || DEFAULTS[name] || "";
    }

    get base() {
      const url = this.opt("chat-url") || SCRIPT_BASE || location.origin;
      try {
        return new URL(url, document.baseURI).href.replace(/\/+$/, "");
      } catch (e) {
        return url.replace(/\/+$/, "");
      }
    }

    get key() {
      return `support-chat:${this.base}:${this.opt("site-key")}`;
    }

    connectedCallback() {
      if (!this.panel) this.build();
      this.apply();
      if (this.inline) this.ensureLoaded();
      else if (load("sessionStorage", this.key + ":open")) this.open(false);
    }

    attributeChangedCallback() {
      if (this.panel) this.apply();
    }

    build() {
      const lang = this.opt("language").toLowerCase();
      const known = STRINGS[lang] ? lang : STRINGS[lang.split("-")[0]] ? lang.split("-")[0] : "en";
      const t = (this.t = STRINGS[known]);
      const style = h("style", {nonce: SCRIPT && SCRIPT.nonce ? SCRIPT.nonce : null}, STYLE); // CSP nonce of the tag

      this.launcher = h("button", {
        type: "button", class: "launcher", title: "", "aria-label": t.open, "aria-expanded": "false",
        "aria-controls": "panel", onclick: () => (this.isOpen ? this.close(true) : this.open(true)),
      }, icon("chat", "i-chat"), icon("close", "i-close"));

      this.titleEl = h("h2", {class: "title"});
      this.humanBtn = h("button", {type: "button", class: "hbtn", "aria-label": t.human,
                                   onclick: () => this.toggleHandoff()},
      icon("person"), h("span", {class: "human-text", text: t.human}));
      this.closeBtn = h("button", {type: "button", class: "hbtn", "aria-label": t.close, title: t.close,
                                   onclick: () => this.close(true)}, icon("close"));
      const header = h("div", {class: "header"}, this.titleEl, this.humanBtn,
                       h("button", {type: "button", class: "hbtn", "aria-label": t.newChat, title: t.newChat,
                                    onclick: () => this.reset()}, icon("compose")),
                       this.closeBtn);

      this.log = h("div", {class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
                           onclick: (e) => this.followCitation(e)});

      this.hoContact = h("input", {type: "text", name: "contact", autocomplete: "email", maxlength: 320,
                                   "aria-label": t.contact, placeholder: t.contact});
      this.hoNote = h("textarea", {name: "reason", rows: 2, maxlength: 1000, "aria-label": t.note,
                                   placeholder: t.note});
      this.hoStatus = h("span", {class: "ho-status", role: "status"});
      this.hoSend = h("button", {type: "submit", class: "btn primary", text: t.handoffSend});
      this.handoff = h("form", {class: "handoff", hidden: true, "aria-label": t.human,
                                onsubmit: (e) => this.submitHandoff(e)},
      h("p", {text: t.handoffIntro}), this.hoContact, this.hoNote,
      h("div", {class: "row"}, this.hoStatus,
        h("button", {type: "button", class: "btn", text: t.cancel, onclick: () => this.toggleHandoff(false)}),
        this.hoSend));

      this.input = h("textarea", {rows: 1, maxlength: MAX_CHARS, "aria-label": t.message, placeholder: t.placeholder,
                                  oninput: () => this.onInput(true), onkeydown: (e) => this.onKey(e)});
      this.counter = h("span", {class: "counter", hidden: true});
      this.sendBtn = h("button", {type: "submit", class: "send", "aria-label": t.send, disabled: true}, icon("send"));
      const composer = h("form", {class: "composer", onsubmit: (e) => { e.preventDefault(); this.submit(); }},
                         this.input, this.counter, this.sendBtn);

      this.panel = h("section", {id: "panel", class: "panel", role: "dialog", lang: known, title: "",
                                 onkeydown: (e) => this.onPanelKey(e)}, header, this.log, this.handoff, composer);
      this.root = h("div", {class: "root"}, this.launcher, this.panel);
      this.shadowRoot.append(style, this.root);
    }

    /** Apply the cosmetic options; they may change at any time. */
    apply() {
      const t = this.t;
      this.inline = this.opt("mode") === "inline";
      const title = this.opt("title") || t.title;
      this.titleEl.textContent = title;
      this.panel.setAttribute("aria-label", title);
      const color = this.opt("primary-color");
      if (color && (!window.CSS || window.CSS.supports("color", color))) this.style.setProperty("--sc-primary", color);
      this.root.className = ["root", this.inline ? "inline" : "float", this.opt("position") === "left" ? "left" : "",
                             this.isOpen ? "open" : ""].join(" ").trim();
      this.launcher.hidden = this.inline;
      this.closeBtn.hidden = this.inline;
      if (this.inline) this.panel.hidden = false;
      else if (!this.isOpen) this.panel.hidden = true;
    }

    get isOpen() {
      return this.launcher.getAttribute("aria-expanded") === "true";
    }

    open(focus) {
      this.launcher.setAttribute("aria-expanded", "true");
      this.root.classList.add("open");
      this.panel.hidden = false;
      save("sessionStorage", this.key + ":open", true);
      this.ensureLoaded();
      this.scrollDown(true);
      if (focus) this.input.focus();
    }

    close(returnFocus) {
      if (this.inline) return;
      this.launcher.setAttribute("aria-expanded", "false");
      this.root.classList.remove("open");
      this.panel.hidden = true;
      save("sessionStorage", this.key + ":open", null);
      if (returnFocus) this.launcher.focus();
    }

    onPanelKey(e) {
      if (e.key !== "Escape" || (this.inline && this.handoff.hidden)) return;
      e.stopPropagation();
      if (!this.handoff.hidden) this.toggleHandoff(false);
      else this.close(true);
    }

    onKey(e) {
      if (e.key !== "Enter" || e.shiftKey || e.isComposing || e.keyCode === 229) return;
      e.preventDefault(); // Enter sends (or, while an answer streams, does nothing); Shift+Enter is a newline
      this.submit();
    }

    onInput(typed) {
      const input = this.input;
      if (typed) { // grow with the text, up to the CSS max-height
        input.style.height = "auto";
        input.style.height = Math.min(input.scrollHeight + 2, 140) + "px";
      }
      const left = MAX_CHARS - input.value.length;
      this.counter.hidden = input.value.length < COUNTER_FROM;
      this.counter.textContent = fmt(this.t.charsLeft, {n: left});
      this.sendBtn.disabled = this.busy || !input.value.trim();
    }

    setBusy(busy) {
      this.busy = busy;
      this.onInput();
    }

    submit() {
      const question = this.input.value.trim();
      if (this.busy || !question || question.length > MAX_CHARS) return;
      if (this.shadowRoot.activeElement === this.sendBtn) this.input.focus(); // it is about to be disabled
      this.input.value = "";
      this.input.style.height = "";
      this.onInput();
      this.ask(question);
    }

    // --- conversation ------------------------------------------------------------------------------------------
    ensureLoaded() {
      if (this.loaded) return;
      this.loaded = true;
      this.greet();
      this.pending = this.resume();
    }

    greet() {
      const msg = this.addAssistant("greeting");
      msg.text = this.opt("greeting") || this.t.greeting;
      this.settle(msg, "done");
    }

    /** "New conversation": forget the session, drop whatever is in flight, start over with the greeting. */
    reset() {
      this.gen++;
      if (this.ctrl) this.ctrl.abort();
      this.forget();
      this.setBusy(false);
      this.log.replaceChildren();
      this.toggleHandoff(false);
      this.greet();
      this.input.focus();
    }

    setSession(id) {
      this.session = id;
      save("localStorage", this.key, {session_id: id, saved_at: Date.now()});
    }

    forget() {
      this.session = null;
      save("localStorage", this.key, null);
    }

    /** Show the saved conversation, if it is younger than session-ttl and the server still has it. */
    async resume() {
      const saved = load("localStorage", this.key);
      if (!saved || typeof saved.session_id !== "string") return;
      const ttl = Number(this.opt("session-ttl")) || Number(DEFAULTS["session-ttl"]);
      if (!(Date.now() - Number(saved.saved_at) < ttl * 1000)) return this.forget();
      this.session = saved.session_id;
      const gen = this.gen;
      const siteKey = this.opt("site-key");
      this.setBusy(true);
      try {
        const token = this.opt("user-token");
        // A signed user's conversation is read with their token, in a header: never in the URL (logs, history).
        const res = await fetch(this.base + "/v1/sessions/" + encodeURIComponent(saved.session_id) +
                                (siteKey ? "?site_key=" + encodeURIComponent(siteKey) : ""),
                                {credentials: "omit", headers: token ? {"X-User-Token": token} : {}});
        if (gen !== this.gen) return;
        if (res.status === 404) return this.forget(); // expired or unknown: start afresh
        const data = res.ok ? await res.json() : null; // other failures: keep the session, skip the history
        if (gen !== this.gen || !data || !Array.isArray(data.messages)) return;
        for (const m of data.messages) {
          if (m.role === "user") this.addUser(String(m.text || ""));
          else if (m.role === "assistant") {
            const msg = this.addAssistant();
            Object.assign(msg, {text: String(m.text || ""), session: saved.session_id});
            msg.citations = Array.isArray(m.citations) ? m.citations : [];
            this.setTurn(msg, m.turn_id);
            this.settle(msg, "done", m.action);
          }
        }
        this.scrollDown(true);
      } catch (e) {
        /* offline: keep the session, the next question continues it */
      } finally {
        if (gen === this.gen) this.setBusy(false);
      }
    }

    /** Ask `question`; `msg` is a failed answer to fill again (Retry). Resolves when the turn has ended. */
    ask(question, msg) {
      if (this.busy) return this.pending;
      return (this.pending = this.turn(question, msg));
    }

    async turn(question, msg) {
      const gen = this.gen;
      this.setBusy(true);
      if (msg) this.restart(msg);
      else {
        this.addUser(question);
        msg = this.addAssistant();
      }
      msg.question = question;
      this.scrollDown(true);
      let failures = 0;
      let waited = false;
      try {
        for (;;) {
          const body = {message: question, session_id: this.session || undefined,
                        site_key: this.opt("site-key") || undefined,
                        user_token: this.opt("user-token") || undefined};
          const ctrl = (this.ctrl = new AbortController());
          let res;
          try {
            res = await fetch(this.base + "/v1/chat", {
              method: "POST", credentials: "omit", signal: ctrl.signal, body: JSON.stringify(body),
              headers: {"Content-Type": "application/json", Accept: "text/event-stream"},
            });
          } catch (e) {
            if (gen !== this.gen) return;
            if (failures < RETRY_DELAYS.length) { // nothing reached the server's answer yet: safe to resend
              this.notice(msg, this.t.retrying);
              await sleep(RETRY_DELAYS[failures++]);
              if (gen !== this.gen) return;
              continue;
            }
            return this.fail(msg, this.t.offline, true);
          }
          if (gen !== this.gen) return;
          if (res.status === 429 && !waited) {
            waited = true;
            const seconds = Math.min(Math.max(parseInt(res.headers.get("Retry-After"), 10) || 5, 1), 120);
            await this.countdown(msg, seconds, gen);
            if (gen !== this.gen) return;
            continue;
          }
          if (!res.ok) {
            let error = null;
            try {
              error = (await res.json()).error;
            } catch (e) {
              /* not JSON */
            }
            if (res.status >= 500 || res.status === 429) {
              return this.fail(msg, res.status === 429 && error ? error.message : this.t.serverError, true);
            }
            return this.fail(msg, (error && error.message) || this.t.serverError, false);
          }
          this.notice(msg, null);
          return await this.stream(res, msg, gen);
        }
      } finally {
        if (gen === this.gen) this.setBusy(false);
      }
    }

    async countdown(msg, seconds, gen) {
      // Announced once; the seconds then tick in an aria-hidden span.
      const [before, after = ""] = this.t.rateLimited.split("{n}");
      const count = h("span", {"aria-hidden": "true", text: seconds});
      this.notice(msg, "").append(before, count, h("span", {class: "sr", text: seconds}), after);
      for (let left = seconds; left > 0 && gen === this.gen; left--) {
        count.textContent = left;
        await sleep(1000);
      }
    }

    /** Read the SSE answer into `msg`; a stream that ends without `done` or `error` has dropped. */
    async stream(res, msg, gen) {
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let ended = false;
      const parser = new SSEParser((name, data) => {
        let event;
        try {
          event = JSON.parse(data);
        } catch (e) {
          return;
        }
        if (gen === this.gen && !ended) ended = this.onEvent(msg, name, event || {});
      });
      let idle = 0;
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(() => reader.cancel().catch(() => {}), IDLE_MS);
      };
      try {
        arm();
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          arm();
          parser.feed(decoder.decode(value, {stream: true}));
        }
        parser.feed(decoder.decode());
        parser.end();
      } catch (e) {
        /* the connection dropped or was aborted */
      } finally {
        clearTimeout(idle);
      }
      // Not resent automatically: the server has started (and will save) this turn.
      if (!ended && gen === this.gen) this.fail(msg, this.t.dropped, true);
    }

    /** One SSE event; true when it ends the turn. */
    onEvent(msg, name, data) {
      if (name === "session") {
        this.setSession(String(data.session_id));
        msg.session = this.session;
        this.setTurn(msg, data.turn_id);
      } else if (name === "delta" && typeof data.text === "string") {
        msg.text += data.text;
        msg.typing.hidden = true;
        this.schedule(msg);
      } else if (name === "citations") {
        msg.citations = Array.isArray(data.citations) ? data.citations : [];
        this.schedule(msg);
      } else if (name === "done") {
        if (data.session_id) this.setSession(String(data.session_id));
        this.settle(msg, "done", data.action);
        return true;
      } else if (name === "error") {
        this.fail(msg, data.message || this.t.serverError, true);
        return true;
      }
      return false;
    }

    // --- messages ----------------------------------------------------------------------------------------------
    addUser(text) {
      const el = h("div", {class: "msg", "data-role": "user"}, h("div", {class: "bubble", text}));
      this.log.append(el);
      return el;
    }

    addSystem(text, attrs) {
      const el = h("div", Object.assign({class: "msg", "data-role": "system"}, attrs), text);
      this.log.append(el);
      this.scrollDown(true);
      return el;
    }

    addAssistant(kind) {
      const n = ++this.seq;
      const msg = {n, text: "", citations: [], turnId: null, session: this.session, raf: 0};
      msg.typing = h("div", {class: "typing"}, h("span", {"aria-hidden": "true"}, h("i"), h("i"), h("i")),
                     h("span", {class: "sr", text: this.t.typing}));
      msg.content = h("div", {class: "content", "aria-busy": "true"});
      msg.bubble = h("div", {class: "bubble"}, msg.typing, msg.content);
      msg.el = h("div", {class: "msg", "data-role": "assistant", "data-state": "streaming", "data-kind": kind},
                 msg.bubble);
      this.log.append(msg.el);
      return msg;
    }

    setTurn(msg, turnId) {
      msg.turnId = turnId ? String(turnId) : null;
      if (msg.turnId) msg.el.setAttribute("data-turn-id", msg.turnId);
    }

    /** A failed answer filled again by Retry: same element, fresh state. */
    restart(msg) {
      Object.assign(msg, {text: "", citations: []});
      msg.el.setAttribute("data-state", "streaming");
      msg.el.removeAttribute("data-action");
      msg.content.setAttribute("aria-busy", "true");
      msg.content.replaceChildren();
      msg.typing.hidden = msg.bubble.hidden = false;
      this.notice(msg, null);
      for (const part of msg.el.querySelectorAll(".cites,.fb,.cta")) part.remove();
    }

    schedule(msg) {
      if (msg.raf) return;
      msg.raf = requestAnimationFrame(() => {
        msg.raf = 0;
        this.render(msg);
      });
    }

    render(msg) {
      const follow = this.nearBottom();
      const ctx = {t: this.t, cites: new Map(msg.citations.map((c) => [Number(c.number), c])),
                   id: (n) => `${this.uid}-m${msg.n}-c${n}`};
      msg.content.replaceChildren(markdown(msg.text, ctx));
      msg.bubble.hidden = !msg.text && msg.typing.hidden; // a failure before any text: no empty bubble
      const old = msg.el.querySelector(".cites");
      if (old) old.remove();
      if (msg.citations.length) msg.bubble.after(sourceList(msg.citations, ctx));
      if (follow) this.scrollDown(true);
    }

    /** The answer is complete (or was never streamed): final render, announce, offer feedback and hand-off. */
    settle(msg, state, action) {
      cancelAnimationFrame(msg.raf);
      msg.raf = 0;
      msg.typing.hidden = true;
      this.render(msg);
      msg.el.setAttribute("data-state", state);
      if (action) msg.el.setAttribute("data-action", action);
      msg.content.setAttribute("aria-busy", "false"); // screen readers read the whole answer once, now
      if (state !== "done") return;
      if (action === "handoff") {
        msg.el.append(h("div", {class: "cta"}, h("button", {type: "button", class: "btn primary", text: this.t.human,
                                                            onclick: () => this.toggleHandoff(true)})));
      }
      if (msg.turnId && msg.session) msg.el.append(this.feedbackBar(msg));
      this.scrollDown(false); // the reader who followed the answer also sees its buttons
    }

    /** Mark the answer failed, keep what arrived, say why; `retry` adds a button that asks again. */
    fail(msg, text, retry) {
      this.settle(msg, "error");
      const notice = this.notice(msg, text);
      if (retry) {
        notice.append(h("button", {type: "button", class: "btn", text: this.t.retry, onclick: () => {
          if (this.busy) return;
          const last = this.log.lastElementChild === msg.el;
          if (!last) notice.remove();
          this.ask(msg.question, last ? msg : undefined); // in place if it is the last answer, else anew below
        }}));
      }
      this.scrollDown(false);
    }

    /** Set (or with null, remove) the notice line of a message; returns it. */
    notice(msg, text) {
      let el = msg.el.querySelector(".notice");
      if (el) el.remove();
      if (text === null) return null;
      el = h("div", {class: "notice"}, text || null);
      msg.el.append(el);
      return el;
    }

    feedbackBar(msg) {
      const t = this.t;
      const status = h("span", {class: "fb-status", role: "status"});
      const reason = h("input", {type: "text", maxlength: 1000, "aria-label": t.reason, placeholder: t.reason});
      const form = h("form", {hidden: true, onsubmit: (e) => {
        e.preventDefault();
        vote("down", reason.value.trim());
      }}, reason, h("button", {type: "submit", class: "btn", "aria-label": t.sendFeedback, text: t.send}));
      const button = (rating, label) => h("button", {
        type: "button", class: "ibtn", "aria-label": label, title: label, "aria-pressed": "false",
        onclick: () => vote(rating),
      }, icon("thumb", rating === "down" ? "flip" : null));
      const up = button("up", t.helpful);
      const down = button("down", t.notHelpful);
      // A vote is stored at once; a reason sent afterwards replaces it (the server keeps the last vote per turn).
      const vote = async (rating, why) => {
        up.setAttribute("aria-pressed", String(rating === "up"));
        down.setAttribute("aria-pressed", String(rating === "down"));
        form.hidden = rating !== "down" || why !== undefined;
        if (!form.hidden) reason.focus();
        const r = await this.post("/v1/feedback", {session_id: msg.session, turn_id: msg.turnId, rating,
                                                   reason: why || undefined});
        status.textContent = r.ok ? t.thanks : r.message || t.feedbackFailed;
      };
      return h("div", {class: "fb", role: "group", "aria-label": t.feedback}, up, down, status, form);
    }

    /** A click on a citation marker moves to its source in the list (not the page's URL fragment). */
    followCitation(e) {
      const a = e.target.closest && e.target.closest("a[data-cite]");
      if (!a) return;
      e.preventDefault();
      const target = this.shadowRoot.getElementById(a.getAttribute("href").slice(1));
      if (target) {
        target.scrollIntoView({block: "nearest"});
        target.focus();
      }
    }

    nearBottom() {
      const log = this.log;
      return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    }

    scrollDown(force) {
      if (force || this.nearBottom()) this.log.scrollTop = this.log.scrollHeight;
    }

    // --- hand-off and feedback calls ---------------------------------------------------------------------------
    toggleHandoff(show = this.handoff.hidden) {
      const hadFocus = this.handoff.contains(this.shadowRoot.activeElement);
      this.handoff.hidden = !show;
      this.hoStatus.textContent = "";
      if (show) {
        if (!this.inline && !this.isOpen) this.open(false);
        this.hoContact.focus();
      } else if (hadFocus) {
        this.humanBtn.focus();
      }
    }

    /**
     * The hand-off form: contact (optional) and a note. With a conversation, the ticket gets its transcript.
     * Without one, the note is required and is first asked as a question, so the ticket has a conversation
     * (and the assistant may answer meanwhile); the ticket is opened when that answer is complete.
     */
    async submitHandoff(e) {
      e.preventDefault();
      const t = this.t;
      const contact = this.hoContact.value.trim();
      const note = this.hoNote.value.trim();
      const gen = this.gen;
      if (!this.session && this.busy) await this.pending; // the first answer (or the resume) is on its way
      if (gen !== this.gen) return;
      if (!this.session) {
        if (!note) {
          this.hoStatus.textContent = t.noteRequired;
          this.hoNote.focus();
          return;
        }
        this.handoff.hidden = true;
        await this.ask(note);
        if (gen !== this.gen || !this.session) return;
      }
      this.hoSend.disabled = true;
      const r = await this.post("/v1/handoff", {session_id: this.session, reason: note || undefined,
                                                contact: contact || undefined});
      this.hoSend.disabled = false;
      if (gen !== this.gen) return;
      if (r.ok && r.data && r.data.ticket_id) {
        this.handoff.hidden = true;
        this.hoContact.value = this.hoNote.value = "";
        this.addSystem(fmt(t.handoffDone, {id: r.data.ticket_id}),
                       {"data-kind": "handoff", "data-ticket-id": r.data.ticket_id});
        this.input.focus();
      } else if (r.status === 404) {
        this.forget();
        this.handoff.hidden = false;
        this.hoStatus.textContent = t.expired;
      } else {
        this.handoff.hidden = false;
        this.hoStatus.textContent = r.message || t.handoffFailed;
      }
    }

    /** POST a JSON body; {ok, status, data, message} where message is the server's 4xx explanation. */
    async post(path, body) {
      body.site_key = this.opt("site-key") || undefined;
      body.user_token = this.opt("user-token") || undefined; // a signed user's session needs their token
      try {
        const res = await fetch(this.base + path, {method: "POST", credentials: "omit", body: JSON.stringify(body),
                                                   headers: {"Content-Type": "application/json"}});
        let data = null;
        try {
          data = await res.json();
        } catch (e) {
          /* 204 */
        }
        const message = res.status < 500 && data && data.error ? data.error.message : null;
        return {ok: res.ok, status: res.status, data, message};
      } catch (e) {
        return {ok: false, status: 0, data: null, message: null};
      }
    }
  }

  // For tests and for hosts that want to reuse them; not part of the embed contract.
  SupportChat.SSEParser = SSEParser;
  SupportChat.markdown = (text, citations = []) => markdown(text, {
    t: STRINGS.en, cites: new Map(citations.map((c) => [Number(c.number), c])), id: (n) => "c" + n,
  });
  SupportChat.sourceList = (citations) => sourceList(citations, {t: STRINGS.en, id: (n) => "c" + n});
  SupportChat.strings = STRINGS;

  customElements.define(TAG, SupportChat);

  function mount() {
    const mode = SCRIPT && SCRIPT.getAttribute && SCRIPT.getAttribute("data-mode");
    if (mode === "inline" || document.querySelector(TAG) || !document.body) return;
    document.body.append(document.createElement(TAG));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount, {once: true});
  else mount();
})();
