"""The one word tokenizer: words folded to plain lower-case letters, stopwords dropped, Snowball-stemmed.

BM25, the verifier's lexical coverage, spelling correction and the focus check all read words
through this module, so they agree on what a word is.

- Words are runs of letters and digits in any script; accents are folded ("Résumé" → "resume", so
  a question typed without accents still matches); "c++" and "c#" keep their signs.
- Stems come from the Snowball English (Porter2) stemmer of PyStemmer, a C extension: "courses" and
  "course", "biases" and "bias", "uses" and "use" meet. A stemmer, not a lemmatiser: irregular
  forms ("taught"/"teach") stay apart.
Not handled here: compound splitting, synonyms, languages other than English (their words are kept,
folded, and stemmed as English, which mostly leaves them alone).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer  # PyStemmer

_WORD = re.compile(r"[^\W_]+(?:[+#][+#]?)?")
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers him his how i if in into is it its itself just me more most my
    no nor not now of off on once only or other our ours out over own same she should so some such
    than that the their theirs them then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours""".split()
)

_STEMMER = Stemmer.Stemmer("english")


def fold(text: str) -> str:
    """Lower case without accents: "Résumé" → "resume" (compatibility forms too: "ﬁ" → "fi")."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def surface_words(text: str) -> list[str]:
    """Every word of ``text``, folded, stopwords included, unstemmed."""
    return _WORD.findall(fold(text))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Snowball stem of one folded word ("courses" → "cours"); signs of "c++" are kept."""
    if word[-1] in "+#":
        return word
    return str(_STEMMER.stemWord(word))


def tokenize(text: str) -> list[str]:
    """The stemmed content words of ``text``, in order, repeats kept."""
    return [stem(w) for w in surface_words(text) if w not in STOPWORDS]
