# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel .config files, config fragments and the Kconfig dependencies behind them.

The build merges fragments into a base .config, lets ``make olddefconfig`` resolve
it, and then must prove that every symbol a fragment asked for survived. Kconfig
drops a symbol silently when its ``depends on`` is not met, so a dropped symbol is
explained by reading the ``depends on`` of that symbol (and of the ``if``/``menu``
blocks around it) from the very source tree that was configured, and evaluating it
against the resolved .config.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError

_SET_LINE = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
_UNSET_LINE = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set$")

TRISTATE_RANK = {"n": 0, "m": 1, "y": 2}


def parse_config(text: str, origin: str = "<config>") -> Dict[str, str]:
    """Symbols of a .config or fragment, without the CONFIG_ prefix; unset symbols map to ``n``.

    Values are kept as written (strings with their quotes), because that is how they
    come back from olddefconfig and how they are compared.
    """
    values: Dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        unset = _UNSET_LINE.match(line)
        if unset:
            values[unset.group(1)] = "n"
            continue
        if line.startswith("#"):
            continue
        assignment = _SET_LINE.match(line)
        if not assignment:
            raise P2PError(
                "%s line %d: %r is not a config line" % (origin, number, raw),
                fix="write CONFIG_NAME=value or '# CONFIG_NAME is not set'",
            )
        values[assignment.group(1)] = assignment.group(2)
    return values


def read_config(path: str) -> Dict[str, str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_config(handle.read(), origin=path)
    except FileNotFoundError:
        raise P2PError("config file %s does not exist" % path, fix="give the path of an existing file") from None


@dataclass(frozen=True)
class Request:
    """One symbol value asked for by a fragment."""

    symbol: str
    value: str
    fragment: str


def merge_fragments(paths: Iterable[str]) -> Dict[str, Request]:
    """Every symbol the fragments ask for; a later fragment overrides an earlier one, as in merge_config.sh."""
    requests: Dict[str, Request] = {}
    for path in paths:
        for symbol, value in read_config(path).items():
            requests[symbol] = Request(symbol, value, path)
    return requests


def render_config(values: Mapping[str, str]) -> str:
    lines = []
    for symbol, value in values.items():
        if value == "n":
            lines.append("# CONFIG_%s is not set" % symbol)
        else:
            lines.append("CONFIG_%s=%s" % (symbol, value))
    return "\n".join(lines) + "\n"


def apply_requests(base: Mapping[str, str], requests: Mapping[str, Request]) -> Dict[str, str]:
    """The base .config with every requested value written over it (olddefconfig resolves the rest)."""
    merged = dict(base)
    for symbol, request in requests.items():
        merged[symbol] = request.value
    return merged


def satisfies(asked: str, received: str) -> bool:
    """``m`` is satisfied by ``y``: a base without module support builds the driver in."""
    if asked == received:
        return True
    return asked == "m" and received == "y"


# --- Kconfig: where each symbol is defined and what it depends on ---------------------------


@dataclass
class SymbolDefinition:
    """One ``config``/``menuconfig`` entry; a symbol may be defined in several places."""

    location: str
    depends: List[str] = field(default_factory=list)
    has_prompt: bool = False


_ENTRY = re.compile(r"^(?:config|menuconfig)\s+([A-Za-z0-9_]+)\s*$")
_SOURCE = re.compile(r'^(?:o?source|rsource|orsource)\s+"?([^"\s]+)"?')
_DEPENDS = re.compile(r"^depends\s+on\s+(.+)$")
_PROMPT = re.compile(r'^(?:prompt\s+"|(?:bool|tristate|string|int|hex)\s+")')
_BLOCK_CLOSERS = {"endif": "if", "endmenu": "menu", "endchoice": "choice"}


class KconfigTree:
    """The Kconfig files of one source tree, read by following ``source`` from the top-level Kconfig.

    Only what explains a dropped symbol is kept: each definition's own ``depends on``
    plus those inherited from enclosing ``if`` and ``menu`` blocks.
    """

    def __init__(self, source_tree: str, srcarch: str = "x86") -> None:
        self.source_tree = source_tree
        self.srcarch = srcarch
        self.definitions: Dict[str, List[SymbolDefinition]] = {}
        top = os.path.join(source_tree, "Kconfig")
        if not os.path.isfile(top):
            raise P2PError(
                "%s has no top-level Kconfig" % source_tree,
                fix="point at the root of an extracted kernel source tree",
            )
        self._read("Kconfig")

    def _expand(self, path: str) -> str:
        return path.replace("$(SRCARCH)", self.srcarch).replace("$SRCARCH", self.srcarch)

    def _read(self, relative: str) -> None:
        path = os.path.join(self.source_tree, relative)
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = _joined_lines(handle.read())
        # Each open block: (kind, condition it adds or None).
        blocks: List[Tuple[str, Optional[str]]] = []
        current: Optional[SymbolDefinition] = None
        in_help = False
        help_indent: Optional[int] = None
        for number, raw in lines:
            stripped = raw.strip()
            if in_help:
                # Help text ends at the first line indented less than its own first line.
                indent = len(raw.expandtabs()) - len(raw.expandtabs().lstrip())
                if not stripped:
                    continue
                if help_indent is None:
                    help_indent = indent
                if indent >= help_indent:
                    continue
                in_help = False
            if not stripped or stripped.startswith("#"):
                continue
            keyword = stripped.split(None, 1)[0]
            if keyword in ("help", "---help---"):
                in_help = True
                help_indent = None
                continue
            entry = _ENTRY.match(stripped)
            if entry:
                current = SymbolDefinition(
                    location="%s:%d" % (relative, number),
                    depends=[condition for _, condition in blocks if condition],
                )
                self.definitions.setdefault(entry.group(1), []).append(current)
                continue
            if keyword == "if":
                blocks.append(("if", stripped[2:].strip()))
                current = None
            elif keyword in ("menu", "choice"):
                blocks.append((keyword, None))
                current = None
            elif keyword in _BLOCK_CLOSERS:
                _close_block(blocks, _BLOCK_CLOSERS[keyword], "%s:%d" % (relative, number))
                current = None
            elif keyword in ("comment", "mainmenu"):
                current = None
            elif _SOURCE.match(stripped):
                current = None
                self._source(_SOURCE.match(stripped).group(1), relative, optional=keyword.startswith("o"))  # type: ignore[union-attr]
            else:
                depends = _DEPENDS.match(stripped)
                if depends:
                    if current is not None:
                        current.depends.append(depends.group(1).strip())
                    elif blocks and blocks[-1][0] == "menu" and blocks[-1][1] is None:
                        # A menu's own "depends on" applies to everything inside it.
                        blocks[-1] = ("menu", depends.group(1).strip())
                elif current is not None and _PROMPT.match(stripped):
                    current.has_prompt = True

    def _source(self, target: str, including: str, optional: bool) -> None:
        target = self._expand(target)
        if "$" in target:
            return  # A path built from a variable we do not model (e.g. per-toolchain); none defines our symbols.
        relative = target
        if (
            including
            and os.path.basename(including) != including
            and not os.path.exists(os.path.join(self.source_tree, target))
        ):
            relative = os.path.join(os.path.dirname(including), target)
        if not os.path.exists(os.path.join(self.source_tree, relative)):
            if optional:
                return
            raise P2PError(
                "%s sources %s, which is missing from %s" % (including, target, self.source_tree),
                fix="extract the complete kernel source tree",
            )
        self._read(relative)


def _joined_lines(text: str) -> List[Tuple[int, str]]:
    """Lines with backslash continuations joined, each with the number of its first physical line."""
    joined: List[Tuple[int, str]] = []
    pending = ""
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append((start, pending + line))
        pending = ""
    if pending:
        joined.append((start, pending))
    return joined


def _close_block(blocks: List[Tuple[str, Optional[str]]], kind: str, where: str) -> None:
    if not blocks or blocks[-1][0] != kind:
        raise P2PError("%s: unbalanced %s in Kconfig" % (where, kind), fix="check the kernel source tree")
    blocks.pop()


# --- Kconfig expressions -------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(\|\||&&|!=|<=|>=|[()!=<>]|"[^"]*"|[A-Za-z0-9_.$-]+)')


def _tokenize(expression: str) -> List[str]:
    tokens = []
    position = 0
    text = expression.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise P2PError("cannot read Kconfig expression %r" % expression, fix="report this kernel version")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


class _Evaluator:
    """Tristate evaluation of a ``depends on`` expression against a resolved .config."""

    def __init__(self, expression: str, values: Mapping[str, str]) -> None:
        self.tokens = _tokenize(expression)
        self.position = 0
        self.values = values

    def evaluate(self) -> int:
        result = self._or()
        if self.position != len(self.tokens):
            raise P2PError(
                "cannot read Kconfig expression %r" % " ".join(self.tokens), fix="report this kernel version"
            )
        return result

    def _peek(self) -> Optional[str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _or(self) -> int:
        result = self._and()
        while self._peek() == "||":
            self._take()
            result = max(result, self._and())
        return result

    def _and(self) -> int:
        result = self._not()
        while self._peek() == "&&":
            self._take()
            result = min(result, self._not())
        return result

    def _not(self) -> int:
        if self._peek() == "!":
            self._take()
            return 2 - self._not()
        return self._comparison()

    def _comparison(self) -> int:
        if self._peek() == "(":
            self._take()
            result = self._or()
            self._take()  # ")"
            return result
        left = self._take()
        operator = self._peek()
        if operator in ("=", "!=", "<", ">", "<=", ">="):
            self._take()
            right = self._take()
            return 2 if _compare(self._value(left), operator, self._value(right)) else 0
        return TRISTATE_RANK.get(self._value(left), 0)

    def _value(self, token: str) -> str:
        if token.startswith('"'):
            return token.strip('"')
        if token in TRISTATE_RANK:
            return token
        value = self.values.get(token)
        if value is None:
            # Not in .config: an undefined or invisible symbol is n; a literal number stays itself.
            return token if re.fullmatch(r"-?(0x)?[0-9a-fA-F]+", token) else "n"
        return value.strip('"')


def _compare(left: str, operator: str, right: str) -> bool:
    if operator == "=":
        return left == right
    if operator == "!=":
        return left != right
    try:
        left_number, right_number = int(left, 0), int(right, 0)
    except ValueError:
        return False
    return {
        "<": left_number < right_number,
        ">": left_number > right_number,
        "<=": left_number <= right_number,
        ">=": left_number >= right_number,
    }[operator]


def evaluate(expression: str, values: Mapping[str, str]) -> str:
    """The tristate value (``n``, ``m`` or ``y``) of a Kconfig expression."""
    return {0: "n", 1: "m", 2: "y"}[_Evaluator(expression, values).evaluate()]


def _conjuncts(expression: str) -> List[str]:
    """The top-level ``&&`` terms of an expression, so the unmet one can be named alone."""
    terms, depth, start = [], 0, 0
    for index, char in enumerate(expression):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and expression.startswith("&&", index):
            terms.append(expression[start:index].strip())
            start = index + 2
    terms.append(expression[start:].strip())
    return [term for term in terms if term]


# --- Verification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DroppedSymbol:
    symbol: str
    asked: str
    received: str
    fragment: str
    reason: str

    def __str__(self) -> str:
        return "CONFIG_%s: asked %s (%s), received %s: %s" % (
            self.symbol,
            self.asked,
            os.path.basename(self.fragment),
            self.received,
            self.reason,
        )


def explain(symbol: str, asked: str, values: Mapping[str, str], kconfig: KconfigTree) -> str:
    """Why olddefconfig did not keep ``symbol`` at ``asked``: the unmet dependency when there is one."""
    definitions = kconfig.definitions.get(symbol)
    if not definitions:
        return "no Kconfig entry defines %s in this kernel (renamed or removed)" % symbol
    needed = TRISTATE_RANK.get(asked, 2) if asked != "n" else 0
    unmet: List[str] = []
    for definition in definitions:
        for expression in definition.depends:
            for term in _conjuncts(expression):
                got = evaluate(term, values)
                if TRISTATE_RANK[got] < max(needed, 1):
                    unmet.append("'%s' is %s (%s)" % (term, got, definition.location))
    if unmet:
        return "unmet dependency: " + "; ".join(dict.fromkeys(unmet))
    if asked != "n" and not any(definition.has_prompt for definition in definitions):
        return "%s has no prompt (%s): only another symbol's select can set it" % (
            symbol,
            definitions[0].location,
        )
    if asked == "n":
        return "another enabled symbol selects it"
    return "dependencies are met; a choice, range or select decided the value (%s)" % definitions[0].location


def verify(requests: Mapping[str, Request], resolved: Mapping[str, str], kconfig: KconfigTree) -> List[DroppedSymbol]:
    """Every requested symbol whose resolved value does not satisfy the request, with its reason."""
    dropped = []
    for symbol, request in requests.items():
        received = resolved.get(symbol, "n")
        if satisfies(request.value, received):
            continue
        dropped.append(
            DroppedSymbol(
                symbol=symbol,
                asked=request.value,
                received=received,
                fragment=request.fragment,
                reason=explain(symbol, request.value, resolved, kconfig),
            )
        )
    return dropped


def require_all(requests: Mapping[str, Request], resolved: Mapping[str, str], kconfig: KconfigTree) -> None:
    """Raise one error listing every dropped symbol, or return when the config is what was asked."""
    dropped = verify(requests, resolved, kconfig)
    if dropped:
        raise P2PError(
            "%d config symbol(s) did not survive olddefconfig: %s" % (len(dropped), " | ".join(map(str, dropped))),
            fix="enable the unmet dependencies in a fragment (or pick a config base that has them)",
        )
