"""Answers do not relay what nobody asked for (issue 27): ``relay`` finds, in one answer sentence, a
request for the reader's personal data, money or credentials, or a place it sends the reader to (an
email address, a phone number, a link, an install or a script to run), that the question does not
ask about; ``screen`` drops such sentences from an answer and counts them (``relay_counts``), whatever
passage they cite; ``RelayGuard`` holds such a sentence back while an answer streams, so it is never
shown.

A request tells the reader to hand something over: "Send your CV and bank details to …", "reply with
your VPN password", "pay the 89 USD fee", "a $120 deposit is required", "… and giving your social
security number". The same things named as a topic are not requests: "negotiate your salary", "the
exam costs 150 USD", "never share your password", "a request to pay for equipment is a red flag".
A question asks about a kind when it names it (``_ASKS``: "what is the link to …", "how do I install
X", "which email …", "how much is the fee"): then that kind is kept, the others are still dropped.

Not handled here: where the checks run (``answer/checking.py`` checks a draft, ``answer/run.py``
the answer made from it, ``answer/answerer.py`` a FAQ answer), instructions written in the
documents themselves (found at ingestion), the prompt that fences passages as data
(``generate/prompts.py``).
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from careerqa.text.citations import MARKER
from careerqa.text.sentences import split_sentences

KINDS = ("email", "phone", "link", "install", "money", "personal", "credentials")
_WHAT = {
    "email": "sends the reader to an email address",
    "phone": "sends the reader to a phone number",
    "link": "sends the reader to a link",
    "install": "tells the reader to install or run something",
    "money": "asks the reader for money",
    "personal": "asks the reader for personal data",
    "credentials": "asks the reader for credentials",
}
WINDOW = 80  # characters after a request verb where the thing requested is looked for


@dataclass(frozen=True)
class Relay:
    """One dropped sentence and the kind of relay found in it (one of ``KINDS``)."""

    kind: str
    sentence: str

    @property
    def reason(self) -> str:
        """Why the sentence was dropped, without repeating what it relays."""
        return f"relay: an answer sentence {_WHAT[self.kind]} that the question did not ask about"


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# --- what a sentence may send the reader to ------------------------------------------------------------
_TLD = (
    r"(?:com|org|net|io|ai|dev|co|app|edu|gov|info|biz|me|ly|gg|xyz|site|online|link|page|example|"
    r"test|invalid|local|zip|uk|us|de|fr|es|it|nl|eu|ca|au|in|cn|ru|jp|br|ch|se|no|pl|fyi|tech|cloud|"
    r"top|live|pro|jobs|careers|work|shop|store|club|tv|ws|cc|to|gl|so|sh|vip|academy|school)"
)
_HOST = rf"(?:[^\W_][\w-]*\.)+{_TLD}\b"
_EMAIL = _rx(r"[\w.+-]+ ?@ ?[^\W\d_][\w-]*(?: ?\. ?[\w-]+)+")
_LINK = _rx(
    rf"\b(?:https?|ftp)://\S+|\bwww\d?\.[\w-]+\.\S+|\b{_HOST}/\S*"
    rf"|\b(?:[^\W_][\w-]*\.){{2,}}{_TLD}\b"  # three labels: "cert-vault.evil.example"
    rf"|\b(?:visit|go to|head (?:over )?to|navigate to|browse to|sign up (?:at|on)|register (?:at|on)"
    rf"|log ?in (?:at|to|on)|sold at|claim \w+(?: \w+){{0,3}} at) (?:the )?(?:site |website )?{_HOST}"
)
_PHONE = _rx(
    r"(?<![\w+])\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d[\d .-]{5,14}\d\b"
    r"|\(\d{3}\) ?\d{3}[ .-]\d{4}\b|\b\d{3}[.-]\d{3}[.-]\d{4}\b"
    r"|\b(?:call|phone|ring|whatsapp|hotline|helpline|telephone|tel|dial)\b[^.;]{0,40}?\b\d{3}[ .-]?\d{4}\b"
)
_INSTALL = _rx(
    r"\b(?:pip3?|pipx|python3? -m pip|uv pip|npm|npx|yarn|pnpm|gem|cargo|apt(?:-get)?|brew|conda|mamba"
    r"|choco|winget|snap) (?:install|add|i)\b"
    r"|\b(?:curl|wget|iwr|irm|invoke-webrequest|invoke-restmethod)\b[^|\n]{0,300}\| ?(?:sudo )?"
    r"(?:(?:ba|z|k|da)?sh|python3?|iex|powershell|perl|ruby)\b"
    r"|\b(?:ba|z)?sh <\( ?(?:curl|wget)\b|\binvoke-expression\b"
    r"|\b(?:run|execute|launch) (?:this|these|that|the) "
    r"(?:following |attached |setup |install(?:er|ation)? )?"
    r"(?:scripts?|installers?|binary|binaries|executables?|programs?)\b"
    r"|\b(?:run|execute|paste) (?:this|these|the following) commands?\b"
    r"|\bdownload (?:it |them |this |the \w+ )?from (?:the )?(?:site |website )?" + _HOST
)

# --- what a sentence may ask the reader for ---------------------------------------------------------
_AMOUNT = r"[$€£¥] ?\d[\d,.]*|\b\d[\d,.]* ?(?:usd|eur|gbp|dollars|euros|pounds|bucks)\b|\b(?:usd|eur|gbp) ?\d"
_MONEY = _rx(
    rf"\b(?:fees?|deposits?|payments?|money|cash|funds|gift cards?|bitcoins?|btc|crypto\w*)\b|{_AMOUNT}"
)
_PERSONAL = _rx(
    r"\bbank(?:ing)? (?:details|account|info\w*|statements?|login|card|number)s?\b|\baccount (?:number|no"
    r"|details)s?\b|\b(?:iban|swift code|sort code|routing number)\b|\b(?:credit|debit) card\b|\bcard "
    r"(?:number|details)s?\b|\b(?:cvv|cvc)\b|\bpin (?:code|number)\b|\bsocial security\b|\bssn\b"
    r"|\bnational (?:id|identity|insurance)\b|\bpassports?\b|\b(?:id|identity|identification) (?:number"
    r"|card|document)s?\b|\bdriv(?:er'?s|ing) licen[cs]e\b|\bdate of birth\b|\bhome address\b"
    r"|\b(?:employee|staff|tax|taxpayer) (?:id|number)\b|\bpay ?slips?\b|\bmaiden name\b"
)
_PIN = re.compile(r"\bPIN\b")  # the upper-case word only: "pin your best repositories" is advice
_CREDENTIALS = _rx(
    r"\bpass(?:word|code|phrase)s?\b|\blog-?in (?:details|credentials|info\w*)\b|\bcredentials?\b"
    r"|\b(?:api|access|secret|private|ssh|auth\w*|bearer|session|refresh|personal access|security"
    r"|recovery|seed|2fa|mfa|one-time|otp|verification) (?:keys?|tokens?|codes?|phrases?)\b"
    r"|\bsecret access keys?\b|\b(?:otp|2fa)\b"
)
_GIVE = (
    r"send|give|provide|share|submit|enter|type|input|paste|fill in|reply with|respond with|answer with"
    r"|forward|e-?mail|text|upload|confirm|verify|disclose|reveal|hand over|tell us|tell me"
)
_PAY = r"pay|transfer|wire|deposit|remit"
_MONEY_VERB = _rx(rf"{_PAY}|send|give|hand over|forward|(?:pay|transferr|wir|deposit|send|giv|forward)ing")
_GERUNDS = (
    r"sending|giving|providing|sharing|submitting|entering|typing|forwarding|uploading|emailing"
    r"|disclosing|confirming|paying|transferring|wiring|depositing"
)
# Where a request verb stands: a clause's start, after "and"/"please", after "you must"/"they should",
# after "make sure to", or as a gerund after "by"/"and" ("… and giving their social security number").
_LEAD = (
    r"(?:^|[,;:(\[—–]\s*|\b(?:and|then|or)\s+to\s+"
    r"|\b(?:and|then|or|so|please|kindly|just|simply|also|first|now|today|immediately)\s+"
    r"|\b(?:you(?:'ll)?|they(?:'ll)?|users?|candidates?|applicants?|everyone|the (?:user|reader|candidate|"
    r"applicant)s?)\s+(?:(?!not\b|never\b)\w+\s+)?(?:must|should|need to|needs to|have to|has to|are "
    r"required to|is required to|will need to|will have to|ought to)\s+(?:also\s+|first\s+|now\s+|"
    r"then\s+|simply\s+|just\s+|immediately\s+)?|\b(?:remember|make sure|be sure|don'?t forget) to\s+)"
)
_REQUEST = _rx(rf"{_LEAD}(?P<verb>{_GIVE}|{_PAY})\b")
_GERUND = _rx(rf"\b(?:by|and|then|after|before|upon|requires?|involves?|depends on)\s+(?P<verb>{_GERUNDS})\b")
_WE_NEED = _rx(r"\b(?:we|i) (?:will )?(?:need|require|ask for|request|must have|collect) (?:your|their)\b")
_PASSIVE = _rx(
    rf"(?:\b(?:your|their|the user'?s) |(?:{_AMOUNT})[^.;:]{{0,30}}?|\b(?:fee|deposit)s?\b)[^.;:]{{0,40}}?"
    r"\b(?:(?:must|should|has to|have to|needs? to|is to|are to) be (?:sent|paid|provided|submitted|"
    r"transferred|wired|entered|shared|forwarded|emailed|uploaded|deposited|confirmed|given|made)|(?:is|are)"
    r" (?:required|due|mandatory|payable))\b"
)
_TOLD_INSTALL = _rx(rf"{_LEAD}(?:install|download|reinstall)\b")
_HOLD_OFF = _rx(r"\b(?:not|never|no|don'?t|doesn'?t|avoid|refuse|without|instead of|rather than|if|unless)\b")
_STOP = re.compile(r"[.!?,](?=\s|$)|[;:]")
_CLAUSE_END = re.compile(r"[.!?](?=\s|$)|[;:]|\b(?:but|because|since|while|although|unless|if)\b", re.I)

# --- what a question names, by kind -----------------------------------------------------------------
# "contact" as a way to reach someone, not "find one contact at each company" (a person you know)
_CONTACT = (
    r"\bcontact (?:details|info\w*|address|number|email|them|him|her|the|a|an|hr|recruiters?|support)\b"
    r"|\b(?:how|who|where) (?:do|can|should|would) i contact\b|\bcontacting\b"
)
_ASKS = {
    "email": _rx(rf"\b(?:e-?mails?|mailing address|reach out)\b|{_CONTACT}"),
    "phone": _rx(
        r"\b(?:phones?|telephone|hotline|helpline|whatsapp|sms)\b|\bcall (?:them|him|her|the|a|an|you|it|me"
        rf"|us|back)\b|\bnumbers? (?:to|for) call\b|{_CONTACT}"
    ),
    "link": _rx(r"\b(?:links?|urls?|websites?|web ?pages?|homepage|domain|web address)\b|(?<![-\w])sites?\b"),
    "install": _rx(
        r"\b(?:install\w*|download\w*|set ?up|setup|pip|npm|conda|brew|package manager|scripts?)\b"
    ),
    "money": _rx(
        r"\b(?:fees?|deposits?|payments?|costs?|price[sd]?|pricing|charges?|tuition|money)\b"
        r"|\bhow much\b|\bpay(?:ing)? (?:a|an|the|for|to)\b|\bpaid\b"
    ),
    "personal": _rx(
        r"\b(?:bank\w*|iban|passports?|ssn|social security|national (?:id|insurance)|identity|id|date of "
        r"birth|home address|personal (?:data|details|information)|pay ?slips?|tax)\b"
    ),
    "credentials": _rx(
        r"\b(?:passwords?|passcodes?|log ?in|login|credentials?|tokens?|api keys?|access keys?|secrets?"
        r"|2fa|otp|ssh keys?)\b"
    ),
}

_BASE64 = re.compile(r"(?<![\w+/])[A-Za-z0-9+/]{16,}(?: ?[A-Za-z0-9+/]{4,})*={0,2}")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060\ufeff]")
_DEFANG = (
    (_rx(r"\s*[\[(]\s*(?:\.|dot)\s*[\])]\s*"), "."),
    (_rx(r"\s*[\[(]\s*at\s*[\])]\s*"), "@"),
    (_rx(r"\bhxxp"), "http"),
)


def normal(text: str) -> str:
    """``text`` as the rules read it: compatibility forms folded (a full-width "＠"), invisible
    characters and citation markers dropped, defanged addresses restored ("evil[.]example",
    "jobs [at] desk"), white space collapsed."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    text = MARKER.sub(" ", text)
    for pattern, plain in _DEFANG:
        text = pattern.sub(plain, text)
    return " ".join(text.split())


_REFERENCE_LINK = re.compile(r"\s*\(\s*(?:https?://|www\.)[^()]{1,200}\)")


def without_reference_links(sentence: str) -> str:
    """``sentence`` without the links it gives in parentheses after a name ("the package foreign
    (https://…) provides …"): documentation cites its sources so, and the sentence's claim stands
    without them. A link given as a place to go ("apply at https://…") stays, and is a relay."""
    return _REFERENCE_LINK.sub("", sentence)


def relay(sentence: str, asked: Sequence[str]) -> Relay | None:
    """The first relay in ``sentence`` of a kind that no text of ``asked`` (the question and its
    standalone rewrite) names; None when the sentence relays nothing unasked."""
    text = normal(sentence)
    text = " ".join([text, *_decoded(text)])
    question = " ".join(normal(q) for q in asked)
    for kind in _kinds(text):
        if not _ASKS[kind].search(question):
            return Relay(kind, sentence)
    return None


def _decoded(text: str) -> list[str]:
    """The readable texts that base64 runs of ``text`` decode to ("SWdub3Jl…", perhaps broken over
    lines): a link or a request written in base64 is still one."""
    out = []
    for match in _BASE64.finditer(text):
        run = match.group(0).replace(" ", "")
        try:
            plain = base64.b64decode(run + "=" * (-len(run) % 4)).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
        if plain and sum(c.isprintable() or c.isspace() for c in plain) >= 0.95 * len(plain):
            out.append(normal(plain))
    return out


def _kinds(text: str) -> list[str]:
    """The kinds of relay ``text`` holds, in ``KINDS`` order."""
    found = {
        "email": bool(_EMAIL.search(text)),
        "phone": bool(_PHONE.search(text)),
        "link": bool(_LINK.search(text)),
        "install": bool(_INSTALL.search(text)) or "install" in _requested(text),
        **{kind: kind in _requested(text) for kind in ("money", "personal", "credentials")},
    }
    return [kind for kind in KINDS if found[kind]]


def _requested(text: str) -> set[str]:
    """The kinds of thing ``text`` asks the reader to hand over ("install" for "install X" or
    "download Y" told to the reader)."""
    kinds: set[str] = set()
    for match in [*_REQUEST.finditer(text), *_GERUND.finditer(text)]:
        if _HOLD_OFF.search(_clause_before(text, match.start("verb"))):
            continue  # "never send …", "if you are asked to pay …": a warning, not a request
        kinds |= _objects(match.group("verb").lower(), _window(text, match.end("verb")))
    for match in _WE_NEED.finditer(text):
        kinds |= _objects("give", _window(text, match.end()))
    for match in _PASSIVE.finditer(text):
        if not _HOLD_OFF.search(_clause_before(text, match.start()) + match.group(0)):
            kinds |= _objects("pay" if _MONEY.search(match.group(0)) else "give", match.group(0))
    kinds |= {"install"} if _told_to_install(text) else set()
    return kinds


def _objects(verb: str, window: str) -> set[str]:
    """What a request with ``verb`` asks for, from the words after it: money only with a verb of
    paying or sending ("include the fee in your budget" asks for nothing)."""
    kinds = set()
    if _MONEY_VERB.fullmatch(verb) and _MONEY.search(window):
        kinds.add("money")
    if _PERSONAL.search(window) or _PIN.search(window):
        kinds.add("personal")
    if _CREDENTIALS.search(window):
        kinds.add("credentials")
    return kinds


def _told_to_install(text: str) -> bool:
    """Is the reader told to install or download something ("Install the X extension", "you must
    download …"), not told about it ("the installation takes an hour")?"""
    return any(not _HOLD_OFF.search(_clause_before(text, m.end())) for m in _TOLD_INSTALL.finditer(text))


def _clause_before(text: str, at: int) -> str:
    """The clause of ``text`` up to ``at`` (from the last stop or comma before it)."""
    stops = [m.end() for m in _STOP.finditer(text, 0, at)]
    return text[stops[-1] if stops else 0 : at]


def _window(text: str, at: int) -> str:
    """The words after a request verb, up to the end of its clause."""
    rest = text[at : at + WINDOW]
    end = _CLAUSE_END.search(rest)
    return rest[: end.start()] if end else rest


# --- dropping and counting -------------------------------------------------------------------------
_COUNTS: Counter[str] = Counter()
_LOCK = threading.Lock()


def record(found: Relay) -> Relay:
    """Count a dropped sentence (``relay_counts``)."""
    with _LOCK:
        _COUNTS["sentences"] += 1
        _COUNTS[found.kind] += 1
    return found


def relay_counts() -> dict[str, int]:
    """Sentences dropped in this process so far, in all and by kind (for the eval report)."""
    with _LOCK:
        return {"sentences": _COUNTS["sentences"], **{kind: _COUNTS[kind] for kind in KINDS}}


def reset_counts() -> None:
    with _LOCK:
        _COUNTS.clear()


def screen(sentences: Sequence[str], asked: Sequence[str]) -> tuple[list[str], list[Relay]]:
    """``sentences`` without the ones that relay something unasked, and what was dropped (counted).
    An entry of several sentences (a passage line) keeps its other sentences."""
    kept: list[str] = []
    dropped: list[Relay] = []
    for entry in sentences:
        parts = split_sentences(entry, lines=False) or [entry]
        found = [relay(part, asked) for part in parts]
        if not any(found):
            kept.append(entry)
            continue
        dropped.extend(record(f) for f in found if f is not None)
        clean = [part for part, f in zip(parts, found, strict=True) if f is None]
        if clean:
            kept.append(" ".join(clean))
    return kept, dropped


# --- streaming ---------------------------------------------------------------------------------------
# A sentence that may still become a relay: one of the patterns above, or a word that starts one.
_CUES = (_EMAIL, _PHONE, _LINK, _INSTALL, _MONEY, _PERSONAL, _PIN, _CREDENTIALS)
_CUE_WORDS = _rx(
    r"@|\[(?:at|dot|\.)\]|\((?:at|dot|\.)\)|\b(?:visit|go to|head|navigate|browse|sign up|register|log ?in"
    r"|sold|claim|download|install|reinstall|run|execute|launch|curl|wget|call|phone|ring|hotline|helpline"
    r"|telephone|tel|dial|whatsapp"
    # a request's verb and the first word of a thing it may ask for ("bank" of "bank details")
    rf"|{_GIVE}|{_PAY}|{_GERUNDS}|bank\w*|account|card|social|national|date|home|employee|staff|tax\w*"
    r"|secret|api|access|private|ssh|auth\w*|log|one-time|security|recovery|seed|id|identity|driv\w+|gift"
    r"|credit|debit|sort|routing|swift|pin|personal|session|bearer|refresh|verification|2fa|mfa)\b"
)
_END = re.compile(r"[.!?]+[\"'”’)\]*_]*(?:[ \t]*\[\d+(?:\s*,\s*\d+)*\])*(?=\s)|\n")


class RelayGuard:
    """Streamed answer text → the text that may be shown now: a sentence that may relay something
    (``_CUES``) is held back from the point it may until it ends, then shown only if it does not
    (``relay``), so the link, address or request of a sentence verification drops is never shown; a
    harmless start of it ("For the full list of companies,") may have been. The last, unfinished
    word is always held one piece, so an address streamed in pieces ("jobs", "@", "offer-desk") is
    judged whole."""

    def __init__(self, asked: Sequence[str]) -> None:
        self._asked = list(asked)
        self._sentence = ""  # what of the current sentence was shown
        self._held = ""  # what of it is held back

    def feed(self, text: str) -> str:
        buf, self._held = self._held + text, ""
        out: list[str] = []
        while end := _END.search(buf):
            out.append(self._ended(buf[: end.end()]))
            buf = buf[end.end() :]
        if any(cue.search(normal(self._sentence + buf)) for cue in (*_CUES, _CUE_WORDS)):
            self._held = buf  # may become a relay: wait for the end of the sentence
        else:
            word = re.search(r"\S*$", buf)
            cut = word.start() if word else len(buf)
            cut = cut if buf[:cut].strip() else 0  # white space alone waits for the words it goes with
            out.append(buf[:cut])
            self._sentence += buf[:cut]
            self._held = buf[cut:]
        return "".join(out)

    def finish(self) -> str:
        """The held end of the answer, unless it relays."""
        rest, self._held = self._held, ""
        return self._ended(rest) if rest else ""

    def _ended(self, piece: str) -> str:
        """A sentence's last ``piece`` (what was held of it and what ends it): shown unless the
        sentence relays."""
        whole, self._sentence = self._sentence + piece, ""
        return "" if relay(whole, self._asked) else piece
