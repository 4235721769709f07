"""Incremental and parallel builds: the plain build's output, sooner.

A build is split into per-file results (`cache.FileResult`). Files whose bytes, and
everything else the output depends on (`cache.context_key`), are unchanged come from the
cache; the others are compiled, in several processes when there are enough of them.

Every step is the plain build's own, never a copy of it: files are found, read and parsed by
the loader (`discover`, `read_rule_bytes`, `documents_from_bytes`), compiled, checked and
rendered by `build.build_outputs` (per chunk of files), and the checks across files
(`across_files.cross_file_diagnostics`) run over the facts of every file, cached or not; the
manifest is `across_files.manifest_of`. Where per-file results cannot promise the plain
build's output (a file has an error or cannot be read, or a check across files finds
something), the whole set is built the plain way, so outputs and diagnostics are always
exactly the plain build's. Correlation rules depend on the rules they reference: a file
holding one is compiled together with those files and the changed ones, and none of them is
cached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import yaml

from ...across_files import DocumentKeys, cross_file_diagnostics, manifest_of, settle_output_names
from ...diagnostics import Diagnostic, has_errors
from ...load.loader import discover, documents_from_bytes, read_documents, read_rule_bytes
from .cache import Cache, FileResult
from .parallel import map_chunks, workers_for

if TYPE_CHECKING:
    from ...build import Compiler
    from ...project.environment import Environment

CORRELATION = re.compile(rb"^correlation[ \t]*:", re.M)  # a top-level key; a false alarm only costs time
Item = tuple[Path, str, bytes]  # rule file, display path, its bytes


class Fallback(Exception):
    """The per-file results cannot promise the plain build's output: build the plain way."""


@dataclass
class Outputs:
    """The same fields as `build.OutputSet` (kept apart so that a build served from the cache
    never imports the compiler)."""

    files: dict[str, str]
    manifest: dict
    diagnostics: list[Diagnostic]
    rules: int = 0
    stats: dict[str, int] = field(default_factory=dict, compare=False)  # files compiled, cached, workers

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def build(
    make_compiler: Callable[[], "Compiler"],
    paths: list[Path],
    formats: tuple[str, ...] | None = None,
    *,
    cache: Cache | None = None,
    jobs: int | None = None,
    environment: "Environment | None" = None,
) -> Outputs:
    """Every output of `paths`, as `build.build_outputs` makes them; `jobs` None: as many
    processes as pay off, 1: this process only. `environment`: the one the compiler was made
    for (its checks across files are made here too)."""
    files, problems = discover(paths)
    if problems or not files or (cache is None and workers_for(len(files), jobs) <= 1):
        return _plain(make_compiler, paths, formats, (files, problems))
    try:
        items = [(file, display, read_rule_bytes(file)) for file, display in files]
    except OSError:
        return _plain(make_compiler, paths, formats)
    formats = formats or _all_formats()
    keys = [cache.key(display, data) for _, display, data in items] if cache else [None] * len(items)
    results: list[FileResult | None] = [cache.get(key) if cache else None for key in keys]
    stats = {"files": len(items), "cached": sum(r is not None for r in results), "workers": 1}
    try:
        fresh = _compile_missing(make_compiler, paths, formats, items, results, jobs, stats)
        outputs = _merge(results, formats, environment)
    except Fallback:
        return _plain(make_compiler, paths, formats)
    if cache is not None:
        for index in fresh:
            if not results[index].correlated:
                cache.put(keys[index], results[index])
    outputs.stats = stats
    return outputs


def _compile_found(compiler, found, platforms):
    files, problems = found
    documents, unread = read_documents(files)
    return compiler.compile_documents(documents, problems + unread, platforms)


def platforms_of(formats: tuple[str, ...]) -> tuple[str, ...]:
    from ...render.formats import platforms_of as platforms

    return platforms(formats)


def _all_formats() -> tuple[str, ...]:
    from ...render.formats import ALL_FORMATS

    return ALL_FORMATS


def _plain(make_compiler, paths, formats, found=None) -> Outputs:
    """The plain build; `found`: what `discover(paths)` gave already (it is not walked again)."""
    from ...build import build_outputs

    compiler = make_compiler()
    result = _compile_found(compiler, found, platforms_of(formats or _all_formats())) if found else None
    plain = build_outputs(compiler, paths, formats or _all_formats(), result=result)
    return Outputs(plain.files, plain.manifest, plain.diagnostics, plain.rules, {"plain": 1})


def _compile_missing(make_compiler, roots, formats, items, results, jobs, stats) -> list[int]:
    """Fill in `results` for the files the cache did not have; returns their indexes."""
    correlations = [i for i, (_, _, data) in enumerate(items) if CORRELATION.search(data)]
    if correlations:
        references = _references([items[i][2] for i in correlations])
        group = [i for i, r in enumerate(results) if r is None or i in correlations or references & r.referable]
        for index, result in zip(group, build_chunk(make_compiler(), roots, formats, [items[i] for i in group])):
            result.correlated = index in correlations or bool(references & result.referable)
            results[index] = result
        return group
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:
        workers = workers_for(len(missing), jobs)
        stats["workers"] = workers
        task = partial(build_chunk, make_compiler(), roots, formats)
        for index, result in zip(missing, map_chunks(task, [items[i] for i in missing], workers)):
            results[index] = result
    return missing


def _references(blobs: list[bytes]) -> set[str]:
    """What the correlations refer to (`rules:` ids and names), lower-cased."""
    found: set[str] = set()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        for blob in blobs:
            for document in yaml.load_all(blob, Loader=loader):
                correlation = document.get("correlation") if isinstance(document, dict) else None
                rules = correlation.get("rules") if isinstance(correlation, dict) else None
                for rule in [rules] if isinstance(rules, str) else rules if isinstance(rules, list) else []:
                    found.add(str(rule).lower())
    except yaml.YAMLError:
        raise Fallback from None
    return found


def _parse_chunk(chunk: Sequence[Item]) -> tuple[list, dict[str, FileResult]]:
    """The chunk's documents, and an empty result per file that holds its documents' keys."""
    documents = []
    results = {display: FileResult(display) for _, display, _ in chunk}
    for file, display, data in chunk:
        parsed, problems = documents_from_bytes(data, file, display)
        if problems:
            raise Fallback  # the plain build reports it, and builds nothing
        documents += parsed
        results[display].documents = [DocumentKeys.of(d) for d in parsed]
        results[display].counted = 1
    return documents, results


def _assign(results: dict[str, FileResult], diagnostics: list[Diagnostic], compiled, roots) -> dict[str, str]:
    """Hand each diagnostic and wanted output name to its file; returns rule id → output name."""
    from ...build import wanted_output_names

    wanted = wanted_output_names([c.rule for c in compiled.compiled], roots)
    for want in wanted:
        results[want.source].names.append(want)
    for diagnostic in diagnostics:
        if diagnostic.location.path not in results:
            raise Fallback  # a finding about no file of this chunk
        results[diagnostic.location.path].diagnostics.append(diagnostic)
    return settle_output_names(wanted)[0]


def build_chunk(compiler: "Compiler", roots: list[Path], formats, chunk: Sequence[Item]) -> list[FileResult]:
    """Build the files of `chunk` together and split the outputs by file (runs in a worker)."""
    from ...build import build_outputs

    documents, results = _parse_chunk(chunk)
    compiled = compiler.compile_documents(documents, [], platforms_of(formats or _all_formats()))
    outputs = build_outputs(compiler, roots, formats or _all_formats(), result=compiled)
    _assign(results, outputs.diagnostics, compiled, roots)
    for entry in outputs.manifest["rules"]:
        result = results[entry["source"]]
        result.entries.append(entry)
        result.files.update({path: outputs.files[path] for path in entry["files"]})
    if sum(r.counted for r in results.values()) != outputs.rules or len(outputs.files) != sum(len(r.files) for r in results.values()):
        raise Fallback
    return list(results.values())


def _check(results: list[FileResult], environment: "Environment | None" = None) -> None:
    """Fallback on anything that per-file results cannot settle: an error in a file (the plain
    build words errors, and leaves outputs out, its own way), or any finding of the checks
    across files, run over the facts of every file."""
    if any(has_errors(result.diagnostics) for result in results):
        raise Fallback
    documents = [d for result in results for d in result.documents]
    names = [n for result in results for n in result.names]
    if cross_file_diagnostics(documents, names, environment):
        raise Fallback


def _merge(results: list[FileResult], formats: tuple[str, ...], environment: "Environment | None" = None) -> Outputs:
    """The build of all files from their per-file results; anything across files → Fallback."""
    _check(results, environment)
    files: dict[str, str] = {}
    for result in results:
        files.update(result.files)
    manifest = manifest_of(formats, [e for r in results for e in r.entries], environment.name if environment else None)
    diagnostics = [d for r in results for d in r.diagnostics]
    return Outputs(files, manifest, diagnostics, sum(r.counted for r in results))


# -- compile ------------------------------------------------------------------------------------
@dataclass
class Queries:
    """What `compile` prints (`texts`, in rule order) or writes with --out (`files`)."""

    texts: list[str]
    files: dict[str, str] | None
    diagnostics: list[Diagnostic]
    rules: int = 0
    stats: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def refuses(diagnostic, strict: bool) -> bool:
    """A finding that keeps its file's queries from being printed (`--strict`: warnings too)."""
    return diagnostic.severity == "error" or strict


def compile_queries(
    make_compiler: Callable[[], "Compiler"], paths: list[Path], platform: str, *, named: bool, jobs: int | None = None,
    strict: bool = False, environment: "Environment | None" = None,
) -> Queries:
    """Every rule's query for `platform`, as `compile` prints them (`named`: and as the files
    `compile --out` writes), on several cores when there are enough rules. Nothing is cached.
    A file with an error (with `strict`, any finding) gives no query at all."""
    files, problems = discover(paths)
    workers = workers_for(len(files), jobs)
    if problems or workers <= 1:
        return _plain_queries(make_compiler, paths, platform, named, strict, (files, problems))
    try:
        items = [(file, display, read_rule_bytes(file)) for file, display in files]
    except OSError:
        return _plain_queries(make_compiler, paths, platform, named, strict)
    if any(CORRELATION.search(data) for _, _, data in items):
        return _plain_queries(make_compiler, paths, platform, named, strict)  # correlations need their rules
    try:
        results = map_chunks(partial(compile_chunk, make_compiler(), paths, platform, named), items, workers)
        _check(results, environment)
    except Fallback:
        return _plain_queries(make_compiler, paths, platform, named, strict)
    for result in results:
        if any(refuses(d, strict) for d in result.diagnostics):
            result.queries, result.files = [], {}
    return Queries(
        [q for r in results for q in r.queries],
        {path: text for r in results for path, text in r.files.items()} if named else None,
        [d for r in results for d in r.diagnostics],
        sum(r.counted for r in results),
        {"files": len(items), "workers": workers},
    )


def _plain_queries(make_compiler, paths, platform, named, strict=False, found=None) -> Queries:
    from ...build import output_names

    compiler = make_compiler()
    result = _compile_found(compiler, found, (platform,)) if found else compiler.compile_paths(paths, (platform,))
    # A file with an error prints nothing: half of a file (a correlation's building blocks
    # without the correlation) would be shipped as if it were the whole.
    refused = {d.location.path for d in result.diagnostics if refuses(d, strict)}
    texts = {c.rule.id: c.texts[platform] for c in result.compiled if platform in c.texts and c.rule.source not in refused}
    files = None
    if named:
        names, problems = output_names([c.rule for c in result.compiled], paths)
        result.diagnostics += problems
        files = {names[rule_id] + ".kql": text for rule_id, text in texts.items() if rule_id in names}
    ordered = [texts[c.rule.id] for c in result.compiled if c.rule.id in texts]
    return Queries(ordered, files, result.diagnostics, result.files, {"plain": 1})


def compile_chunk(compiler: "Compiler", roots: list[Path], platform: str, named: bool, chunk: Sequence[Item]) -> list[FileResult]:
    """Compile the files of `chunk` together and split the queries by file (runs in a worker)."""
    documents, results = _parse_chunk(chunk)
    compiled = compiler.compile_documents(documents, [], (platform,))
    names = _assign(results, compiled.diagnostics, compiled, roots)
    for c in compiled.compiled:
        if platform in c.texts:
            result = results[c.rule.source]
            result.queries.append(c.texts[platform])
            if named and c.rule.id in names:
                result.files[names[c.rule.id] + ".kql"] = c.texts[platform]
    if sum(r.counted for r in results.values()) != compiled.files:
        raise Fallback
    return list(results.values())
