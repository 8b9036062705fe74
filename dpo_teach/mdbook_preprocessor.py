r"""mdBook preprocessor that keeps TeX math intact for MathJax (used by `python -m dpo_teach book`).

Markdown and TeX fight over the same characters: in `$a_1 * b_2$` Markdown sees emphasis, and it
eats the backslash of `\{` and `\\`. So before Markdown runs, this preprocessor finds the math in
every chapter and hides it from Markdown:

    $...$                 ->  \( ... \)     inline
    $$...$$               ->  \[ ... \]     display
    \begin{align}...\end{align} (and other math environments)  ->  left as is, for MathJax

with every ASCII punctuation character (and newline) of the span written as an HTML entity
(`_` -> `&#95;`). Markdown passes entities through untouched and the browser turns them back
into the original TeX, which the offline MathJax bundle then typesets. Code is never touched:
fenced code blocks, inline code spans, and raw <pre>/<code>/<script>/<style> elements are copied
verbatim. `\$` stays a literal dollar sign. A lone `$` (a price, "$5 and $10") is left alone,
using pandoc's rule: an opening `$` is followed by a non-space, a closing `$` follows a non-space
and is not followed by a digit; math spans no blank line and no backtick.

mdBook protocol (0.5): mdBook first runs `CMD supports RENDERER` (exit 0 = yes), then runs `CMD`
with `[context, book]` as JSON on stdin and reads the book back as JSON on stdout. Chapters are
under `book["items"]` (mdBook 0.4 called it `sections`), each `{"Chapter": {"content": ...,
"sub_items": [...]}}`.

Run as `python -m dpo_teach.mdbook_preprocessor` (book.toml's `[preprocessor.dpo-teach]`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator

# Environments MathJax typesets on its own (tex.processEnvironments), outside any $...$.
MATH_ENVIRONMENTS = frozenset(
    name + star
    for name in ("equation", "align", "gather", "multline", "eqnarray", "alignat", "flalign")
    for star in ("", "*")
)

_FENCE = re.compile(r"^(?:[ \t]*>)*[ \t]*(`{3,}|~{3,})(.*)$")  # also inside blockquotes / lists
_TOKEN = re.compile(
    r"\\\$"  # escaped dollar: literal
    r"|`+"  # inline code span opener
    r"|\$\$|\$"  # display / inline math opener
    r"|\\begin\{([A-Za-z]+\*?)\}"  # math environment
    r"|<(pre|code|script|style)\b",  # raw HTML whose content is code
    re.IGNORECASE,
)
_INLINE_CLOSE = re.compile(r"(?<![\s\\])\$(?!\d)")  # pandoc's rule for a closing $
_DISPLAY_CLOSE = re.compile(r"(?<!\\)\$\$")
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~\n]")  # every ASCII punctuation char, and newline


def split_fences(text: str) -> Iterator[tuple[bool, str]]:
    """Split Markdown into (is_code, chunk) pieces; fenced code blocks are the code pieces."""
    prose: list[str] = []
    code: list[str] = []
    fence = ""
    for line in text.splitlines(keepends=True):
        m = _FENCE.match(line.rstrip("\r\n"))
        if not fence:
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                if prose:
                    yield False, "".join(prose)
                prose, code, fence = [], [line], m.group(1)
            else:
                prose.append(line)
        else:
            code.append(line)
            closes = m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)
            if closes and not m.group(2).strip():
                yield True, "".join(code)
                code, fence = [], ""
    if code:  # unclosed fence: CommonMark runs it to the end of the document
        yield True, "".join(code)
    if prose:
        yield False, "".join(prose)


def escape_tex(tex: str) -> str:
    r"""Write every ASCII punctuation character and newline of `tex` as an HTML entity."""
    return _PUNCTUATION.sub(lambda m: f"&#{ord(m.group())};", tex)


def _protect_prose(text: str) -> str:
    out: list[str] = []
    i = 0
    while (m := _TOKEN.search(text, i)) is not None:
        out.append(text[i : m.start()])
        token, end = m.group(), m.end()
        close = None
        if token.startswith("`"):  # code span: up to the next backtick run of the same length
            close = re.compile(rf"(?<!`){token}(?!`)").search(text, end)
            if close:
                out.append(text[m.start() : close.end()])
        elif token == "$$":
            close = _DISPLAY_CLOSE.search(text, end)
            if close and "`" in text[end : close.start()]:
                close = None  # a $$ in prose and one in a code span do not pair up
            if close:
                out.append(escape_tex(r"\[" + text[end : close.start()] + r"\]"))
        elif token == "$":
            if end < len(text) and not text[end].isspace():
                close = _INLINE_CLOSE.search(text, end)
                if close and re.search(r"\n[ \t]*\n|`", text[end : close.start()]):
                    close = None  # math never spans paragraphs, nor reaches into a code span
            if close:
                out.append(escape_tex(r"\(" + text[end : close.start()] + r"\)"))
        elif m.group(1):  # \begin{env}: math only if env is a math environment
            if m.group(1) in MATH_ENVIRONMENTS:
                close = re.compile(rf"\\end\{{{re.escape(m.group(1))}\}}").search(text, end)
                if close:
                    out.append(escape_tex(text[m.start() : close.end()]))
        elif m.group(2):  # <pre>, <code>, ...: copy through the closing tag
            close = re.compile(rf"</{m.group(2)}\s*>", re.IGNORECASE).search(text, end)
            if close:
                out.append(text[m.start() : close.end()])
        if close is None:  # not math after all: keep the opener as text and go on
            out.append(token)
            i = end
        else:
            i = close.end()
    out.append(text[i:])
    return "".join(out)


def protect_math(markdown: str) -> str:
    r"""Rewrite the math in `markdown` so that Markdown leaves it alone (see module docstring).

    >>> protect_math("$a_1$")
    '&#92;&#40;a&#95;1&#92;&#41;'
    """
    return "".join(chunk if is_code else _protect_prose(chunk) for is_code, chunk in split_fences(markdown))


def _walk(items: list) -> None:
    for item in items:
        if isinstance(item, dict) and "Chapter" in item:
            chapter = item["Chapter"]
            chapter["content"] = protect_math(chapter.get("content", ""))
            _walk(chapter.get("sub_items", []))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the preprocessor; returns the exit status mdBook expects."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["supports"]:
        return 0 if argv[1:] == ["html"] else 1  # MathJax needs a browser: HTML output only
    if argv:
        print(f"usage: {sys.argv[0]} [supports RENDERER]; got {argv!r}", file=sys.stderr)
        return 2
    _context, book = json.load(sys.stdin)
    _walk(book.get("items", book.get("sections", [])))
    json.dump(book, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
