"""Load envtool.toml as named phases (compose-go's parsing.md, with lines kept):

    read → parse (tomllib) → index (key → line:col) → interpolate (${VAR}) → overlay (--env)
    → validate (pydantic) → defaults (project name) → checks (cross-field rules) → Project

Each phase is a pure function on data, except `read`.  Any failure becomes a SpecError located at
file:line:col with the key path and, where one exists, the nearest valid key as a hint.
"""

from __future__ import annotations

import os
import re
import tomllib
import typing
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from envtool._util.names import project_name_from_dir
from envtool._util.record import dataclass
from envtool.errors import Location, SpecError
from envtool.spec import checks
from envtool.spec.interpolate import Interpolation, InterpolationError, read_dotenv
from envtool.spec.locate import LocationIndex, Path, format_path, nearest
from envtool.spec.model import Project, Service
from envtool.spec.overlay import apply_overlay, overlay_problems
from envtool.spec.peek import find_file


@dataclass
class Source:
    file: FsPath
    text: str
    index: LocationIndex

    def locate(self, path: Path) -> Location:
        pos = self.index.find(path)
        return Location(str(self.file), *(pos or (None, None)))

    def error(self, path: Path, message: str, hint: str | None = None) -> SpecError:
        return SpecError(message, hint=hint, location=self.locate(path), key=format_path(path) or None)


@dataclass
class LoadedProject:
    project: Project
    file: FsPath
    directory: FsPath
    env: str | None
    warnings: list[str]

    @property
    def name(self) -> str:
        return self.project.name


def load(file: str | os.PathLike[str] | None = None, directory: str | os.PathLike[str] | None = None,
         env: str | None = None, environ: dict[str, str] | None = None) -> LoadedProject:
    path = find_file(file, directory)
    text = read(path)
    raw = parse(path, text)
    src = Source(path, text, LocationIndex(text))
    variables = dotenv(path.parent) | dict(os.environ if environ is None else environ)
    raw, warnings = interpolate(raw, variables, src)
    project = validate(raw, src)
    check_environments(raw, src)
    if env is not None:
        project = validate(overlay(raw, env, src), src)
    project = defaults(project, path.parent)
    run_checks(project, path.parent, src)
    warnings += [f"{src.locate(p)}: {msg}" for p, msg in checks.advice(project)]
    return LoadedProject(project, path, path.parent, env, warnings)


def read(path: FsPath) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise SpecError(f"cannot read {path}: {(e.strerror or str(e)).lower()}") from None


_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse(path: FsPath, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = _TOML_POS.search(msg)
        loc = Location(str(path), int(m[1]), int(m[2])) if m else Location(str(path))
        message = _TOML_POS.sub("", msg).strip().rstrip(".")
        message = message[0].lower() + message[1:] if message else "invalid TOML"
        raise SpecError(f"invalid TOML: {message}", location=loc,
                        hint="see https://toml.io for the syntax") from None


def dotenv(directory: FsPath) -> dict[str, str]:
    f = directory / ".env"
    try:
        return read_dotenv(f.read_text(encoding="utf-8")) if f.is_file() else {}
    except OSError:
        return {}


def interpolate(raw: dict[str, Any], variables: dict[str, str], src: Source
                ) -> tuple[dict[str, Any], list[str]]:
    interp = Interpolation(variables)
    try:
        out = interp.tree(raw)
    except InterpolationError as e:
        raise src.error(e.path, str(e)) from None
    warnings = [f"{src.locate(p)}: variable {name} is not set, using an empty string" for p, name in interp.unset]
    return out, warnings


def check_environments(raw: dict[str, Any], src: Source) -> None:
    errors: list[SpecError] = []
    envs = raw.get("environments", {})
    for name in envs if isinstance(envs, dict) else ():
        problems = [src.error(p.path, str(p), p.hint) for p in overlay_problems(raw, name)]
        errors.extend(problems)
        if not problems:               # a broken overlay cannot be merged; the others still are
            merged = apply_overlay(raw, name)
            for svc_name in (envs.get(name) or {}).get("services", {}) or {}:
                try:
                    Service.model_validate(merged["services"][svc_name])
                except ValidationError as e:
                    errors.extend(_convert(e, src, ("environments", name, "services", svc_name), Service))
    raise_all(errors)


def overlay(raw: dict[str, Any], env: str, src: Source) -> dict[str, Any]:
    known = list(raw.get("environments", {}) or {})
    if env not in known:
        near = nearest(env, known)
        raise SpecError(f"unknown environment {env!r}", location=Location(str(src.file)),
                        hint=f'did you mean "{near}"?' if near else
                        (f"known environments: {', '.join(known)}" if known else
                         "declare it as [environments." + env + ".services.<name>]"))
    return apply_overlay(raw, env)


def validate(raw: dict[str, Any], src: Source) -> Project:
    try:
        return Project.model_validate(raw)
    except ValidationError as e:
        raise_all(_convert(e, src, (), Project))
        raise  # unreachable: raise_all always raises for a non-empty list


def _convert(e: ValidationError, src: Source, prefix: Path, model: type[BaseModel]) -> list[SpecError]:
    out: list[SpecError] = []
    for err in e.errors(include_url=False):
        loc: Path = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p and p != "[key]"))
        hint = None
        kind = err["type"]
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
            message = f"invalid name {loc[-1]!r}: use lowercase letters, digits, '-' and '_'"
        elif kind == "extra_forbidden":
            message = "unknown key"
            near = nearest(str(loc[-1]), _field_names(model, loc[:-1]))
            hint = f'did you mean "{near}"?' if near else None
        elif kind == "missing":
            message = "required key is missing"
        else:
            message = err["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, "):]
            message = message[0].lower() + message[1:]
            if "input" in err and not isinstance(err["input"], dict | list):
                message += f" (got {err['input']!r})"
        out.append(src.error(prefix + loc, message, hint))
    return out


def _field_names(model: Any, path: Path) -> list[str]:
    """Valid keys of the model found at `path` (for nearest-key hints)."""
    current: Any = model
    for part in path:
        current = _step(current, part)
        if current is None:
            return []
    fields = _as_model(current)
    if fields is None:
        return []
    return [f.alias or n for n, f in fields.model_fields.items()]


def _as_model(t: Any) -> type[BaseModel] | None:
    if isinstance(t, type) and issubclass(t, BaseModel):
        return t
    for arg in typing.get_args(t):
        if (m := _as_model(arg)) is not None:
            return m
    return None


def _step(t: Any, part: str | int) -> Any:
    m = _as_model(t) if typing.get_origin(t) not in (dict, list) else None
    if m is not None:
        for n, f in m.model_fields.items():
            if (f.alias or n) == part or n == part:
                return f.annotation
        return None
    origin = typing.get_origin(t)
    if origin is typing.Annotated:
        return _step(typing.get_args(t)[0], part)
    if origin is dict:
        return typing.get_args(t)[1]
    if origin is list:
        return typing.get_args(t)[0]
    for arg in typing.get_args(t):
        if typing.get_origin(arg) in (dict, list) or _as_model(arg):
            return _step(arg, part)
    return None


def defaults(project: Project, directory: FsPath) -> Project:
    if project.project.name is None:
        project.project.name = project_name_from_dir(directory.resolve().name)
    return project


def run_checks(project: Project, directory: FsPath, src: Source) -> None:
    raise_all([src.error(path, msg, hint) for path, msg, hint in checks.run_checks(project, directory)])


def raise_all(errors: list[SpecError]) -> None:
    if errors:
        first = errors[0]
        first.related = list(errors[1:])
        raise first
