"""Own models: `path/to/file.py:factory` or `package.module:factory`, with optional keyword arguments.

Syntax (documented in docs/own-models.md): `SOURCE:FACTORY[:KEY=VALUE[:KEY=VALUE...]]`, e.g.
`nets/my_net.py:build:width=2:act=relu` or `my_pkg.models:build:depth=3`. Colons separate the keyword
arguments because commas separate the models of `--models`. A VALUE is read as a Python literal (int,
float, bool, None or a quoted string); a bare word that is no literal is a string (`act=relu`).

The factory is called with those keyword arguments and must return an `nn.Module` in training form; the
harness converts it with `bench.reparam.to_deploy`. `ModelInfo.source` names where the factory came from:
the file's resolved path or the module, and the sha256 of that file, so a row can say which code ran.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator

from torch import nn

from bench.usage import UsageError

KWARG_TYPES: tuple[type, ...] = (bool, int, float, str, type(None))
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class UserModelError(UsageError):
    """An own-model spec that cannot be resolved; the message names the spec."""


MODEL_CODE_FAILURES: tuple[type[BaseException], ...] = (Exception, SystemExit)
"""What a model's code (its file, factory, conversion or forward) may raise that is its failure, not
ours: every Exception and `sys.exit()` (SystemExit, e.g. a script's argparse run at import), which would
otherwise end the command with exit 0 or a worker without a word. Caught where a model's code runs while
measuring or exporting; a KeyboardInterrupt there is a signal stopping the process and is left to its
handler. GeneratorExit is the interpreter closing a generator, never a model's failure."""
USER_CODE_RAISES: tuple[type[BaseException], ...] = (*MODEL_CODE_FAILURES, KeyboardInterrupt)
"""At import and factory call, when the spec is checked before anything runs, a KeyboardInterrupt too:
a model file that raises it is an error naming the spec, not a traceback."""


def raised(exc: BaseException) -> str:
    """`Type: message`, saying what a SystemExit or KeyboardInterrupt from a model's code means."""
    if isinstance(exc, SystemExit):
        return (f"SystemExit({exc.code!r}): the model's code called sys.exit() (or parsed the command line "
                "with argparse); a model must not exit or read the command line")
    if isinstance(exc, KeyboardInterrupt):
        return "KeyboardInterrupt: the model's code raised it (or it was interrupted)"
    return f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def _as_own_program(source: str) -> Iterator[None]:
    """While an own model's code runs, `sys.argv` is `[source]`: a file that parses the command line at
    import sees no arguments of ours, and any usage text it prints names the file, not `bench`."""
    saved = sys.argv
    sys.argv = [source]
    try:
        yield
    finally:
        sys.argv = saved


@dataclass(frozen=True)
class UserSpec:
    """A parsed spec: where the factory lives, its name and its keyword arguments."""

    spec: str
    source: str
    factory: str
    kwargs: tuple[tuple[str, object], ...] = ()

    @property
    def is_file(self) -> bool:
        return self.source.endswith(".py")


def looks_like_user_spec(name: str, prefixes: tuple[str, ...] = ()) -> bool:
    """True for `x.py:f` and `a.b:f` (and `mod:f` whose `mod` is no registered external prefix)."""
    source, sep, rest = name.partition(":")
    return bool(sep and rest) and source not in prefixes and (source.endswith(".py") or bool(
        _MODULE_PATH.match(source)))


def _literal(spec: str, key: str, text: str) -> object:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if _IDENTIFIER.match(text):
            return text
        raise UserModelError(f"model '{spec}': value of '{key}' ({text!r}) is no Python literal") from None
    if not isinstance(value, KWARG_TYPES):
        raise UserModelError(f"model '{spec}': value of '{key}' is a {type(value).__name__}; "
                             "valid: int, float, bool, None, string")
    return value


def parse(spec: str) -> UserSpec:
    """Split `SOURCE:FACTORY[:KEY=VALUE...]`; raises UserModelError naming what is malformed."""
    source, _, rest = spec.partition(":")
    factory, *pairs = rest.split(":")
    if not source or not _IDENTIFIER.match(factory):
        raise UserModelError(f"model '{spec}': expected FILE.py:FACTORY or package.module:FACTORY"
                             "[:KEY=VALUE...], with FACTORY a Python name")
    kwargs: dict[str, object] = {}
    for pair in pairs:
        key, eq, text = pair.partition("=")
        if not eq or not _IDENTIFIER.match(key):
            raise UserModelError(f"model '{spec}': keyword argument '{pair}' is not KEY=VALUE")
        if key in kwargs or key == "deploy":
            raise UserModelError(f"model '{spec}': keyword '{key}' is repeated or reserved")
        kwargs[key] = _literal(spec, key, text)
    return UserSpec(spec, source, factory, tuple(kwargs.items()))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.lru_cache(maxsize=None)
def _load_file(path: Path, digest: str) -> ModuleType:
    """Import a file once per content (the digest is in the key: an edited file is imported anew)."""
    name = f"bench_user_model_{digest[:16]}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


def _import(parsed: UserSpec) -> tuple[ModuleType, str, str]:
    """The module holding the factory, where it came from (the resolved file, or `module (file)`) and
    the sha256 of that file ("" where the module has no file)."""
    try:
        if parsed.is_file:
            path = Path(parsed.source).expanduser().resolve()
            if not path.is_file():
                raise UserModelError(f"model '{parsed.spec}': file {path} does not exist")
            digest = _sha256(path)
            with _as_own_program(parsed.source):
                return _load_file(path, digest), str(path), digest
        with _as_own_program(parsed.source):
            module = importlib.import_module(parsed.source)
    except UserModelError:
        raise
    except USER_CODE_RAISES as exc:  # an own module may raise anything while importing
        raise UserModelError(f"model '{parsed.spec}': importing '{parsed.source}' failed: "
                             f"{raised(exc)}") from exc
    file = getattr(module, "__file__", None)
    digest = _sha256(Path(file)) if file and Path(file).is_file() else ""
    return module, f"{parsed.source} ({file})", digest


@dataclass(frozen=True)
class UserModel:
    """A resolved spec: the factory with its keyword arguments bound, and where it came from."""

    spec: UserSpec
    factory: Callable[..., object]
    origin: str
    sha256: str = ""

    @property
    def source(self) -> str:
        """`origin sha256:<digest>`: one string saying which code ran."""
        return f"{self.origin} sha256:{self.sha256}" if self.sha256 else self.origin

    def build(self) -> nn.Module:
        """Call the factory; raises UserModelError when it fails or returns no nn.Module."""
        try:
            with _as_own_program(self.spec.source):
                model = self.factory(**dict(self.spec.kwargs))
        except USER_CODE_RAISES as exc:
            raise UserModelError(f"model '{self.spec.spec}': the factory raised {raised(exc)}") from exc
        if not isinstance(model, nn.Module):
            raise UserModelError(f"model '{self.spec.spec}': the factory returned a {type(model).__name__}, "
                                 "not a torch.nn.Module")
        return model


def resolve(spec: str) -> UserModel:
    """Parse, import, check the factory is callable and returns an nn.Module (called once per source)."""
    parsed = parse(spec)
    module, origin, digest = _import(parsed)
    factory = getattr(module, parsed.factory, None)
    if factory is None:
        raise UserModelError(f"model '{spec}': '{parsed.source}' has no attribute '{parsed.factory}'")
    if not callable(factory):
        raise UserModelError(f"model '{spec}': '{parsed.factory}' is a {type(factory).__name__}, not callable")
    resolved = UserModel(parsed, factory, origin, digest)
    _check_builds(resolved)
    return resolved


_BUILT: set[tuple[str, str]] = set()


def _check_builds(resolved: UserModel) -> None:
    """Build once per (spec, source) so plan-time checks catch a factory returning no module."""
    key = (resolved.spec.spec, resolved.source)
    if key not in _BUILT:
        resolved.build()
        _BUILT.add(key)


def builder(user_model: UserModel) -> Callable[..., nn.Module]:
    """A registry builder: the training form, or `to_deploy` of a freshly built one for `deploy=True`."""

    def build(deploy: bool = False, **kwargs) -> nn.Module:
        if kwargs:
            raise TypeError(f"model '{user_model.spec.spec}' takes its arguments in the spec "
                            f"(SOURCE:FACTORY:KEY=VALUE), not {sorted(kwargs)}")
        model = user_model.build()
        if not deploy:
            return model
        from bench.reparam import to_deploy

        return to_deploy(model.eval())

    return build
