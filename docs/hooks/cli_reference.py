"""mkdocs hook: the CLI reference, generated from the typer app, and a check of every command line.

At build time (``hooks:`` in ``mkdocs.yml``) this module

* replaces the block between ``<!-- xlidx-cli-reference -->`` and
  ``<!-- /xlidx-cli-reference -->`` in ``docs/cli.md`` with every command's
  ``--help``, walked from ``xlidx.cli.app`` (typer's click tree), so the page cannot drift from
  the code; it imports only the CLI modules (no model, no cluster, no network);
* checks every ``xlidx …`` command line and every ``--flag`` the pages mention against the same
  tree, and logs a warning (a failure under ``mkdocs build --strict``) for one that does not exist;
* turns the Sphinx roles of the docstrings that mkdocstrings renders into links or plain code.

Run as a script it checks other Markdown files the same way, e.g. the README::

    .venv/bin/python docs/hooks/cli_reference.py README.md
"""

from __future__ import annotations

import logging
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = re.compile(r"<!-- xlidx-cli-reference -->.*?<!-- /xlidx-cli-reference -->", re.DOTALL)
WIDTH = 100
log = logging.getLogger("mkdocs.hooks.xlidx_cli")

# Flags of other programs that the pages mention in inline code on their own.
FOREIGN_FLAGS = {
    "--fast",  # bash scripts/test.sh --fast
    "--strict",  # mkdocs build --strict
}


@dataclass
class CommandInfo:
    """One node of the command tree: its options and, for a group, its subcommands."""

    path: tuple[str, ...]
    options: set[str]
    help_text: str
    short_help: str
    children: dict[str, CommandInfo] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return " ".join(self.path)


def command_tree() -> CommandInfo:
    """Walk ``xlidx.cli.app`` and render every command's plain ``--help``."""
    import typer
    import typer.main

    from xlidx.cli import app

    def walk(command: Any, path: tuple[str, ...], parent: Any) -> CommandInfo:
        command.rich_markup_mode = None  # click's plain help (a fresh object per get_command)
        ctx = typer.Context(
            command,
            info_name=path[-1],
            parent=parent,
            max_content_width=WIDTH,
            terminal_width=WIDTH,
        )
        options: set[str] = set()
        for param in command.params:
            options.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("-"))
        options.add("--help")
        info = CommandInfo(
            path=path,
            options=options,
            help_text=command.get_help(ctx).replace("\\[", "["),
            short_help=command.get_short_help_str(limit=200).replace("\\[", "["),
        )
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    info.children[name] = walk(sub, (*path, name), ctx)
        return info

    return walk(typer.main.get_command(app), ("xlidx",), None)


def _commands(node: CommandInfo) -> list[CommandInfo]:
    out = [node]
    for child in node.children.values():
        out.extend(_commands(child))
    return out


def _slug(node: CommandInfo) -> str:
    return "-".join(node.path)


def render_reference(root: CommandInfo) -> str:
    """Markdown: a table of every command, then one section per command with its ``--help``."""
    nodes = _commands(root)
    lines = ["| command | what it does |", "|---|---|"]
    for node in nodes[1:]:
        lines.append(f"| [`{node.name}`](#{_slug(node)}) | {node.short_help.replace('|', '/')} |")
    lines.append("")
    for node in nodes:
        depth = "#" * min(len(node.path) + 1, 4)
        lines += [
            f"{depth} `{node.name}` {{#{_slug(node)}}}",
            "",
            "```text",
            node.help_text.rstrip(),
            "```",
            "",
        ]
    return "\n".join(lines)


# --- checking the command lines that the pages mention -------------------------------------

_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_XLIDX = re.compile(r"(?:^|(?<=[\s(]))(?:\.venv/bin/|\./\.venv/bin/)?xlidx(?=\s|$)")
_FLAG = re.compile(r"--[a-z][a-z0-9-]*")
_CODE_LANGS = {"", "text", "bash", "sh", "shell", "console"}


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False)
    except ValueError:
        return text.split()


def _check_command(root: CommandInfo, text: str, where: str) -> list[str]:
    """Problems in one command line that starts right after ``xlidx``."""
    problems: list[str] = []
    node, ancestors, descended = root, [root], False
    for raw in _tokens(text.split(" #", 1)[0]):
        for flag in _FLAG.findall(raw) if raw.lstrip("[(").startswith("--") else []:
            if not any(flag in n.options for n in ancestors):
                problems.append(f"{where}: `{node.name}` has no option {flag}")
        if raw.startswith(("-", "[")) or not node.children:
            continue
        word = raw.strip("`,.;:")
        if word in node.children:
            node = node.children[word]
            ancestors.append(node)
            descended = True
        elif descended and re.fullmatch(r"[a-z][a-z-]*", word):
            problems.append(f"{where}: `{node.name}` has no command {word!r}")
            break
    return problems


def _check_span(root: CommandInfo, span: str, where: str, all_flags: set[str]) -> list[str]:
    match = _XLIDX.search(span)
    if match:
        return _check_command(root, span[match.end() :], where)
    first = span.split(maxsplit=1)[0] if span.strip() else ""
    if first in root.children and "--" in span:  # e.g. `ingest --retry-for`
        return _check_command(root, span, where)
    named = [n for n in _commands(root) if n.path[-1] == first]
    if named and "--" in span:  # e.g. `prune --keep N`: a subcommand, named alone
        options = {o for n in named for o in n.options} | root.options
        return [
            f"{where}: no command named {first!r} has the option {flag}"
            for flag in _FLAG.findall(span)
            if flag not in options
        ]
    if span.startswith("--"):
        return [
            f"{where}: no command has the option {flag}"
            for flag in _FLAG.findall(span.split()[0])
            if flag not in all_flags and flag not in FOREIGN_FLAGS
        ]
    return []


def check_markdown(root: CommandInfo, markdown: str, name: str) -> list[str]:
    """Every unknown command or flag in ``xlidx`` command lines and inline code of a page."""
    all_flags = {o for n in _commands(root) for o in n.options}
    problems: list[str] = []
    fence: str | None = None
    lang = ""
    pending: tuple[int, str] | None = None  # a command line that continues on the next lines

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            line_no, text = pending
            match = _XLIDX.search(text)
            if match:
                problems.extend(_check_command(root, text[match.end() :], f"{name}:{line_no}"))
            pending = None

    for number, line in enumerate(markdown.splitlines(), start=1):
        opened = _FENCE.match(line)
        if fence is None:
            if opened:
                fence, lang = opened.group(2), opened.group(3).lower()
                continue
            for span in _SPAN.findall(line):
                problems.extend(_check_span(root, span, f"{name}:{number}", all_flags))
            continue
        if line.strip().startswith(fence):
            flush()
            fence = None
            continue
        if lang not in _CODE_LANGS:
            continue
        if pending is not None and (line[:1].isspace() or pending[1].endswith("\\")):
            pending = (pending[0], pending[1].rstrip("\\") + " " + line.strip())
            continue
        flush()
        if _XLIDX.search(line):
            pending = (number, line)
    flush()
    return problems


# --- mkdocs hook entry points ---------------------------------------------------------------

_ROOT: CommandInfo | None = None


def _root() -> CommandInfo:
    global _ROOT
    if _ROOT is None:
        _ROOT = command_tree()
    return _ROOT


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Fill in the CLI reference, and warn about command lines that do not exist."""
    root = _root()
    for problem in check_markdown(root, markdown, page.file.src_uri):
        log.warning(problem)
    reference = render_reference(root) if MARKER.search(markdown) else ""
    return MARKER.sub(lambda _: reference, markdown)


_ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj):<code>(~?)([\w.]+)</code>")


def _role(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    title = target.rsplit(".", 1)[-1] if short else target
    if "." not in target:  # a name relative to the docstring's object: no page to link to
        return f"<code>{title}</code>"
    return f'<autoref identifier="{target}" optional><code>{title}</code></autoref>'


def on_page_content(html: str, **_: Any) -> str:
    """The docstrings' Sphinx roles (``:class:`~xlidx.spec.VectorSpec```), which mkdocstrings
    leaves as written: a link where the API pages document the target, else plain code."""
    return _ROLE.sub(_role, html)


def main(paths: list[str]) -> int:
    """Check Markdown files outside the site (the README); exit 1 on a problem."""
    root = _root()
    problems = [
        p for path in paths for p in check_markdown(root, Path(path).read_text("utf-8"), path)
    ]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["README.md"]))
