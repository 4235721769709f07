"""How the command line's help and usage errors read.

- A placeholder names the value (`RULES...`, `DIR`, `N`), never a Python type: typer prints an
  argument as `PATH <list[Path]>` and its usage as `{PATH}...` whatever its metavar says.
- The verb list gives each verb's whole first sentence: click cuts it with "..." to fit the
  terminal's width, mid-sentence; the formatter wraps it instead.
- A global option given after its verb (`entra-sigma validate rules --debug`) is refused by the
  verb as unknown; the error says where it goes.
"""

from __future__ import annotations

from typer._click.exceptions import NoSuchOption
from typer.core import TyperArgument, TyperGroup

GLOBAL_OPTIONS = ("--debug", "--version")
HELP_OPTIONS = ["-h", "--help"]


class PlainArgument(TyperArgument):
    """An argument shown by its name alone (`RULES...`), described by its help."""

    def display_type_rich(self, ctx) -> None:
        return None

    def _rich_display_name(self) -> str:
        return self.display_name_raw + ("..." if self.nargs != 1 else "")

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


class HelpGroup(TyperGroup):
    """A group whose verb list never cuts a description short."""

    def format_commands(self, ctx, formatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NoSuchOption as error:
            if error.option_name in GLOBAL_OPTIONS and error.ctx is not None:
                path = error.ctx.command_path.split(" ", 1)
                verb = path[1] if len(path) > 1 else ""
                error.message = (f"No such option: {error.option_name} (a global option: it goes before the verb, "
                                 f"as in `{path[0]} {error.option_name} {verb} ...`)")
            raise


def plain_arguments(command) -> None:
    """Show every argument of `command` and of its sub-commands by its name alone."""
    for param in command.params:
        if type(param) is TyperArgument:
            param.__class__ = PlainArgument
    for sub in getattr(command, "commands", {}).values():
        plain_arguments(sub)
