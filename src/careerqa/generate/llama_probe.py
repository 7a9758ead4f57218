"""The child process of ``llama_check``: import llama.cpp, load a model, decode one token.

Run as ``python -m careerqa.generate.llama_probe MODEL [THREADS]``. It prints ``system_info: ...`` before it
touches the model (so a parent can quote the build's features even if the decode kills this
process), then ``result: ok`` once a token has been decoded. Anything that goes wrong inside
llama.cpp kills this process, not the caller.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print("usage: python -m careerqa.generate.llama_probe MODEL [THREADS]", file=sys.stderr)
        return 2
    threads = int(argv[1]) if len(argv) == 2 and int(argv[1]) > 0 else (os.cpu_count() or 1)
    import llama_cpp

    info = llama_cpp.llama_print_system_info()
    print("system_info: " + (info.decode() if isinstance(info, bytes) else str(info)).strip(), flush=True)
    llm = llama_cpp.Llama(
        model_path=argv[0], n_ctx=256, n_batch=64, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    # A short prompt through the batch kernels, then one token through the single-token ones:
    # both paths are what every answer runs.
    tokens = llm.tokenize(b"The skills an AI engineer needs are", add_bos=True)
    llm.eval(tokens)
    token = llm.sample(top_k=1)
    llm.eval([token])
    print(f"token: {token}", flush=True)
    print("result: ok", flush=True)
    llm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
