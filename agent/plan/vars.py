"""Variables and jinja2 rendering, per host.

A :class:`Scope` holds a host's variable layers in precedence order (inventory vars < play
vars < vars_files < registered results < ``-e`` extra vars; ``inventory_hostname`` and
``group_names`` are always set). Variable values may themselves be templates: they are
rendered lazily, when a template uses them, with cycle detection.

Templates run in jinja2's immutable sandbox with :class:`jinja2.StrictUndefined`; a string
that is exactly one ``{{ expression }}`` keeps the expression's native type (``"{{ 5 }}"`` is
the int 5, as in Ansible). Every failure is a :class:`~agent.errors.PlanError` naming the
file:line:col of the template and the host.
"""

from __future__ import annotations

import json
import re
import shlex
import threading
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.meta
import jinja2.nodes

from agent.errors import PlanError, SourcePos
from agent.plan.unsafe import UnsafeText
from agent.sandbox import MAX_SIZE as MAX_SIZE
from agent.sandbox import BoundedSandbox, bounded_output, reset_budget

_SINGLE = re.compile(r"^\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}$", re.S)
MAX_DEPTH = 32  # variables referring to variables


def is_template(value: object) -> bool:
    """True if ``value`` is a string holding jinja2 syntax (never for an ``!unsafe`` value)."""
    return (
        isinstance(value, str)
        and not isinstance(value, UnsafeText)
        and ("{{" in value or "{%" in value or "{#" in value)
    )


def _to_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "true", "on", "1", "y")
    return bool(value)


def _make_env() -> BoundedSandbox:
    env = BoundedSandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        optimized=False,
    )  # no constant folding outside the sandbox's checks
    env.filters["bool"] = _to_bool
    env.filters["to_json"] = lambda v: json.dumps(v, sort_keys=True)
    env.filters["quote"] = lambda v: shlex.quote(str(v))
    return env


ENV = _make_env()
_GLOBALS = frozenset(ENV.globals)


@lru_cache(maxsize=4096)
def _parse(text: str) -> tuple[jinja2.nodes.Template, frozenset[str]]:
    ast = ENV.parse(text)
    return ast, frozenset(jinja2.meta.find_undeclared_variables(ast)) - _GLOBALS


_compiling = threading.Lock()


def _compile(text: str, *, expression: bool = False) -> Any:
    """A compiled template (or lone expression), once per distinct text: every host renders
    the same task arguments at about the same moment, and the lock keeps N threads from
    compiling it N times; compiled templates are safe to render from many threads."""
    with _compiling:
        return _compiled(text, expression)


@lru_cache(maxsize=4096)
def _compiled(text: str, expression: bool) -> Any:
    if expression:
        return ENV.compile_expression(text, undefined_to_none=False)
    return ENV.from_string(text)


def names_used(text: str) -> frozenset[str]:
    """Top-level variable names a template reads.

    Raises:
        jinja2.TemplateSyntaxError: the template does not parse.
    """
    return _parse(text)[1]


def syntax_error(text: str) -> str | None:
    """The syntax error message of a template, or None when it parses."""
    try:
        _parse(text)
    except jinja2.TemplateSyntaxError as err:
        return f"template syntax error: {err.message}"
    except Exception as err:  # noqa: BLE001 - any failure to parse is the user's template
        return f"template error: {err}"
    return None


class Scope:
    """One host's variables, for rendering that host's templates.

    Args:
        host: inventory name (errors name it).
        layers: mappings from lowest to highest precedence; each may have a ``where``
            callable giving a variable's source position (used in errors).
    """

    def __init__(
        self,
        host: str,
        layers: list[Mapping[str, Any]],
        where: Callable[[str], SourcePos | str | None] | None = None,
    ) -> None:
        self.host = host
        self._raw: dict[str, Any] = {}
        for layer in layers:
            self._raw.update(layer)
        self._where = where or (lambda name: None)
        self._resolved: dict[str, Any] = {}
        self._fixed: set[str] = set()
        self._active: list[str] = []

    def names(self) -> frozenset[str]:
        return frozenset(self._raw)

    def set(self, name: str, value: Any) -> None:
        """Set a variable to an already-rendered value (``register``, ``item``)."""
        self._raw[name] = value
        self._fixed.add(name)
        self._forget_rendered()
        self._resolved[name] = value

    def _forget_rendered(self) -> None:
        """Values rendered from templates may depend on a name just set: render them again on
        use. Values set with :meth:`set` are final and never rendered (host output stays
        text, even when it looks like a template)."""
        self._resolved = {
            n: v
            for n, v in self._resolved.items()
            if n in self._fixed
            or not isinstance(self._raw.get(n), (str, list, dict))
            or (isinstance(self._raw[n], str) and not is_template(self._raw[n]))
        }

    def unset(self, name: str) -> None:
        self._raw.pop(name, None)
        self._resolved.pop(name, None)
        self._fixed.discard(name)
        self._forget_rendered()

    def resolve(self, name: str, used_at: SourcePos | str | None = None) -> Any:
        """The rendered value of variable ``name``.

        Raises:
            PlanError: the variable's own template fails, or variables refer to each other
                in a cycle.
        """
        if name in self._resolved:
            return self._resolved[name]
        where = self._where(name) or used_at or self.host
        if name in self._active or len(self._active) > MAX_DEPTH:
            chain = " -> ".join([*self._active, name])
            raise PlanError(
                f"variables refer to each other in a loop: {chain} (host {self.host})", where=where
            )
        self._active.append(name)
        try:
            value = self.render(self._raw[name], where)
        finally:
            self._active.pop()
        self._resolved[name] = value
        return value

    def _context(
        self, text: str, where: SourcePos | str, extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        ctx: dict[str, Any] = {}
        for name in names_used(text):
            if name in extra:
                ctx[name] = extra[name]
            elif name in self._raw:
                ctx[name] = self.resolve(name, where)
        return ctx  # anything else is StrictUndefined: an error on use, fine for "is defined"

    def render_text(
        self, text: str, where: SourcePos | str, extra: Mapping[str, Any] | None = None
    ) -> Any:
        """Render one template string (native type for a lone ``{{ expr }}``).

        ``extra`` adds names on top of the scope (placeholders while checking a plan).

        Raises:
            PlanError: syntax error, undefined variable or attribute, any template failure.
        """
        if not is_template(text):
            return text
        try:
            ctx = self._context(text, where, extra or {})
            reset_budget()
            single = _SINGLE.match(text)
            if single:
                result = _compile(single.group("expr"), expression=True)(**ctx)
                if isinstance(result, jinja2.StrictUndefined):
                    result._fail_with_undefined_error()
                return result
            return bounded_output(_compile(text).generate(**ctx))
        except PlanError:
            raise
        except jinja2.TemplateSyntaxError as err:
            raise PlanError(f"template syntax error: {err.message}", where=where) from err
        except jinja2.UndefinedError as err:
            raise PlanError(f"{_undefined(err)} for host {self.host}", where=where) from err
        except Exception as err:  # noqa: BLE001 - whatever a user's template raises
            msg = " ".join(str(err).split())[:200]
            raise PlanError(
                f"template failed for host {self.host}: {type(err).__name__}: {msg}", where=where
            ) from err

    def render(
        self, value: Any, where: SourcePos | str, extra: Mapping[str, Any] | None = None
    ) -> Any:
        """Render every template string inside ``value`` (lists and mappings recursively)."""
        if isinstance(value, str):
            return self.render_text(value, where, extra)
        if isinstance(value, list):
            item_where = getattr(value, "where", None)
            return [
                self.render(v, item_where(i) if item_where else where, extra)
                for i, v in enumerate(value)
            ]
        if isinstance(value, dict):
            value_where = getattr(value, "where", None)
            return {
                k: self.render(v, value_where(k) if value_where else where, extra)
                for k, v in value.items()
            }
        return value

    def evaluate(
        self, expr: str | bool, where: SourcePos | str, extra: Mapping[str, Any] | None = None
    ) -> bool:
        """Evaluate a ``when`` condition (a bare expression, or a ``{{ }}`` template).

        Raises:
            PlanError: as :meth:`render_text`.
        """
        if isinstance(expr, bool):
            return expr
        text = expr if is_template(expr) else "{{ " + expr + " }}"
        return _to_bool(self.render_text(text, where, extra))

    def view(self) -> ScopeView:
        """A read-only mapping of every variable, rendered on access (modules' ``ctx.vars``)."""
        return ScopeView(self)

    def render_file(self, text: str, source: str) -> str:
        """Render a template file's text (the ``template`` module); all names resolved.

        Raises:
            PlanError: naming ``source`` and the template line.
        """
        try:
            ast_names = names_used(text)
        except jinja2.TemplateSyntaxError as err:
            raise PlanError(
                f"template syntax error: {err.message}", where=SourcePos(source, err.lineno)
            ) from err
        ctx = {n: self.resolve(n) for n in ast_names if n in self._raw}
        try:
            reset_budget()
            return bounded_output(_compile(text).generate(**ctx))
        except jinja2.UndefinedError as err:
            raise PlanError(
                f"{_undefined(err)} for host {self.host}",
                where=SourcePos(source, _template_line(err)),
            ) from err
        except Exception as err:  # noqa: BLE001
            msg = " ".join(str(err).split())[:200]
            raise PlanError(
                f"template failed for host {self.host}: {msg}",
                where=SourcePos(source, _template_line(err)),
            ) from err


class ScopeView(Mapping[str, Any]):
    """Read-only, lazily rendered view of a :class:`Scope`; a variable whose template fails
    raises :class:`~agent.errors.PlanError` when read."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def __getitem__(self, name: str) -> Any:
        if name not in self._scope.names():
            raise KeyError(name)
        return self._scope.resolve(name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._scope.names()))

    def __len__(self) -> int:
        return len(self._scope.names())

    def __contains__(self, name: object) -> bool:
        return name in self._scope.names()


_UNDEFINED = re.compile(r"^'([A-Za-z_][A-Za-z0-9_]*)' is undefined$")


def _undefined(err: jinja2.UndefinedError) -> str:
    """Jinja's "'x' is undefined" as "undefined variable 'x'"; attribute errors as they are."""
    text = err.message or "undefined value"
    match = _UNDEFINED.match(text)
    return f"undefined variable {match.group(1)!r}" if match else text


def _template_line(err: BaseException) -> int:
    tb = err.__traceback__
    line = 0
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
