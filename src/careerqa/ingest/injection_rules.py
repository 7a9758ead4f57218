"""The cues of text addressed to the assistant or a model, and how a block of text is scored by them.

``normalise`` folds the text the cues read: Unicode NFKC, zero-width characters dropped, curly quotes
straightened and Cyrillic/Greek letters that look like Latin ones mapped to them ("Nоte tо the
аssistаnt" with Cyrillic о and а reads "Note to the assistant"), keeping for every folded character its
index in the original. ``cues`` finds every cue in a block (the cue's rule, weight and position);
``decoded_runs`` decodes base64-looking runs (24 characters or more, possibly broken over lines) whose
bytes are readable text, so the cues can read what they say. A block is instructions when the weights of
its rules add up to ``FIRE`` (each rule counted once, at its highest weight): a strong cue ("ignore all
previous instructions", "note to the assistant:", "you are now HRBot", a chat-template control token,
"### System:") fires alone; a weak one ("tell the user that", "before answering", "System:" at a line
start, ``curl … | sh``, a word mixing Latin and Cyrillic letters) needs another beside it, so a log line
"system: started", "act as a team lead" or an install step in a tutorial stays.

Not handled here: what a block is, which part of it is left out, and reporting
(``ingest/injection.py``).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass

FIRE = 2  # the score at which a block is instructions

# Look-alike letters (Cyrillic, Greek) -> Latin; only for reading the cues, never for the indexed text.
CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁһӏԛԝАВЕКМНОРСТХІЈЅαονρειτυχκΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdhlqwABEKMHOPCTXIJSaovpeituxkABEZHIKMNOPTYX",
)
_CONFUSABLE_CHARS = frozenset("аеорсухіјѕԁһӏԛԝАВЕКМНОРСТХІЈЅαονρειτυχκΑΒΕΖΗΙΚΜΝΟΡΤΥΧ")
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")
_QUOTES = str.maketrans("‘’“”", "''\"\"")


@dataclass(frozen=True)
class Cue:
    rule: str
    weight: int
    start: int  # in the block's original text
    end: int


def normalise(text: str) -> tuple[str, list[int]]:
    """``text`` folded for matching, and the index in ``text`` of each folded character."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch in _ZERO_WIDTH:
            continue
        folded = unicodedata.normalize("NFKC", ch) if ord(ch) > 127 else ch
        for f in folded.translate(CONFUSABLES).translate(_QUOTES):
            out.append(f)
            where.append(i)
    return "".join(out), where


_ADDRESSEE = (
    r"(?:ai\s+assistant|assistant|chat\s?bot|bot|language\s+model|llm|gpt|chatgpt|ai|model|careerqa"
    r"|ai\s+system|agent)s?"
)
_VERB_ACT = r"(?:must|should|will|shall|now|is\s+(?:now|required|to)|has\s+to|needs?\s+to|can|recommends?)"
_SECRET = (
    r"(?:bank\s+(?:details|account(?:\s+number)?|login)|(?:online\s+banking\s+)?login|passwords?|passcodes?"
    r"|pin(?:\s+code)?|social\s+security\s+numbers?|ssn|passport(?:\s+numbers?)?|national\s+id"
    r"|credit\s+card(?:\s+(?:number|details))?|card\s+number|cvv|(?:secret\s+)?access\s+keys?|api\s+(?:keys?|tokens?)"
    r"|(?:\w+\s+)?credentials|private\s+keys?|seed\s+phrase|one-time\s+code|payslips?|home\s+address"
    r"|date\s+of\s+birth|employee\s+number)"
)
_TRANSFER = (
    r"(?:send|e-?mail|forward|give|giving|share|provide|submit|reply\s+with|text|wire|transfer|post|enter)"
)
_NEGATION = re.compile(
    r"\b(?:never|not|don't|do\s+not|no\s+one|avoid|refuse|scam|fraud|red\s+flag|beware|phishing)\b", re.I
)
_PAYLOAD = re.compile(
    r"https?://\S+|\bwww\.\S+|[\w.+-]+@[\w-]+\.[\w.-]+|\+?\d[\d\s().-]{7,}\d|[$€£]\s?\d|\b\d[\d,.]*\s?(?:usd|eur|gbp)\b",
    re.I,
)

# (rule, weight, pattern) read on the normalised text, case-insensitively.
_RULES: list[tuple[str, int, re.Pattern[str]]] = [
    (
        "override",
        2,
        re.compile(
            r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all|any|every)\s+(?:of\s+)?(?:the\s+|your\s+|my\s+)?"
            r"(?:previous|prior|above|earlier|preceding|former|other|existing|system)?\s*"
            r"(?:instructions?|prompts?|rules|directions|guidelines|commands|messages|context|constraints)\b"
            r"|\b(?:ignore|disregard|forget|override|bypass)\s+(?:your\s+|my\s+)?(?:previous|prior|earlier|preceding"
            r"|system)\s+(?:instructions?|prompts?|rules|directions|guidelines|commands|messages|constraints)\b"
            r"|\b(?:ignore|disregard|forget)\s+(?:everything|all)\s+(?:above|before|said\s+(?:above|before))",
            re.I,
        ),
    ),
    (
        "override",
        1,
        re.compile(
            r"\b(?:ignore|disregard|forget)\s+the\s+(?:previous|prior|above|earlier|preceding)\s+"
            r"(?:instructions?|prompts?|rules|directions|guidelines|commands|messages)\b"
            r"|\b(?:new|updated|real|actual)\s+(?:instructions?|system\s+prompt)\s*:",
            re.I,
        ),
    ),
    (
        "addressed_to_model",
        2,
        re.compile(
            r"\b(?:note|notice|message|memo|instructions?|reminder|warning|attention|directive|request)\s+"
            rf"(?:to|for)\s+(?:the\s+|any\s+|all\s+|every\s+)?{_ADDRESSEE}\s*(?:[:,.!;—–]|-\s|$|reading|processing)"
            rf"|\b(?:dear|hey|hello|attention)\s+(?:the\s+)?{_ADDRESSEE}\s*[:,!]",
            re.I,
        ),
    ),
    (
        "as_the_assistant",
        2,
        re.compile(
            r"\bas\s+(?:the|an|a|this)\s+(?:ai\s+assistant|assistant|chat\s?bot|language\s+model|llm|ai|bot)\s*,?\s+"
            r"you\s+(?:must|should|will|shall|are\s+(?:required|to)|have\s+to|need\s+to)\b",
            re.I,
        ),
    ),
    (
        "assistant_as_actor",
        1,
        re.compile(
            r"\b(?:the|this|our|any)\s+(?:careerqa\s+)?(?:ai\s+assistant|assistant|chat\s?bot|language\s+model"
            rf"|llm|bot)\s+{_VERB_ACT}\b",
            re.I,
        ),
    ),
    (
        "role_play",
        1,
        re.compile(r"\byou\s+are\s+now\s+(?:a|an|the)\s+\w+|\bpretend\s+(?:to\s+be|you\s+are)\b", re.I),
    ),
    ("role_play", 1, re.compile(r"\bfrom\s+now\s+on,?\s+you\s+(?:are|will|must|should)\b", re.I)),
    (
        "role_play",
        2,
        re.compile(
            r"\byou\s+are\s+(?:now|no\s+longer|henceforth)\s+(?:a\s+|an\s+|the\s+)?(?:[a-z]+(?:bot|gpt)\b"
            r"|(?:\w+\s+)?(?:ai\s+assistant|chat\s?bot|assistant|language\s+model|llm)\b|in\s+\w+\s+mode\b|dan\b)"
            r"|\b(?:act|behave|respond|answer|reply|pose|role-?play)\s+as\s+(?:if\s+you\s+(?:were|are)\s+)?"
            r"(?:a\s+|an\s+|the\s+)?(?:\w+\s+)?(?:[a-z]+bot\b|chat\s?bot|ai\s+assistant|unrestricted|jailbroken)",
            re.I,
        ),
    ),
    (
        "output_fixed_text",
        2,
        re.compile(
            r"\b(?:answer|reply|respond|output|say|write|print|return)\s+(?:only|just|exclusively|nothing\s+but)\s+"
            r"(?:with|the\s+words|the\s+following|this|that|:)"
            r"|\b(?:the\s+)?(?:only|sole)\s+(?:answer|reply|response|output)\s+you\s+(?:may|can|should|must|are\s+"
            r"allowed\s+to)\s+(?:give|say|write|output|provide)",
            re.I,
        ),
    ),
    (
        "output_fixed_text",
        1,
        re.compile(
            r"\balways\s+(?:say|answer|reply|respond|recommend|tell)\b|(?:^|[.:!]\s+)(?:say|reply|respond|output)\s*:"
            r"|\b(?:do\s+not|don't|never)\s+answer\s+the\s+(?:user'?s?\s+)?question\b",
            re.I,
        ),
    ),
    (
        "tell_the_user",
        1,
        re.compile(
            r"\b(?:tell|ask|instruct|inform|remind|urge|direct|advise)\s+(?:the\s+|every\s+|each\s+|all\s+|any\s+)?"
            r"(?:users?|readers?)\s+(?:that|to)\b",
            re.I,
        ),
    ),
    (
        "before_answering",
        1,
        re.compile(
            r"\bbefore\s+(?:answering|responding|replying|continuing|proceeding|you\s+(?:answer|respond))\b",
            re.I,
        ),
    ),
    (
        "decode_and_follow",
        2,
        re.compile(
            r"\b(?:decode|decrypt|unscramble|base64[- ]decode)\s+"
            r"(?:this|the\s+following|it|the\s+text|below)\b"
            r"[^.\n]{0,20}?"
            r"\b(?:follow|execute|obey|do|run|apply|carry\s+out)\b",
            re.I,
        ),
    ),
    ("control_token", 2, re.compile(r"<\|[^|<>\n]{1,40}\|>|<</?SYS>>|\[/?INST\]", re.I)),
    (
        "role_header",
        2,
        re.compile(
            r"(?m)^[ \t>]*#{1,6}[ \t]*\**(?i:system|assistant|user|human|developer)\**[ \t]*:"
            r"|\[(?:SYSTEM|SYS|ASSISTANT|USER|ADMIN|DEVELOPER)\]"
        ),
    ),
    ("role_header", 1, re.compile(r"(?im)^[ \t>]*\**(?:system|assistant|user|human|developer)\**[ \t]*:")),
    (
        "remote_script",
        1,
        re.compile(r"\b(?:curl|wget)\s[^\n|`]*\|\s*(?:sudo\s+)?(?:ba|z)?sh\b|\biwr\s[^\n|]*\|\s*iex\b", re.I),
    ),
]
_SECRET_REQUEST = re.compile(rf"\b{_TRANSFER}\b(?:\s+\S+){{0,8}}?\s+{_SECRET}\b", re.I)
_MIXED_WORD = re.compile(r"\w+")
_BASE64_RUN = re.compile(r"(?<![\w+/=])(?:[A-Za-z0-9+/]{4,}\n?){5,}[A-Za-z0-9+/]*={0,2}(?![\w+/=])")


def cues(block: str, *, code: bool = False) -> list[Cue]:
    """Every cue in ``block`` (its original text). In a code block (``code``) only the overrides count:
    a code example may show a chat message list or template tokens."""
    norm, where = normalise(block)

    def at(m: re.Match[str]) -> tuple[int, int]:
        return where[m.start()], where[max(m.end() - 1, m.start())] + 1

    found: list[Cue] = []
    for rule, weight, rx in _RULES:
        if code and rule != "override":
            continue
        for m in rx.finditer(norm):
            inline_code = rule == "control_token" and _in_backticks(norm, m.start())
            found.append(Cue(rule, 1 if inline_code else weight, *at(m)))
    if not code:
        found.extend(_secret_requests(norm, where))
        found.extend(
            Cue("homoglyph", 1, m.start(), m.end()) for m in _MIXED_WORD.finditer(block) if _mixed(m[0])
        )
    return found


def _secret_requests(norm: str, where: list[int]) -> list[Cue]:
    """A request to send a secret (a password, bank details, an ID number): strong with a contact, URL or
    sum in its sentence, weak without; never when the sentence warns against it."""
    found = []
    for m in _SECRET_REQUEST.finditer(norm):
        a = max(norm.rfind(".", 0, m.start()), norm.rfind("\n\n", 0, m.start()), 0)
        b = norm.find(". ", m.end())
        sentence = norm[a : b if b >= 0 else len(norm)]
        if _NEGATION.search(sentence):
            continue
        weight = 2 if _PAYLOAD.search(sentence) else 1
        found.append(Cue("secret_request", weight, where[m.start()], where[m.end() - 1] + 1))
    return found


def _in_backticks(text: str, pos: int) -> bool:
    line_start = text.rfind("\n", 0, pos) + 1
    return text.count("`", line_start, pos) % 2 == 1


def _mixed(word: str) -> bool:
    return any(c in _CONFUSABLE_CHARS for c in word) and any("a" <= c.lower() <= "z" for c in word)


def score(found: list[Cue]) -> int:
    """The block's score: each rule counted once, at its highest weight."""
    best: dict[str, int] = {}
    for cue in found:
        best[cue.rule] = max(best.get(cue.rule, 0), cue.weight)
    return sum(best.values())


def rules_of(found: list[Cue]) -> list[str]:
    """The rules of ``found``, strongest first, each once."""
    best: dict[str, int] = {}
    for cue in found:
        best[cue.rule] = max(best.get(cue.rule, 0), cue.weight)
    return sorted(best, key=lambda r: (-best[r], r))


def decoded_runs(block: str) -> list[tuple[int, int, str]]:
    """``(start, end, decoded text)`` of each base64-looking run of ``block`` that decodes to text."""
    out = []
    for m in _BASE64_RUN.finditer(block):
        run = m.group(0).replace("\n", "")
        if len(run) < 24 or not (re.search(r"[a-z]", run) and re.search(r"[A-Z0-9]", run)):
            continue
        try:
            data = base64.b64decode(run + "=" * (-len(run) % 4), validate=True)
            text = data.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        printable = sum(c.isprintable() or c in "\n\t" for c in text)
        if text and printable / len(text) > 0.95 and " " in text:
            out.append((m.start(), m.end(), text))
    return out


def payload_at(text: str) -> bool:
    """Whether ``text`` holds a contact, URL, phone number or sum (what an injection tends to deliver)."""
    return bool(_PAYLOAD.search(text))
