"""Flattened list titles put back in front of their paragraphs (headings.py), with a fake similarity."""

import numpy as np

from careerqa.ingest.headings import align, consistent, label_paragraphs, restore_headings
from careerqa.types import Document

FLAT = """Types of learning
- Types of Machine Learning
- Supervised Learning
- Unsupervised Learning
- Reinforcement Learning
This involves training a model on labeled data with known outputs.
This deals with unlabeled data to find hidden patterns.
An agent learns to make decisions from rewards or penalties.
A telecom company wants to predict churn with these methods.
Next heading"""

# Which words of a paragraph belong to which title: a stand-in for the embedder's similarity.
CUES = {
    "Types of Machine Learning": ("learning",),
    "Supervised Learning": ("labeled", "known"),
    "Unsupervised Learning": ("unlabeled", "hidden"),
    "Reinforcement Learning": ("agent", "rewards"),
}


def fake_similarity(titles, paragraphs):
    scores = np.zeros((len(titles), len(paragraphs)))
    for i, title in enumerate(titles):
        for j, para in enumerate(paragraphs):
            words = para.lower().split()
            scores[i, j] = 0.1 + 0.3 * sum(cue in words for cue in CUES.get(title, ()))
    return scores


def test_titles_are_written_before_their_paragraphs():
    doc = Document(path="a.txt", sha256="x", kind="text", text=FLAT, offsets=tuple(range(len(FLAT) + 1)))
    fixed = restore_headings(doc, fake_similarity)
    lines = fixed.text.splitlines()
    assert "Supervised Learning: This involves training a model on labeled data with known outputs." in lines
    assert "Unsupervised Learning: This deals with unlabeled data to find hidden patterns." in lines
    assert "Reinforcement Learning: An agent learns to make decisions from rewards or penalties." in lines
    # the parent item and the worked example stay unpaired; the list itself is kept
    assert "A telecom company wants to predict churn with these methods." in lines
    assert "- Types of Machine Learning" in lines and "- Supervised Learning" in lines
    # every inserted character maps to the raw start of its paragraph; the rest keep their offsets
    at = fixed.text.index("Reinforcement Learning: An agent")
    assert fixed.offsets[at] == FLAT.index("An agent")
    assert (
        fixed.text.replace("Supervised Learning: This", "This")
        .replace("Unsupervised Learning: This", "This")
        .replace("Reinforcement Learning: An", "An")
        == FLAT
    )
    assert len(fixed.offsets) == len(fixed.text) + 1


def test_nothing_changes_without_clear_pairs():
    flat = (
        "- Python\n- SQL\nThis paragraph is about something else entirely, at length.\n"
        "Another long paragraph here about other things."
    )
    doc = Document(path="a.txt", sha256="x", kind="text", text=flat)
    assert restore_headings(doc, lambda t, p: np.full((len(t), len(p)), 0.05)) is doc
    # one good pair alone is not enough evidence that the page was flattened
    one = lambda t, p: np.array([[0.9, 0.0], [0.0, 0.05]])  # noqa: E731
    assert label_paragraphs(flat, one) == []
    # items with their own text ("- Pandas: For data") are not titles
    inline = (
        "- Pandas: For data work\n- NumPy: For arrays\n"
        "This is a long paragraph about arrays.\nAnd another long one about data."
    )
    assert label_paragraphs(inline, lambda t, p: np.ones((len(t), len(p)))) == []


def test_align_keeps_order_and_skips_parents():
    scores = np.array(
        [
            [0.41, 0.34, 0.29, 0.24],  # a parent: similar to everything, best to nothing
            [0.47, 0.38, 0.25, 0.16],
            [0.30, 0.33, 0.21, 0.06],
            [0.33, 0.17, 0.48, 0.10],
        ]
    )
    assert align(scores) == [(1, 0), (2, 1), (3, 2)]


def test_pairs_forced_by_the_run_are_dropped():
    # the seed's Containerization / Docker / Kubernetes run: the titles match the wrong paragraphs
    scores = np.array(
        [
            [0.64, 0.22, 0.23, 0.23],  # Model Monitoring
            [0.09, 0.46, 0.55, 0.46],  # Containerization and Orchestration (a parent)
            [0.05, 0.33, 0.49, 0.36],  # Docker
            [0.11, 0.32, 0.43, 0.55],  # Kubernetes
        ]
    )
    pairs = align(scores)
    assert (2, 2) in pairs  # the alignment alone would pair Docker with the Kubernetes paragraph
    assert consistent(scores, pairs) == []


def test_titles_between_two_certain_pairs_follow_the_order():
    # the seed's MLOps run: MiniLM scores "Model Deployment" closer to the CI/CD paragraph, but between
    # two certain pairs with two titles and two paragraphs in between, the order says which is which
    scores = np.array(
        [
            [0.71, 0.33, 0.38, 0.47],  # Model Versioning | Tracking different versions…
            [-0.03, 0.26, 0.05, 0.04],  # CI/CD for ML | Continuous Integration/Continuous Deployment…
            [0.37, 0.59, 0.37, 0.41],  # Model Deployment | Putting trained models into production…
            [0.52, 0.35, 0.43, 0.64],  # Model Monitoring | Continuously tracking model performance…
        ]
    )
    pairs = align(scores)
    assert consistent(scores, pairs) == [(0, 0), (1, 1), (2, 2), (3, 3)]
    # one end not certain (a weak, lone pair): nothing is filled in, and the lone pairs are dropped
    weak = scores.copy()
    weak[3] = [0.52, 0.35, 0.43, 0.50]
    assert consistent(weak, align(weak)) == []
