"""Markdown via markdown-it-py (CommonMark + tables); front matter `title:` honoured; raw HTML goes to the
HTML parser."""

from __future__ import annotations

import functools
import re

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from shared.ingest.parsers.common import (
    _collapse,
    _collapse_lines,
    _first_heading,
    _list_line,
    _table_blocks,
    decode_text,
)
from shared.ingest.parsers.html import _html_fragment_blocks, check_tag_count
from shared.ingest.parsers.limits import Budget, ParseLimits, check_text_size
from shared.models import Block, ParsedDocument

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)(?:^---|^\.\.\.)[ \t]*$\n?", re.S | re.M)
_FRONT_MATTER_LINE = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:[ \t]*(.*)$")


def parse(data: bytes, filename: str, limits: ParseLimits = ParseLimits()) -> ParsedDocument:
    text = decode_text(data)
    # Lines bound the tokens markdown-it makes (a few per line) and the blocks; characters bound the rest.
    check_text_size(text, limits, "the Markdown file")
    check_tag_count(text, limits, "the Markdown file")  # raw HTML in Markdown goes to BeautifulSoup
    meta, body = split_front_matter(text)
    # A line of "*a* *a* ..." is a million inline tokens (14 s and 430 MiB for one megabyte): markdown-it counts
    # its tokens into the budget as it makes them (_count_block_step, _count_inline_step).
    budget = Budget(limits, "the Markdown file", kind="syntax tokens")
    tree = SyntaxTreeNode(_markdown_parser().parse(body, {"budget": budget}))
    blocks: list[Block] = []
    _markdown_blocks(tree.children, blocks)
    title = meta.get("title") or _first_heading(blocks, level=1)
    return ParsedDocument(title=_collapse(title), blocks=blocks)


@functools.cache
def _markdown_parser():
    """One parser per process, reused while the instance is warm: building it costs more than parsing an article.
    Two rules of ours count tokens into the parse's budget (passed in `env`)."""
    parser = MarkdownIt("commonmark").enable("table")
    parser.block.ruler.before("table", "count_block_step", _count_block_step)
    parser.inline.ruler.before("text", "count_inline_step", _count_inline_step)
    return parser


def _count_block_step(state, start_line: int, end_line: int, silent: bool) -> bool:
    """Runs first wherever a block may start (a paragraph, list item, heading...): each makes two or three tokens."""
    budget = state.env.get("budget")
    if budget is not None and not silent:
        budget.add_elements(2)
    return False


def _count_inline_step(state, silent: bool) -> bool:
    """Runs first at every position where an inline token may start: about one token each."""
    budget = state.env.get("budget")
    if budget is not None:
        budget.add_elements()
    return False


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split a leading `---` block of simple `key: value` lines off a Markdown text (no YAML library needed)."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    meta: dict[str, str] = {}
    for line in match.group(1).splitlines():
        pair = _FRONT_MATTER_LINE.match(line)
        if pair:
            meta[pair.group(1).lower()] = pair.group(2).strip().strip("\"'")
    if not meta:  # a leading thematic break followed by prose, not front matter
        return {}, text
    return meta, text[match.end():]


def _markdown_blocks(nodes, blocks: list[Block]) -> None:
    for node in nodes:
        kind = node.type
        if kind == "heading":
            blocks.append(Block("heading", _collapse(_markdown_inline(node)), level=int(node.tag[1])))
        elif kind == "paragraph":
            blocks.append(Block("paragraph", _collapse_lines(_markdown_inline(node))))
        elif kind in ("bullet_list", "ordered_list"):
            lines: list[str] = []
            _markdown_list(node, 0, lines)
            blocks.append(Block("list", "\n".join(lines)))
        elif kind in ("fence", "code_block"):
            language = node.info.split()[0] if kind == "fence" and node.info.strip() else ""
            blocks.append(Block("code", node.content.rstrip("\n"), info=language))
        elif kind == "table":
            rows = [[_collapse(_markdown_inline(cell)) for cell in row.children]
                    for section in node.children for row in section.children]
            blocks.extend(_table_blocks(rows))
        elif kind == "html_block":
            blocks.extend(_html_fragment_blocks(node.content))
        elif kind == "blockquote":
            _markdown_blocks(node.children, blocks)
        # hr and anything unknown carry no text


def _markdown_inline(node) -> str:
    """Readable text of a node's inline content: link text kept, images dropped, `code` kept with backticks."""
    parts: list[str] = []
    for child in node.children:
        kind = child.type
        if kind == "text":
            parts.append(child.content)
        elif kind == "code_inline":
            parts.append(f"`{child.content}`")
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "html_inline":
            parts.append("\n" if child.content[:3].lower() == "<br" else "")  # other inline tags carry no text
        elif kind == "image":
            continue
        else:  # inline wrapper, link, em, strong, s: keep the text inside
            parts.append(_markdown_inline(child))
    return "".join(parts)


def _markdown_list(node, depth: int, lines: list[str]) -> None:
    ordered = node.type == "ordered_list"
    number = int(node.attrs.get("start", 1) or 1) if ordered else 0
    for item in node.children:
        texts, nested = [], []
        for child in item.children:
            if child.type in ("bullet_list", "ordered_list"):
                nested.append(child)
            elif child.type in ("fence", "code_block"):
                texts.append(_collapse(child.content))
            else:
                texts.append(_collapse(_markdown_inline(child) if child.type == "paragraph" else _node_text(child)))
        text = " ".join(t for t in texts if t)
        if text:
            lines.append(_list_line(depth, f"{number}." if ordered else "-", text))
        number += 1
        for child in nested:
            _markdown_list(child, depth + 1 if text else depth, lines)


def _node_text(node) -> str:
    if node.type == "inline":
        return _markdown_inline(node)
    return " ".join(_node_text(child) for child in node.children) or node.content
