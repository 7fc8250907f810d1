"""Versioned prompt templates for the tasks vidlake runs, and a registry users can extend.

A template is ``name@version`` plus its text. Its :attr:`PromptTemplate.fingerprint` (name, version
and a hash of the text, so an edit without a version bump is still noticed) is what enters
``task_key``: changing a prompt re-processes videos, re-running the same one writes nothing twice.

Placeholders: ``{query}`` (the user's question or object phrase), ``{start}``, ``{end}`` and
``{duration}`` (seconds, in the time frame the model sees: window-relative, see docs/models.md).

A template may say how to ask the same of an image set (``image_text``, e.g. "Describe these images"
where the video text says "this video"); without it the video text is used. Image sets run under
:meth:`PromptTemplate.for_images`, a template of its own whose fingerprint hashes that text, so the
video task keys do not depend on it.
"""

from __future__ import annotations

import hashlib
import string
from typing import Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vidlake.errors import ConfigError, invalid

__all__ = ["BUILTIN_TEMPLATES", "PromptRegistry", "PromptTemplate", "Task", "TASKS"]

Task = Literal["caption", "qa", "point", "count", "track", "ground", "anomaly"]
TASKS: tuple[str, ...] = ("caption", "qa", "point", "count", "track", "ground", "anomaly")
_FIELDS = {"query", "start", "end", "duration"}


class PromptTemplate(BaseModel):
    """One prompt: what to ask the model for one window, and how long its answer may be."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$")
    version: str = Field(min_length=1, pattern=r"^[A-Za-z0-9.\-_]+$")
    task: Task
    text: str = Field(min_length=1)
    image_text: str | None = Field(None, min_length=1)  # the same request for an image set (None: ``text``)
    max_new_tokens: int = Field(256, ge=1, le=32768)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, version: object) -> object:
        """A version written as a YAML number (``version: 2``) is the same version as ``"2"``."""
        return str(version) if isinstance(version, (int, float)) and not isinstance(version, bool) else version

    @field_validator("text", "image_text")
    @classmethod
    def _known_fields(cls, text: str | None) -> str | None:
        if text is None:
            return text
        try:
            used = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        except ValueError as exc:
            raise ValueError(f"bad placeholder syntax: {exc}") from None
        unknown = used - _FIELDS
        if unknown:
            raise ValueError(f"unknown placeholders {sorted(unknown)}; allowed: {sorted(_FIELDS)}")
        return text

    @property
    def needs_query(self) -> bool:
        return "{query}" in self.text

    @property
    def fingerprint(self) -> str:
        """``name@version#texthash``: the part of ``task_key`` that names the prompt."""
        return f"{self.name}@{self.version}#{hashlib.sha256(self.text.encode()).hexdigest()[:8]}"

    def for_images(self) -> "PromptTemplate":
        """The template image sets run under: ``image_text`` (or ``text``) as its text."""
        return PromptTemplate(name=self.name, version=self.version, task=self.task, text=self.image_text or self.text,
                              max_new_tokens=self.max_new_tokens)

    def render(self, query: str | None = None, start: float = 0.0, end: float = 0.0) -> str:
        """The user text for one window. Times are formatted like the frame timestamps (one decimal)."""
        if self.needs_query and not (query and query.strip()):
            raise ValueError(f"prompt {self.name}@{self.version} needs a query (--query)")
        values = {"query": (query or "").strip(), "start": f"{start:.1f}", "end": f"{end:.1f}",
                  "duration": f"{max(0.0, end - start):.1f}"}
        return self.text.format_map(values)


BUILTIN_TEMPLATES: tuple[PromptTemplate, ...] = (
    PromptTemplate(
        name="caption", version="1", task="caption", max_new_tokens=768,
        text="Describe what happens in this video in detail, in time order. "
        "Start each event with its time in seconds, like 'At 2.5 seconds, ...'.",
        image_text="Describe what these images show in detail, one image at a time.",
    ),
    PromptTemplate(name="qa", version="1", task="qa", max_new_tokens=256, text="{query}"),
    PromptTemplate(name="point", version="1", task="point", max_new_tokens=1024, text="Point to {query}."),
    PromptTemplate(name="count", version="1", task="count", max_new_tokens=1024, text="How many {query} are there?"),
    PromptTemplate(name="track", version="1", task="track", max_new_tokens=2048, text="Track {query}."),
    PromptTemplate(name="ground", version="1", task="ground", max_new_tokens=512, text="Point to {query}."),
    PromptTemplate(
        name="anomaly", version="1", task="anomaly", max_new_tokens=512,
        text="Is anything unusual or dangerous happening in this video? If so, say what and when, and point to it. "
        "If not, answer 'Nothing unusual.'",
        image_text="Is anything unusual or dangerous in these images? If so, say what and where, and point to it. "
        "If not, answer 'Nothing unusual.'",
    ),
)


class PromptRegistry:
    """Templates by name: the built-ins plus user templates (a user template may replace a built-in)."""

    def __init__(self, templates: Iterable[PromptTemplate] = BUILTIN_TEMPLATES):
        self._by_name: dict[str, PromptTemplate] = {}
        for template in templates:
            self._by_name[template.name] = template

    @classmethod
    def with_user_templates(cls, user: Iterable[dict | PromptTemplate]) -> "PromptRegistry":
        """Built-ins plus ``user`` (dicts from a job spec / settings); a bad one raises ``ConfigError``."""
        extra = []
        for item in user:
            try:
                extra.append(item if isinstance(item, PromptTemplate) else PromptTemplate(**item))
            except ValidationError as exc:
                problems = invalid(exc, "template")
                raise ConfigError(f"invalid prompt template {item!r}: {problems}") from None
            except TypeError as exc:
                raise ConfigError(f"invalid prompt template {item!r}: {exc}") from None
        return cls([*BUILTIN_TEMPLATES, *extra])

    def get(self, name: str) -> PromptTemplate:
        """The template called ``name`` (a task name picks its built-in template)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError(f"no prompt template {name!r}; known: {', '.join(sorted(self._by_name))}") from None

    def names(self) -> list[str]:
        return sorted(self._by_name)
