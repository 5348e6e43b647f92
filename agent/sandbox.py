"""The one jinja2 environment class for everything rendered from input: plans, variables
(inventory, ``-e``) and site templates (``site_template``, our own templates): jinja2's immutable
sandbox with size and loop bounds, so a template cannot exhaust the controller's memory or time.

The sandbox stops attribute escapes but not resource use: ``'%999999999s' % 'x'``,
``'{:>999999999}'.format('x')``, ``'x'|center(999999999)``, ``s ~ s ~ s``, two nested
``range(100000)`` loops or a loop over a list of millions each build gigabytes or run for hours.
Here every operator and filter that can build a large string or list checks the size of its
result *before* building it (:data:`MAX_SIZE` characters or items), ``~`` is a checked join,
``range`` and every ``{% for %}`` count the items they hand out per render
(:data:`MAX_ITERATIONS`), and the output of a template is cut off past :data:`MAX_OUTPUT`. A
breach is a :class:`~jinja2.exceptions.SecurityError`, reported as a template failure.
Shared by every layer (it imports only jinja2).
"""

from __future__ import annotations

import operator
import re
import string
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jinja2
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

MAX_SIZE = 1_000_000  # largest string or list one operation may build
MAX_OUTPUT = 4 * MAX_SIZE  # largest text one template may render
MAX_ITERATIONS = 1_000_000  # loop and range() items handed out per render

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")
_NUMBER = re.compile(r"\d+")
_budget = threading.local()


def _check(size: int, what: str) -> None:
    if size > MAX_SIZE:
        raise SecurityError(
            f"result too large: {what} would build more than {MAX_SIZE} characters or items"
        )


def reset_budget() -> None:
    """Start a new render's iteration budget (per thread)."""
    _budget.left = MAX_ITERATIONS


def _spend() -> None:
    left = getattr(_budget, "left", MAX_ITERATIONS) - 1
    _budget.left = left
    if left < 0:
        raise SecurityError(f"loops ran more than {MAX_ITERATIONS} items in one render")


class CountedRange(Sequence[int]):
    """``range`` whose iteration spends the render's budget."""

    def __init__(self, rng: range) -> None:
        self._rng = rng

    def __len__(self) -> int:
        return len(self._rng)

    def __getitem__(self, index: Any) -> Any:
        return self._rng[index]

    def __iter__(self) -> Iterator[int]:
        for value in self._rng:  # bounded by MAX_RANGE, and by the budget
            _spend()
            yield value


def _bounded_range(*args: int) -> CountedRange:
    return CountedRange(safe_range(*args))


def _percent_widths(fmt: str) -> None:
    for width, precision in _PERCENT_SPEC.findall(fmt):
        for number in (width, precision):
            if number == "*":
                raise SecurityError("'*' widths in % formatting are not supported")
            if number and (len(number) > 7 or int(number) > MAX_SIZE):
                raise SecurityError(f"% format width {number[:12]} is too large")


def _format_widths(fmt: str) -> None:
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format raises its own error
    for _literal, _field, spec, _conversion in fields:
        if not spec:
            continue
        if "{" in spec:
            raise SecurityError("nested fields in a format spec are not supported")
        for number in _NUMBER.findall(spec):
            if len(number) > 7 or int(number) > MAX_SIZE:
                raise SecurityError(f"format width {number[:12]} is too large")


def _width(value: object, width: object, what: str) -> None:
    if isinstance(width, int) and isinstance(value, str | int | float):
        _check(max(width, 0) + len(str(value)), what)


def _replace_size(value: str, old: str, new: str, count: int = -1) -> int:
    hits = value.count(old) if old else len(value) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    return len(value) + hits * max(len(new) - len(old), 0)


def _wrap_filter(name: str, check: Callable[..., None], original: Callable[..., Any]) -> Any:
    """``original`` calling ``check`` with the same arguments first (without the context or
    environment a ``pass_*`` filter receives); the ``pass_*`` marker is kept."""
    passes = hasattr(original, "jinja_pass_arg")

    def checked(*args: Any, **kwargs: Any) -> Any:
        check(*(args[1:] if passes else args), **kwargs)
        return original(*args, **kwargs)

    checked.__name__ = f"bounded_{name}"
    if passes:
        checked.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    return checked


def _check_center(value: Any, width: int = 80) -> None:
    _width(value, width, "center")


def _check_indent(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> None:
    text = str(value)
    prefix = width if isinstance(width, str) else " " * min(max(int(width), 0), MAX_SIZE + 1)
    _check(len(text) + len(prefix) * (text.count("\n") + 1), "indent")


def _check_format(value: Any, *args: Any, **kwargs: Any) -> None:
    _percent_widths(str(value))


def _check_replace(value: Any, old: Any, new: Any, count: Any = None) -> None:
    _check(
        _replace_size(str(value), str(old), str(new), count if count is not None else -1), "replace"
    )


def _check_wordwrap(value: Any, width: int = 79, *args: Any, **kwargs: Any) -> None:
    wrap = kwargs.get("wrapstring") or (args[1] if len(args) > 1 else None) or "\n"
    pieces = len(str(value)) // max(int(width), 1) + 1
    _check(len(str(value)) + pieces * len(str(wrap)), "wordwrap")


def _check_batch(value: Any, linecount: int, *args: Any, **kwargs: Any) -> None:
    _check(int(linecount), "batch")


_SIZED = (list, tuple, str, dict, range)


def _check_join(value: Any, d: Any = "", *args: Any, **kwargs: Any) -> None:
    sep = str(kwargs.get("d", d))
    if isinstance(value, _SIZED + (CountedRange,)):
        _check(len(sep) * max(len(value) - 1, 0) + sum(len(str(v)) for v in value), "join")


_STR_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with every size and loop bound of this module."""

    intercepted_binops = frozenset(["*", "**", "%"])

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _bounded_range
        for name, check in (
            ("center", _check_center),
            ("indent", _check_indent),
            ("format", _check_format),
            ("replace", _check_replace),
            ("wordwrap", _check_wordwrap),
            ("batch", _check_batch),
            ("join", _check_join),
        ):
            original = self.filters[name]
            self.filters[name] = _wrap_filter(name, check, original)

    def call_binop(self, context: jinja2.runtime.Context, op: str, left: Any, right: Any) -> Any:
        if op == "**":
            if isinstance(right, int | float) and abs(right) > 256:
                raise SecurityError("exponent too large")
            if isinstance(left, int | float) and abs(left) > 2**64:
                raise SecurityError("base too large")
            return operator.pow(left, right)
        if op == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int):
                    _check(len(seq) * max(n, 0), "'*'")
            return operator.mul(left, right)
        if op == "%" and isinstance(left, str):
            _percent_widths(left)
            return operator.mod(left, right)
        return super().call_binop(context, op, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _format_widths(str(value.__self__))
        return wrapped

    def call(
        __self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any
    ) -> Any:  # noqa: N805
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name in _STR_WIDTH_METHODS and args:
                _width(owner, args[0], f"str.{name}")
            elif name == "expandtabs":
                size = args[0] if args else kwargs.get("tabsize", 8)
                if isinstance(size, int):
                    _check(len(owner) + owner.count("\t") * max(size, 0), "str.expandtabs")
            elif name == "replace" and len(args) >= 2:
                count = args[2] if len(args) > 2 else -1
                _check(_replace_size(owner, str(args[0]), str(args[1]), count), "str.replace")
            elif name == "join" and args:
                _check_join(args[0], owner)
        return super().call(__context, __obj, *args, **kwargs)

    def bounded_iter(self, iterable: Any) -> Iterator[Any]:
        """A ``{% for %}`` loop's items, each spending the render's budget (a ``range`` spends
        its own)."""
        if isinstance(iterable, CountedRange) or isinstance(iterable, jinja2.Undefined):
            yield from iterable
            return
        for item in iterable:  # bounded: the budget stops it
            _spend()
            yield item

    def bounded_concat(self, parts: Iterable[Any]) -> str:
        """``a ~ b ~ ...``: joined only if the result stays within :data:`MAX_SIZE`."""
        texts = [str(p) for p in parts]
        _check(sum(len(t) for t in texts), "'~'")
        return "".join(texts)


class BoundedCodeGenerator(CodeGenerator):
    """Compiles ``~`` to :meth:`BoundedSandbox.bounded_concat` (our templates never escape)
    and the iterable of every ``{% for %}`` to :meth:`BoundedSandbox.bounded_iter`."""

    def visit_For(self, node: jinja2.nodes.For, frame: Frame) -> None:
        wrap = jinja2.nodes.EnvironmentAttribute("bounded_iter", lineno=node.lineno)
        node.iter = jinja2.nodes.Call(wrap, [node.iter], [], None, None, lineno=node.lineno)
        super().visit_For(node, frame)

    def visit_Concat(self, node: jinja2.nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


BoundedSandbox.code_generator_class = BoundedCodeGenerator


def bounded_output(chunks: Iterable[str]) -> str:
    """Join a template's streamed output, stopping past :data:`MAX_OUTPUT` characters."""
    out: list[str] = []
    size = 0
    for chunk in chunks:  # bounded: stops once the output is too large
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise SecurityError(f"the template renders more than {MAX_OUTPUT} characters")
        out.append(chunk)
    return "".join(out)
