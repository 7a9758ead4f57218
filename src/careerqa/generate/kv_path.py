"""What ``LlamaGenerator`` calls for passage KV caches: the ``Stitcher`` made on first use, and the
fallbacks around it (``stream`` returns None whenever the normal path must answer).

Not handled here: the llama.cpp work itself (``generate/kv_stitch.py``) and the cache files
(``generate/kv_cache.py``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from careerqa.generate.kv_cache import KVStore
from careerqa.generate.kv_prompt import PromptRenderer
from careerqa.generate.kv_stitch import Stitcher

logger = logging.getLogger(__name__)


class StitchedPath:
    """What ``LlamaGenerator`` calls: the ``Stitcher``, made on first use, and the fallbacks around it.

    ``stream`` returns None whenever the normal path must answer (mode "off", a prompt that is not a
    passages prompt or does not fit, a model whose template is not ChatML, a context that could not be
    made); a missing or unreadable cache is not one of them: that passage is read live.
    """

    def __init__(self, llama: Any, model_path: Any, settings: Any, name: str) -> None:
        from careerqa.generate.kv_cache import cache_folder, model_id

        self._llama = llama
        self._settings = settings
        self.model = model_id(name, model_path)
        self.folder = cache_folder(settings)
        self._stitcher: Stitcher | None = None
        self._renderer: PromptRenderer | None = None
        self.unavailable: str | None = None  # why the stitched path cannot run, once known

    def stitcher(self) -> Stitcher | None:
        if self._stitcher is None and self.unavailable is None:
            threads = self._settings.threads if self._settings.threads > 0 else (os.cpu_count() or 1)
            try:
                self._stitcher = Stitcher(
                    self._llama,
                    KVStore(self.folder),
                    self.model,
                    n_ctx=self._settings.kv_n_ctx,
                    threads=threads,
                    lookup=self._settings.kv_lookup,
                    kv_type=self._settings.kv_type,
                    layout=self._settings.kv_layout,
                )
                self._stitcher.fill_on_miss = bool(self._settings.kv_fill_on_miss)
            except (ValueError, RuntimeError, OSError) as exc:
                self.unavailable = str(exc)
                logger.warning("passage KV caches are off: %s", exc)
        return self._stitcher

    def stream(
        self, messages: Sequence[dict[str, str]], mode: str, *, max_tokens: int, stop: Sequence[str] | None
    ) -> Iterator[str] | None:
        if mode == "off":
            return None
        stitcher = self.stitcher()
        plan = stitcher.plan(messages, max_tokens) if stitcher is not None else None
        if stitcher is None or plan is None:
            return None
        return stitcher.stream(plan, max_tokens=max_tokens, stop=stop, live_last=mode == "stitch-last-live")

    def prefill(self, system_prompt: str) -> None:
        stitcher = self.stitcher()
        if stitcher is not None:
            stitcher.ensure_prefix(stitcher.prefix_tokens(system_prompt))

    def usage(self) -> dict[str, int]:
        last = self._stitcher.last if self._stitcher is not None else {}
        return {k: last[k] for k in ("prompt_tokens", "completion_tokens") if k in last}

    def count_usage(
        self, messages: Sequence[dict[str, str]], completion: str, count: Callable[[str], int]
    ) -> dict[str, int]:
        """Token counts of a normal-path answer: the rendered prompt's tokens, the answer's tokens."""
        try:
            if self._renderer is None:
                self._renderer = PromptRenderer(self._llama)
            prompt = len(self._renderer.tokenize(self._renderer.render(messages)))
        except (ValueError, RuntimeError):
            prompt = sum(count(m.get("content") or "") for m in messages)
        return {"prompt_tokens": prompt, "completion_tokens": count(completion)}

    def close(self) -> None:
        if self._stitcher is not None:
            self._stitcher.close()
            self._stitcher = None
