"""Is the installed llama.cpp safe to load on this CPU? Checked in a child process, remembered after.

llama-cpp-python's default build compiles llama.cpp with ``-march=native``. A wheel built on one
machine, or on a VM whose CPU *reports* AMX but does not let a process use the AMX tiles, then dies
of SIGILL on the first decoded token, taking the server with it. So before a process first loads the
model into itself, ``ensure_llama_runs`` lets a child process (``python -m careerqa.generate.llama_probe``)
import the library, load the model and decode one token. A clean exit is remembered in
``<cache_dir>/llama-check.json`` under a key of (library files, CPU model and flags, model file), so
the check costs nothing afterwards; a child killed by a signal becomes one ``ModelUnavailable`` line
that names the CPU feature problem and the command that rebuilds the library. Failures are not
remembered: a rebuilt library has a new key anyway, and a transient failure should be retried.

Not handled here: building the library (``scripts/install_llama.sh``), and remote generators (they run
no llama.cpp in this process).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from careerqa.errors import ModelUnavailable
from careerqa.locks import file_lock

REBUILD_HINT = "make llama  (or: scripts/install_llama.sh .venv)"
CHECK_FILE = "llama-check.json"
PROBE_TIMEOUT_S = 300.0  # loading 1.1 GB from a cold disk and one decode; seconds on a warm one
CHECK_VERSION = 1  # bump when what the probe does changes, so old results are not trusted

# CPU features that decide which llama.cpp kernels can run; the rest of /proc/cpuinfo's flags do not.
RELEVANT_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx_vnni",
    "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni", "avx512vbmi", "avx512_bf16",
    "amx_tile", "amx_int8", "amx_bf16",
)  # fmt: skip


@dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: tuple[str, ...]  # the RELEVANT_FLAGS this CPU reports, in that order
    machine: str

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "flags": list(self.flags), "machine": self.machine}


def cpu_info(cpuinfo_path: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """The CPU's model name and the features that matter to llama.cpp (Linux; elsewhere, less)."""
    model, flags = platform.processor() or "unknown", set[str]()
    with contextlib.suppress(OSError):
        for line in cpuinfo_path.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name":
                model = value.strip()
            elif key == "flags":
                flags = set(value.split())
                break  # every core reports the same
    return CpuInfo(model, tuple(f for f in RELEVANT_FLAGS if f in flags), platform.machine())


def library_dir() -> Path | None:
    """Folder of the installed ``llama_cpp`` package, found without importing (and so loading) it."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def library_files(lib_dir: Path) -> list[Path]:
    """The compiled libraries of a llama_cpp package: what a rebuild changes."""
    return sorted(
        p for p in lib_dir.rglob("*") if p.is_file() and (".so" in p.name or p.suffix in {".dll", ".dylib"})
    )


def build_info(lib_dir: Path | None) -> dict[str, Any]:
    """What ``scripts/install_llama.sh`` recorded about the build, or ``{}`` for a build made otherwise."""
    if lib_dir is None:
        return {}
    try:
        data = json.loads((lib_dir / "careerqa-build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def check_key(lib_dir: Path, cpu: CpuInfo, model_path: Path) -> str:
    """Identity of (library build, CPU, model file): the check is remembered under it."""
    parts: list[Any] = [CHECK_VERSION, cpu.as_dict()]
    for f in library_files(lib_dir):
        st = f.stat()
        parts.append([str(f), st.st_size, st.st_mtime_ns, st.st_ino])
    with contextlib.suppress(OSError):
        st = model_path.stat()
        parts.append([model_path.name, st.st_size, st.st_mtime_ns])
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    cached: bool  # True: remembered from an earlier run, no child process started
    key: str
    system_info: str  # llama.cpp's own line: which CPU features the library was built to use
    error: str = ""  # the one-line explanation of a failure, with the fix
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "cached": self.cached, "key": self.key, "system_info": self.system_info,
            "uses": enabled_features(self.system_info), "error": self.error,
            "seconds": round(self.seconds, 3),
        }  # fmt: skip


def _read_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(path: Path, key: str, record: dict[str, Any]) -> None:
    data = _read_results(path)
    data[key] = record
    if len(data) > 20:  # one entry per (build, CPU, model): old builds need not be kept forever
        for old in sorted(data, key=lambda k: data[k].get("checked_at", 0))[: len(data) - 20]:
            del data[old]
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def check_llama(
    model_path: Path,
    cache_dir: Path,
    *,
    threads: int = 0,
    recheck: bool = False,
    probe_cmd: Sequence[str] | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> CheckResult:
    """Run (or recall) the child-process check of the installed llama.cpp with ``model_path``.

    ``probe_cmd`` replaces the child's command line (tests use it); by default it is
    ``python -m careerqa.generate.llama_probe MODEL THREADS``.
    """
    lib_dir = library_dir()
    if lib_dir is None:
        raise ModelUnavailable("llama-cpp-python is not installed; run: " + REBUILD_HINT)
    cpu = cpu_info()
    key = check_key(lib_dir, cpu, Path(model_path))
    cache_dir = Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    results_path = cache_dir / CHECK_FILE
    if not recheck:
        known = _read_results(results_path).get(key)
        if isinstance(known, dict) and known.get("ok"):
            return CheckResult(True, True, key, str(known.get("system_info", "")))
    # One check at a time: a server and a CLI starting together need not both pay for it.
    with file_lock(cache_dir / f"{CHECK_FILE}.lock"):
        if not recheck:
            known = _read_results(results_path).get(key)
            if isinstance(known, dict) and known.get("ok"):
                return CheckResult(True, True, key, str(known.get("system_info", "")))
        cmd = list(probe_cmd or [sys.executable, "-m", "careerqa.generate.llama_probe", str(model_path),
        str(threads)])
        started = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, errors="replace")
        except subprocess.TimeoutExpired:
            return CheckResult(
                False, False, key, "",
                f"the llama.cpp check process did not finish in {timeout_s:.0f} s "
                "(a very slow disk, or a hung library); run `careerqa doctor` to see more",
                time.perf_counter() - started,
            )  # fmt: skip
        seconds = time.perf_counter() - started
        system_info = _field(proc.stdout, "system_info")
        if proc.returncode == 0 and _field(proc.stdout, "result") == "ok":
            _remember(results_path, key, {
                "ok": True, "checked_at": time.time(), "cpu": cpu.as_dict(), "library": str(lib_dir),
                "build": build_info(lib_dir), "system_info": system_info, "seconds": round(seconds, 2),
            })  # fmt: skip
            return CheckResult(True, False, key, system_info, "", seconds)
        return CheckResult(False, False, key, system_info, _explain(proc, cpu, system_info, lib_dir), seconds)


def ensure_llama_runs(model_path: Path, cache_dir: Path, *, threads: int = 0) -> CheckResult:
    """``check_llama``, raising ``ModelUnavailable`` with the explanation when the check fails."""
    result = check_llama(model_path, cache_dir, threads=threads)
    if not result.ok:
        raise ModelUnavailable(result.error)
    return result


def _field(stdout: str, name: str) -> str:
    for line in stdout.splitlines():
        if line.startswith(name + ": "):
            return line[len(name) + 2 :].strip()
    return ""


def _explain(proc: subprocess.CompletedProcess[str], cpu: CpuInfo, system_info: str, lib_dir: Path) -> str:
    build = build_info(lib_dir)
    built_as = f"built as {build.get('profile')!r}" if build else "built outside scripts/install_llama.sh"
    if proc.returncode < 0:
        signum = -proc.returncode
        try:
            signame = signal.Signals(signum).name
        except ValueError:
            signame = f"signal {signum}"
        uses = enabled_features(system_info)
        if signum == signal.SIGILL:
            why = (
                "an instruction this CPU does not allow (the library was compiled for CPU features this "
                "machine cannot run; a VM may report AMX or AVX-512 and still forbid it)"
            )
        elif any(f.startswith("AMX") for f in uses):
            why = (
                "a crash with the library's AMX kernels enabled (this CPU reports AMX, but the machine, "
                "often a VM, may not let a process use the AMX tiles)"
            )
        else:
            why = "a crash inside llama.cpp"
        return (
            f"llama.cpp ({built_as}) cannot run on this CPU: a test decode in a child process died of "
            f"{signame}, {why}. Library uses: {' '.join(uses) or 'unknown'}; CPU ({cpu.model}) reports: "
            f"{' '.join(cpu.flags) or 'none of the relevant flags'}. Rebuild it portably: {REBUILD_HINT}"
        )
    tail = " | ".join(line for line in (proc.stderr or "").strip().splitlines()[-3:] if line.strip())
    return (
        f"llama.cpp ({built_as}) failed its test decode (exit code {proc.returncode}): "
        f"{tail or 'no message'}. Run `careerqa doctor`; if the library is broken, rebuild it: {REBUILD_HINT}"
    )


def enabled_features(system_info: str) -> list[str]:
    """``["AVX2", "AVX512", ...]`` from llama.cpp's ``"CPU : AVX2 = 1 | AVX512 = 1 | ..."`` line."""
    on = []
    for item in system_info.split("|"):
        name, _, value = item.partition("=")
        name = name.strip().split(":")[-1].strip()
        if value.strip() == "1" and name:
            on.append(name)
    return on


# llama.cpp's feature names → the /proc/cpuinfo flag each needs.
_FEATURE_FLAGS = {
    "AVX": "avx", "AVX2": "avx2", "F16C": "f16c", "FMA": "fma", "BMI2": "bmi2", "AVX_VNNI": "avx_vnni",
    "AVX512": "avx512f", "AVX512_VBMI": "avx512vbmi", "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16", "AMX_INT8": "amx_int8", "AMX_BF16": "amx_bf16",
}  # fmt: skip


def missing_features(system_info: str, cpu: CpuInfo) -> list[str]:
    """Features the library was built to use that this CPU does not report (only the known ones)."""
    return [
        f for f in enabled_features(system_info) if f in _FEATURE_FLAGS and _FEATURE_FLAGS[f] not in cpu.flags
    ]
