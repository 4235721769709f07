"""`entra-sigma lsp`: the language server (pygls), over standard input and output.

The features live in their own modules; this one wires them to LSP messages. Every use of
the compiler runs on one worker thread, in order, so typing never waits for it and no two
compiles share its caches at once. A change is checked after a short pause (`debounce`);
opening and saving are checked at once, and only then are a tests file's cases replayed
(a second or so). Positions cross here between the client's units
(UTF-16 by default) and the code points the modules count in.

Initialization options (all optional): `rulesFolders` (default `["rules"]`), the folders of
the workspace that `validate` is run on; `debounce` (seconds, default 0.15); `replay`
(default true), whether a tests file's cases are replayed through the rule's query.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from ... import __version__
from .checks import Findings, check_rule_file, check_tests_file
from .placeholders import ProjectFilePlaceholders
from .project import DEFAULT_RULE_FOLDERS, Project, is_tests_file
from .publish import code_action, lsp_diagnostics, overlaps
from .query import COMMAND, NoQuery, code_lenses, query_at

DEBOUNCE = 0.15  # seconds after the last keystroke before a change is checked
TRIGGERS = ["|", ".", " ", "%", "-", ":"]
logger = logging.getLogger(__name__)


def lines_of(text: str) -> list[str]:
    """Lines as the YAML loader counts them (a line ends at \\n; a \\r before it is dropped)."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


class RuleServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("entra-sigma", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="entra-sigma-compiler")
        self.debounce = DEBOUNCE
        self.replay = True
        self.rule_folders: tuple[str, ...] = DEFAULT_RULE_FOLDERS
        self.project: Project | None = None
        self.placeholders = ProjectFilePlaceholders()
        self._compiler = None
        self._pending: dict[str, asyncio.Task] = {}
        self._fixes: dict[str, tuple] = {}  # uri → (version, the quick fixes of its diagnostics of that version)
        self._joined: dict[str, set[Path]] = {}  # uri → the files its last check compiled with it
        self._snapshot: dict[Path, tuple[str, int]] = {}
        self._queries: tempfile.TemporaryDirectory | None = None

    # -- the compiler, on the worker thread ---------------------------------------------------
    @property
    def compiler(self):
        if self._compiler is None:
            from ...build import Compiler

            self._compiler = Compiler()
        return self._compiler

    def warm_up(self) -> None:
        """Import the pipeline and compile one rule, so the first real check is as fast as the rest."""
        from ...load.loader import parse_documents

        text = "title: warm\nid: 00000000-0000-4000-8000-000000000000\nlogsource: {product: entra, service: signins}\n" \
               "detection:\n  sel:\n    userAgent|contains: x\n  condition: sel\n"
        documents, _ = parse_documents(text, Path("warm.yml"), "warm.yml")
        self.compiler.compile_documents(documents, [], ("sentinel", "defender"))

    async def on_worker(self, function, *args):
        snapshot = self.open_documents()
        return await asyncio.get_running_loop().run_in_executor(self.worker, self._with_snapshot, snapshot, function, args)

    def _with_snapshot(self, snapshot, function, args):
        self._snapshot = snapshot
        return function(*args)

    def open_documents(self) -> dict[Path, tuple[str, int]]:
        found = {}
        for uri, document in list(self.workspace.text_documents.items()):
            if uri.startswith("file:"):
                found[Path(to_fs_path(uri)).resolve()] = (document.source, document.version or 0)
        return found

    def setup(self, params: types.InitializeParams) -> None:
        options = params.initialization_options if isinstance(params.initialization_options, dict) else {}
        folders = options.get("rulesFolders")
        if isinstance(folders, list) and all(isinstance(f, str) for f in folders):
            self.rule_folders = tuple(folders)
        if isinstance(options.get("debounce"), (int, float)) and options["debounce"] >= 0:
            self.debounce = float(options["debounce"])
        if isinstance(options.get("replay"), bool):
            self.replay = options["replay"]
        root = None
        if params.workspace_folders:
            root = Path(to_fs_path(params.workspace_folders[0].uri))
        elif params.root_uri:
            root = Path(to_fs_path(params.root_uri))
        elif params.root_path:
            root = Path(params.root_path)
        self.project = Project(root, lambda path: self._snapshot.get(path), self.rule_folders)

    # -- diagnostics ----------------------------------------------------------------------------
    def wanted(self, uri: str) -> Path | None:
        """The file behind `uri`, if the server checks it (a rule or tests file)."""
        if not uri.startswith("file:") or self.project is None:
            return None
        path = Path(to_fs_path(uri))
        document = self.workspace.get_text_document(uri)
        return path if self.project.is_rule_document(path, document.source) else None

    def schedule(self, uri: str, delay: float, cascade: bool = True, replay: bool = False) -> None:
        """Check `uri` after `delay` seconds (a later call for it replaces this one). `replay`:
        replay a tests file's cases too (a second or so: on opening and saving, not per keystroke)."""
        if self.wanted(uri) is None:
            return
        pending = self._pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        self._pending[uri] = asyncio.ensure_future(self._check_later(uri, delay, cascade, replay and self.replay))

    async def _check_later(self, uri: str, delay: float, cascade: bool, replay: bool) -> None:
        if delay:
            await asyncio.sleep(delay)
        document = self.workspace.get_text_document(uri)
        version, text = document.version, document.source
        path = self.wanted(uri)
        if path is None:
            return
        try:
            findings = await self.on_worker(self.check, path, text, replay)
        except Exception:  # a bug: say so in the log, never take the server down
            logger.exception("checking %s failed", uri)
            return
        if self._pending.get(uri) is asyncio.current_task():
            del self._pending[uri]
        if document.version != version:
            return  # a newer change is on its way
        lines = lines_of(text)
        published, fixes = lsp_diagnostics(findings, lines)
        self._fixes[uri] = (version, fixes)
        codec = document.position_codec
        for diagnostic in published:
            diagnostic.range = codec.range_to_client_units(lines, diagnostic.range)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri, published, version=version))
        joined = set(findings.checked_with)
        before, self._joined[uri] = self._joined.get(uri, set()), joined
        if cascade:  # other open files a correlation joins (or joined) to this one may read differently now
            here = path.resolve()
            for other in list(self.workspace.text_documents):
                if other == uri or not other.startswith("file:"):
                    continue
                if Path(to_fs_path(other)).resolve() in (joined | before) or here in self._joined.get(other, set()):
                    self.schedule(other, 0, cascade=False)

    def check(self, path: Path, text: str, replay: bool) -> Findings:
        if is_tests_file(path):
            return check_tests_file(self.project, self.compiler, path, text, replay)
        return check_rule_file(self.project, self.compiler, path)

    def query_folder(self) -> Path:
        """A folder of this server's own (mode 0700) for the queries it shows as files."""
        if self._queries is None:
            self._queries = tempfile.TemporaryDirectory(prefix="entra-sigma-lsp-")
        return Path(self._queries.name)

    # -- requests ---------------------------------------------------------------------------------
    def position(self, uri: str, position: types.Position) -> tuple[Path, list[str], int, int]:
        document = self.workspace.get_text_document(uri)
        lines = lines_of(document.source)
        server = document.position_codec.position_from_client_units(lines, position)
        return Path(to_fs_path(uri)), lines, server.line, server.character

    def to_client(self, uri: str, lines: list[str], range_: types.Range) -> types.Range:
        return self.workspace.get_text_document(uri).position_codec.range_to_client_units(lines, range_)


server = RuleServer()


@server.feature(types.INITIALIZE)
def initialize(ls: RuleServer, params: types.InitializeParams) -> None:
    ls.setup(params)


@server.feature(types.INITIALIZED)
async def initialized(ls: RuleServer, params: types.InitializedParams) -> None:
    await ls.on_worker(ls.warm_up)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: RuleServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri, 0, replay=True)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: RuleServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri, ls.debounce)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: RuleServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri, 0, replay=True)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: RuleServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    pending = ls._pending.pop(uri, None)
    if pending is not None:
        pending.cancel()
    ls._fixes.pop(uri, None)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri, []))


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
def code_actions(ls: RuleServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    document = ls.workspace.get_text_document(uri)
    lines = lines_of(document.source)
    wanted = document.position_codec.range_from_client_units(lines, params.range)
    actions = []
    version, fixes = ls._fixes.get(uri, (None, []))
    if version != document.version:
        return []  # made for an older text: the next diagnostics bring fixes for this one
    for fix in fixes:
        first = fix.edits[0]
        spot = types.Range(types.Position(fix.diagnostic.location.line - 1, 0),
                           types.Position(fix.diagnostic.location.line - 1, len(lines[fix.diagnostic.location.line - 1])))
        if not overlaps(spot, wanted) and not overlaps(types.Range(types.Position(first[0], first[1]), types.Position(first[2], first[3])), wanted):
            continue
        action = code_action(fix, uri, lines)
        for edit in action.edit.changes[uri]:
            edit.range = ls.to_client(uri, lines, edit.range)
        for diagnostic in action.diagnostics:
            diagnostic.range = ls.to_client(uri, lines, diagnostic.range)
        actions.append(action)
    return actions


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=TRIGGERS))
async def completion(ls: RuleServer, params: types.CompletionParams) -> types.CompletionList | None:
    from .completion import Completer

    if ls.wanted(params.text_document.uri) is None:
        return None  # a workflow or another YAML file that is no rule

    path, lines, line, column = ls.position(params.text_document.uri, params.position)

    def complete() -> list[types.CompletionItem]:
        return Completer(ls.compiler.catalog, ls.compiler.registry, ls.project, ls.placeholders).complete(path, lines, line, column)

    items = await ls.on_worker(complete)
    for item in items:
        if isinstance(item.text_edit, types.TextEdit):
            item.text_edit.range = ls.to_client(params.text_document.uri, lines, item.text_edit.range)
    return types.CompletionList(is_incomplete=False, items=items)


@server.feature(types.TEXT_DOCUMENT_HOVER)
async def hover(ls: RuleServer, params: types.HoverParams) -> types.Hover | None:
    from .hover import Hoverer

    if ls.wanted(params.text_document.uri) is None:
        return None

    path, lines, line, column = ls.position(params.text_document.uri, params.position)
    found = await ls.on_worker(lambda: Hoverer(ls.compiler, ls.project).hover(path, lines, line, column))
    if found is not None and found.range is not None:
        found.range = ls.to_client(params.text_document.uri, lines, found.range)
    return found


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
async def definition(ls: RuleServer, params: types.DefinitionParams) -> types.Location | None:
    from .navigation import definition as find

    if ls.wanted(params.text_document.uri) is None:
        return None

    path, lines, line, column = ls.position(params.text_document.uri, params.position)
    return await ls.on_worker(find, ls.project, path, lines, line, column)


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbols(ls: RuleServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
    from .navigation import document_symbols as symbols

    uri = params.text_document.uri
    if ls.wanted(uri) is None:
        return []
    lines = lines_of(ls.workspace.get_text_document(uri).source)
    found = symbols(lines)

    def convert(symbol: types.DocumentSymbol) -> None:
        symbol.range = ls.to_client(uri, lines, symbol.range)
        symbol.selection_range = ls.to_client(uri, lines, symbol.selection_range)
        for child in symbol.children or []:
            convert(child)

    for symbol in found:
        convert(symbol)
    return found


@server.feature(types.TEXT_DOCUMENT_CODE_LENS)
def code_lens(ls: RuleServer, params: types.CodeLensParams) -> list[types.CodeLens]:
    uri = params.text_document.uri
    path = ls.wanted(uri)
    if path is None or is_tests_file(path):
        return []
    return code_lenses(uri, lines_of(ls.workspace.get_text_document(uri).source))


@server.command(COMMAND)
async def show_query(ls: RuleServer, *arguments) -> str:
    """arguments: the document's URI, a line of the rule (0-based), and sentinel or defender.
    Returns the query; a client that can show documents is also shown it, as a .kql file."""
    uri, line, platform = (list(arguments) + [None, 0, "sentinel"][len(arguments):])[:3]
    if not isinstance(uri, str) or not isinstance(line, int):
        raise ValueError(f"{COMMAND} takes a document URI, a line and a platform")
    lines = lines_of(ls.workspace.get_text_document(uri).source)
    try:
        shown = await ls.on_worker(query_at, ls.project, ls.compiler, Path(to_fs_path(uri)), lines, line, platform)
    except NoQuery as error:
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Warning, str(error)))
        raise ValueError(str(error)) from None
    capabilities = ls.client_capabilities.window
    if capabilities is not None and capabilities.show_document is not None and capabilities.show_document.support:
        target = ls.query_folder() / shown.name
        target.write_text(shown.text, encoding="utf-8")
        ls.window_show_document(types.ShowDocumentParams(target.as_uri(), take_focus=False))
    return shown.text


def serve() -> None:
    server.start_io()
