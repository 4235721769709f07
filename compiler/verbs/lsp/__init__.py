"""`entra-sigma lsp`: a language server that checks, completes and explains rules with the compiler itself.

server.py wires LSP messages to one module per feature: checks.py (what `validate` and `test`
find, through project.py's view of the workspace), publish.py and fixes.py (diagnostics and
quick fixes), completion.py, hover.py, query.py (the compiled KQL, as a command and a code
lens), navigation.py (definition, document symbols); text.py reads the cursor's place in a
YAML file that may be half typed, vocabulary.py the project's data, and placeholders.py is
the seam for the environments' placeholders.
"""
