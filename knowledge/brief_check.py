"""Compare the knowledge base with the external knowledge brief (../shared/knowledge-brief.md).

One job: parse the brief's law quotations and hotline table, and report every law text,
article number, hotline number or hotline status the brief does not back. The brief is the
only source of facts, so ``python -m bot kb check`` runs this whenever the brief is present.
"""

from __future__ import annotations

import re

from knowledge.schema import KnowledgeBase, Status

__all__ = ["against_brief", "brief_quotes"]

# A law quoted only in part: the brief names a further paragraph next to the quotation.
_OTHER_PARA_RE = re.compile(r"第([一二三四五六七八九十]+)款|本条共|只引了")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


_ART = r"第[零一二三四五六七八九十百千〇两\d]+条(?:之[一二三四五六七八九十]+)?"
_PARA = r"第[零一二三四五六七八九十百千〇两\d]+款"
_ITEM = r"第[零一二三四五六七八九十百千〇两\d]+项"
# "> 第二十条 国务院……": a quote that opens with its own article number.
_LEAD_RE = re.compile(rf"^({_ART})[ \u3000]+")
# "（以上为第二十七条第二款）" right after a quote.
_NOTE_RE = re.compile(rf"^（以上为({_ART})({_PARA})?({_ITEM})?")
# "**第一千零三十四条（人格权编……）：**" right before a quote.
_BOLD_RE = re.compile(rf"^\*\*({_ART})({_PARA})?({_ITEM})?")
# "（一）……": an enumerated item continues the paragraph above it.
_ITEM_LINE_RE = re.compile(r"^（[一二三四五六七八九十]+）")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_STATUS_MARKS = {"✅": Status.verified, "🟡": Status.partial, "❌": Status.unverified}
_CERTAINTY = {Status.unverified: 0, Status.partial: 1, Status.verified: 2}


def _cn_int(numeral: str) -> int:
    """Small Chinese numerals as used for paragraphs: 一 … 九十九 (or plain digits)."""
    if numeral.isdigit():
        return int(numeral)
    if "十" not in numeral:
        return _CN_DIGITS[numeral]
    tens, _, units = numeral.partition("十")
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[units] if units else 0)


def _para_label(n: int) -> str:
    digits = "零一二三四五六七八九"
    if n < 10:
        return f"第{digits[n]}款"
    tens, units = divmod(n, 10)
    return f"第{'' if tens == 1 else digits[tens]}十{digits[units] if units else ''}款"


def brief_quotes(brief_text: str) -> list[tuple[str, str]]:
    """(citation, squashed text) for every quotation the brief attaches an article number to.

    A run of ``>`` lines is a quotation; a line opening with an article number starts a new
    one. Its article number comes from that opening, from a "（以上为第X条第Y款…）" note on
    the next non-blank line, or from a "**第X条…**" heading on the previous non-blank line;
    sources that disagree make the quotation unattributable. Each quotation yields one
    citation per paragraph (第X条第N款) and, when it starts at the first paragraph, one for
    the whole (第X条). Enumerated items （一）… belong to the paragraph that introduces them.
    """
    lines = brief_text.splitlines()
    runs: list[tuple[int, int]] = []  # [start, end) line indexes of consecutive '>' lines
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith(">"):
            j = i
            while j < len(lines) and lines[j].lstrip().startswith(">"):
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1

    def neighbour(index: int, step: int) -> str:
        while 0 <= index < len(lines) and not lines[index].strip():
            index += step
        return lines[index].strip() if 0 <= index < len(lines) else ""

    out: list[tuple[str, str]] = []
    for start, end in runs:
        body = [ln.lstrip()[1:].strip() for ln in lines[start:end]]
        blocks: list[list[str]] = []
        for ln in body:
            if not ln:
                continue
            if _LEAD_RE.match(ln) or not blocks:
                blocks.append([ln])
            else:
                blocks[-1].append(ln)
        after, before = neighbour(end, 1), neighbour(start - 1, -1)
        note = _NOTE_RE.match(after)
        bold = _BOLD_RE.match(before)
        # Remarks that may say the quotation is only part of its article: the line after it,
        # and a lead-in line before it ("下面只引了第一款……").
        after_remark = "" if after.startswith(">") else _plain(after)
        before_remark = "" if before.startswith(">") or not re.search("下面|只引", before) else _plain(before)
        for k, block in enumerate(blocks):
            # (article, first paragraph number, item) claimed by each source for this block.
            claims: list[tuple[str, int, str]] = []
            lead = _LEAD_RE.match(block[0])
            if lead:
                claims.append((lead.group(1), 1, ""))
                block = [block[0][lead.end():], *block[1:]]
            if note and k == len(blocks) - 1:
                para = _cn_int(note.group(2)[1:-1]) if note.group(2) else 1
                claims.append((note.group(1), para, note.group(3) or ""))
            if bold and k == 0:
                para = _cn_int(bold.group(2)[1:-1]) if bold.group(2) else 1
                claims.append((bold.group(1), para, bold.group(3) or ""))
            if not claims:
                continue
            if len(set(claims)) > 1:  # the brief contradicts itself: attach nothing
                continue
            article, first, item = claims[0]
            paragraphs: list[str] = []
            for ln in block:
                if paragraphs and _ITEM_LINE_RE.match(ln):
                    paragraphs[-1] += ln
                else:
                    paragraphs.append(ln)
            paragraphs = [_squash(p) for p in paragraphs]
            if item:  # one enumerated item of one paragraph
                if len(paragraphs) == 1:
                    out.append((f"{article}{_para_label(first)}{item}", paragraphs[0]))
                continue
            for number, text in enumerate(paragraphs, start=first):
                out.append((f"{article}{_para_label(number)}", text))
            remarks = ([before_remark] if k == 0 else []) + ([after_remark] if k == len(blocks) - 1 else [])
            last = first + len(paragraphs) - 1
            if first == 1 and not any(_says_partial(r, article, last) for r in remarks):
                out.append((article, "".join(paragraphs)))
    return out


def _says_partial(remark: str, article: str, last_paragraph: int) -> bool:
    """Does a remark next to a quotation of ``article`` say the article has more paragraphs?

    A remark about another article ("（第四条第二款：……）" before 第十条) does not count; one
    that names no article ("（第二款为单位犯罪……）") is about the quotation it stands by.
    """
    articles = re.findall(_ART, remark)
    if articles and article not in articles:
        return False
    if "本条共" in remark or "只引" in remark:
        return True
    return any(_cn_int(n) > last_paragraph for n in _OTHER_PARA_RE.findall(remark) if n)


def _hotline_rows(brief_text: str) -> list[tuple[str, str]]:
    """(number cell, status cell) of every row of the brief's hotline table(s)."""
    rows: list[tuple[str, str]] = []
    number_col = status_col = -1
    for line in brief_text.splitlines():
        s = line.strip()
        if not s.startswith("|"):
            number_col = status_col = -1
            continue
        cells = [c.strip() for c in s.strip("|").split("|")]
        if number_col < 0:  # header row of a new table
            number_col = next((n for n, c in enumerate(cells) if "号码" in c), -2)
            status_col = next((n for n, c in enumerate(cells) if "状态" in c), -2)
            if number_col < 0 or status_col < 0:
                number_col = status_col = -2  # not a hotline table; skip its rows
            continue
        if number_col == -2 or set(s) <= set("|-: "):
            continue
        if max(number_col, status_col) < len(cells):
            rows.append((cells[number_col], cells[status_col]))
    return rows


def _plain(text: str) -> str:
    """Markdown emphasis and code marks removed, whitespace squashed."""
    return _squash(text.replace("**", "").replace("`", ""))


def _brief_status(cell: str) -> Status:
    """The least certain ✅/🟡/❌ mark in a status cell; no mark counts as ❌."""
    found = [status for mark, status in _STATUS_MARKS.items() if mark in cell]
    return min(found, key=_CERTAINTY.__getitem__) if found else Status.unverified


def against_brief(kb: KnowledgeBase, brief_text: str) -> list[str]:
    """Every law quotation, article number, hotline number and hotline status must match the brief.

    A law's text must be a whole article or paragraph the brief quotes verbatim, under the
    same article number (and paragraph, when the law names one). A hotline's number must be
    a standalone token of the brief with its own row in the brief's hotline table, and its
    status must not be more certain than that row's ✅/🟡/❌.
    """
    out: list[str] = []
    quotes = brief_quotes(brief_text)
    everything = _squash(re.sub(r"(?m)^\s*>", "", brief_text))
    for law in kb.laws.values():
        if law.effective not in brief_text:
            out.append(f"laws.{law.id}: effective date {law.effective} is not in the knowledge brief")
        body = _squash(law.text)
        cite = f"{law.article}{law.paragraph or ''}"
        if (cite, body) in quotes:
            continue
        if body not in everything:
            out.append(f"laws.{law.id}: text is not verbatim in the knowledge brief")
            continue
        exact = sorted({c for c, q in quotes if q == body})
        if exact:
            out.append(f"laws.{law.id}: the knowledge brief quotes this text as {'、'.join(exact)}, not {cite}")
            continue
        near = sorted({re.sub(rf"{_PARA}.*$", "", c) for c, q in quotes if body in q})
        where = f"inside {'、'.join(near)}" if near else "without an article number"
        out.append(f"laws.{law.id}: the knowledge brief quotes this text only {where}, "
                   f"not as a whole {cite}")

    rows = _hotline_rows(brief_text)
    plain_brief = _plain(brief_text)
    for line in kb.hotlines.values():
        number = line.number.strip()
        key = _plain(number)
        if re.fullmatch(r"[\d\-\s]+", number):
            token = re.compile(rf"(?<!\d)(?<!\d-){re.escape(key)}(?!\d)(?!-\d)")
            present = token.search(brief_text.replace("**", "")) is not None
        else:
            present = key in plain_brief
        if not present:
            out.append(f"hotlines.{line.id}: number {number} not in the knowledge brief")
            continue
        # Rows whose number cell is exactly this number, optionally with a qualifier: 12381（短信）.
        matches: list[tuple[str, str]] = []
        for cell, status_cell in rows:
            rest = _plain(cell)
            if rest == key or (rest.startswith(key) and re.fullmatch(r"（[^（）]+）", rest[len(key):])):
                matches.append((rest[len(key):].strip("（）"), status_cell))
        if not matches:
            out.append(f"hotlines.{line.id}: number {number} has no row in the knowledge brief's hotline table")
            continue
        if line.also_written and _plain(line.also_written) not in plain_brief:
            out.append(f"hotlines.{line.id}: also_written {line.also_written} not in the knowledge brief")
        qualified = [m for m in matches if m[0] and m[0] in f"{line.name}{line.owner}"]
        brief_status = min((_brief_status(s) for _, s in qualified or matches),
                           key=_CERTAINTY.__getitem__)
        if _CERTAINTY[line.status] > _CERTAINTY[brief_status]:
            mark = next(m for m, s in _STATUS_MARKS.items() if s is brief_status)
            out.append(f"hotlines.{line.id}: status {line.status.value} is more certain than the "
                       f"knowledge brief's {mark} for {number}")
    return out
