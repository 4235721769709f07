#!/usr/bin/env node
// Checks KQL queries with Microsoft's Kusto.Language (parser + semantic
// analyzer + best-practice analyzers), plus a strict comparison type check
// that Kusto.Language itself does not do.
//
// Batch protocol (start-up costs ~2 s, so one process checks many queries):
//   stdin:  {"tables": {"T": [["Col", "string"], ...], ...},
//            "queries": [{"id": "...", "text": "KQL"}, ...],
//            "details": false,
//            "watchlistColumns": ["Hostname", ...]}                 (optional)
//   stdout: {"results": [{"id": "...", "diagnostics": [
//              {"severity", "code", "message", "start", "length",
//               "line", "column", "snippet"}, ...]}, ...]}   (input order)
// With "details": true each result also says what the parser read, so tests can
// prove that a value reached the query as one intact constant:
//   "literals": [{"kind": "String", "value": "..."}, ...]  every literal, in order;
//               strings unescaped, other kinds as their raw text (12, 1.5, 2025-01-31)
//   "tokens":   ["IdentifierToken", "BarToken", ...]        every token kind, in order
//   "names":    [{"name": "a b", "kind": "Column"}, ...]     every name referred to (kind: the
//               symbol it resolves to: Column, Table, Function, ..., or Unknown) or declared
//               (kind: Declaration)
//   "comments": ["// ...", ...]                             every comment, without its line end
// Only Error and Warning diagnostics are reported; every one is a failure.
// Bad input goes to stderr with exit status 2; stdout carries only the result.
// With --serve, stdin holds one request per line and stdout gets one result
// line per request, so a test session can keep one process (and one start-up).
'use strict';

require('@kusto/language-service-next/bridge.min.js');
require('@kusto/language-service-next/Kusto.Language.Bridge.min.js');

const K = Kusto.Language;
const S = K.Symbols;
const SK = K.Syntax.SyntaxKind;
const KIND_NAMES = {};
for (const name of Object.keys(SK)) if (typeof SK[name] === 'number') KIND_NAMES[SK[name]] = name;
const SYMBOL_KINDS = {};
for (const name of Object.keys(S.SymbolKind)) if (typeof S.SymbolKind[name] === 'number') SYMBOL_KINDS[S.SymbolKind[name]] = name;

// Log Analytics column type -> Kusto scalar type.
const COLUMN_TYPES = {
  string: S.ScalarTypes.String,
  int: S.ScalarTypes.Int,
  long: S.ScalarTypes.Long,
  real: S.ScalarTypes.Real,
  decimal: S.ScalarTypes.Decimal,
  bool: S.ScalarTypes.Bool,
  datetime: S.ScalarTypes.DateTime,
  dynamic: S.ScalarTypes.Dynamic,
  guid: S.ScalarTypes.Guid,
  timespan: S.ScalarTypes.TimeSpan,
};

const NUMERIC = new Set(['int', 'long', 'real', 'decimal']);
const REPORTED_SEVERITIES = new Set(['Error', 'Warning']);

// Comparison operators whose two sides must have compatible types.
const BINARY_COMPARISONS = new Set([
  SK.EqualExpression, SK.NotEqualExpression,
  SK.EqualTildeExpression, SK.BangTildeExpression,
  SK.LessThanExpression, SK.LessThanOrEqualExpression,
  SK.GreaterThanExpression, SK.GreaterThanOrEqualExpression,
]);
const IN_COMPARISONS = new Set([
  SK.InExpression, SK.NotInExpression, SK.InCsExpression, SK.NotInCsExpression,
]);

class InputError extends Error {}

// Microsoft Sentinel's `_GetWatchlist(alias)`: a watchlist's rows, with these columns and
// one string column per name in "watchlistColumns" (a watchlist's own columns vary).
const WATCHLIST_COLUMNS = '_DTItemId:string, LastUpdatedTimeUTC:datetime, SearchKey:string, WatchlistItem:dynamic';

function watchlistFunction(extra) {
  if (!Array.isArray(extra) || !extra.every((c) => typeof c === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(c))) {
    throw new InputError('"watchlistColumns" must be a list of column names');
  }
  const columns = [WATCHLIST_COLUMNS, ...extra.map((c) => `${c}:string`)].join(', ');
  return new S.FunctionSymbol.$ctor16('_GetWatchlist', '(watchlistAlias:string)', `{ datatable(${columns})[] }`, null);
}

function buildGlobals(tables, watchlistColumns) {
  if (tables === null || typeof tables !== 'object' || Array.isArray(tables)) {
    throw new InputError('"tables" must be an object mapping table name to columns');
  }
  const symbols = Object.entries(tables).map(([name, columns]) => {
    if (!Array.isArray(columns)) throw new InputError(`table ${name}: columns must be a list`);
    const cols = columns.map((col) => {
      if (!Array.isArray(col) || col.length !== 2) {
        throw new InputError(`table ${name}: each column must be [name, type]`);
      }
      const type = COLUMN_TYPES[String(col[1]).toLowerCase()];
      if (!type) throw new InputError(`table ${name}: column ${col[0]} has unknown type ${col[1]}`);
      return new S.ColumnSymbol(String(col[0]), type, null, null, null, null);
    });
    return new S.TableSymbol.$ctor4(name, cols);
  });
  symbols.push(watchlistFunction(watchlistColumns));
  return K.GlobalState.Default.WithDatabase(new S.DatabaseSymbol.ctor('db', symbols));
}

function toArray(list) {
  const out = [];
  if (list) for (let i = 0; i < list.Count; i++) out.push(list.getItem(i));
  return out;
}

// Scalar type name of an expression, or null when it cannot be judged
// (errors are already reported by the analyzer; unknown types are skipped).
function scalarTypeName(expr) {
  let type = expr && expr.ResultType;
  if (!type || type.IsError) return null;
  if (type.IsTabular) {
    // `x in (T | project c)`: compare against the single column's type.
    const columns = toArray(type.Columns);
    if (columns.length !== 1) return null;
    type = columns[0].Type;
    if (!type || type.IsError) return null;
  }
  if (!type.IsScalar || !type.Name || type.Name === 'unknown') return null;
  return type.Name;
}

function compatible(a, b) {
  return a === b || (NUMERIC.has(a) && NUMERIC.has(b));
}

// Diagnostics for comparisons between different scalar types, which the
// service accepts (string == int) but which silently never match.
// Comparisons the analyzer already rejected (KS106 etc.) are not repeated.
function typeMismatches(code) {
  const found = [];
  const report = (node, left, rightTypes) => {
    const l = scalarTypeName(left);
    if (!l) return;
    const bad = [...new Set(rightTypes.filter((r) => r && !compatible(l, r)))];
    if (bad.length === 0) return;
    found.push({
      severity: 'Error',
      code: 'ES-TYPE',
      message: `'${node.Operator.Text}' compares ${l} with ${bad.join(', ')}`,
      start: node.TextStart,
      length: node.Width,
    });
  };
  code.Syntax.WalkElements((node) => {
    if (node.SemanticDiagnostics && node.SemanticDiagnostics.Count > 0) return;
    if (BINARY_COMPARISONS.has(node.Kind)) {
      report(node, node.Left, [scalarTypeName(node.Right)]);
    } else if (IN_COMPARISONS.has(node.Kind) && node.Right) {
      report(node, node.Left, toArray(node.Right.Expressions).map((e) => scalarTypeName(e.Element)));
    }
  });
  return found;
}

function lineAndColumn(text, offset) {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

function fromKusto(d) {
  return {
    severity: d.Severity,
    code: d.Code,
    message: d.Message,
    start: d.HasLocation ? d.Start : 0,
    length: d.HasLocation ? d.Length : 0,
  };
}

// What the parser read: literals (strings unescaped), token kinds, names, comments.
function details(code) {
  const literals = [];
  const names = [];
  code.Syntax.WalkElements((node) => {
    if (node.IsLiteral && node.LiteralValueInfo !== undefined && !(node.Parent && node.Parent.Kind === SK.BracketedName)) {
      const kind = KIND_NAMES[node.Kind].replace(/LiteralExpression$/, '');
      const value = kind === 'String' ? node.LiteralValue : node.LiteralValueInfo && node.LiteralValueInfo.ValueText;
      literals.push({ kind, value });
    } else if (node.Kind === SK.NameReference) {
      const symbol = node.ReferencedSymbol;
      names.push({ name: node.SimpleName, kind: symbol ? SYMBOL_KINDS[symbol.Kind] : 'Unknown' });
    } else if (node.Kind === SK.NameDeclaration) {
      names.push({ name: node.SimpleName, kind: 'Declaration' });
    }
  });
  const tokens = [];
  const comments = [];
  for (let token = code.Syntax.GetFirstToken(); token; token = token.GetNextToken()) {
    tokens.push(KIND_NAMES[token.Kind]);
    for (const match of token.Trivia.matchAll(/\/\/[^\r\n\u2028\u2029]*/g)) comments.push(match[0]);
  }
  return { literals, tokens, names, comments };
}

function checkQuery(text, globals, withDetails) {
  const code = K.KustoCode.ParseAndAnalyze(text, globals);
  const service = new K.Editor.KustoCodeService.ctor(code);
  const diagnostics = [
    ...toArray(code.GetDiagnostics()).map(fromKusto),
    // Best-practice analyzers (e.g. join without kind, isnull on strings).
    ...toArray(service.GetAnalyzerDiagnostics(true)).map(fromKusto),
    ...typeMismatches(code),
  ].filter((d) => REPORTED_SEVERITIES.has(d.severity));
  const result = {
    diagnostics: diagnostics
      .sort((a, b) => a.start - b.start)
      .map((d) => ({
        ...d,
        ...lineAndColumn(text, d.start),
        snippet: text.substr(d.start, d.length),
      })),
  };
  return withDetails ? { ...result, ...details(code) } : result;
}

let cachedTables = null;
let cachedGlobals = null;

function run(input) {
  let doc;
  try {
    doc = JSON.parse(input);
  } catch (e) {
    throw new InputError(`stdin is not JSON: ${e.message}`);
  }
  if (!doc || !Array.isArray(doc.queries)) throw new InputError('"queries" must be a list');
  const tablesKey = JSON.stringify([doc.tables || {}, doc.watchlistColumns || []]);
  if (tablesKey !== cachedTables) {  // a --serve session usually sends the same tables every time
    cachedGlobals = buildGlobals(doc.tables || {}, doc.watchlistColumns || []);
    cachedTables = tablesKey;
  }
  const results = doc.queries.map((q) => {
    if (!q || typeof q.text !== 'string') throw new InputError('each query needs a string "text"');
    let result;
    try {
      result = checkQuery(q.text, cachedGlobals, doc.details === true);
    } catch (e) {
      // An internal failure must fail the query, not pass it or lose the batch.
      result = { diagnostics: [{
        severity: 'Error', code: 'ES-CHECK', message: `checker crashed: ${e && e.message}`,
        start: 0, length: 0, line: 1, column: 1, snippet: '',
      }] };
    }
    return { id: q.id, ...result };
  });
  return { results };
}

// One request per line; a bad request is answered with {"error": ...} and the session goes on.
function serve() {
  const lines = require('readline').createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (!line.trim()) return;
    let output;
    try {
      output = run(line);
    } catch (e) {
      output = { error: e instanceof InputError ? e.message : String(e && e.stack) };
    }
    process.stdout.write(JSON.stringify(output) + '\n');
  });
}

function main() {
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  process.stdin.on('end', () => {
    let output;
    try {
      output = run(Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
      process.stderr.write(`kusto-check: ${e instanceof InputError ? e.message : e.stack}\n`);
      process.exitCode = 2;
      return;
    }
    process.stdout.write(JSON.stringify(output) + '\n');
  });
}

if (process.argv.includes('--serve')) serve();
else main();
