"""Prompt templates: versioned, validated, extensible, and their fingerprint tracks the text."""

from __future__ import annotations

import pytest

from vidlake.errors import ConfigError
from vidlake.models.prompts import BUILTIN_TEMPLATES, TASKS, PromptRegistry, PromptTemplate


def test_every_task_has_a_builtin_template():
    registry = PromptRegistry()
    for task in TASKS:
        template = registry.get(task)
        assert template.task == task and template.version and template.max_new_tokens > 0
    assert registry.get("track").render("the red car") == "Track the red car."
    assert registry.get("point").render("  the window above the sink ") == "Point to the window above the sink."
    assert registry.get("qa").render("What is the dog doing?") == "What is the dog doing?"


def test_fingerprint_names_version_and_text():
    a = PromptTemplate(name="mine", version="1", task="qa", text="Q: {query}")
    b = PromptTemplate(name="mine", version="1", task="qa", text="Question: {query}")
    c = PromptTemplate(name="mine", version="2", task="qa", text="Q: {query}")
    assert a.fingerprint.startswith("mine@1#")
    assert len({a.fingerprint, b.fingerprint, c.fingerprint}) == 3
    assert a.fingerprint == PromptTemplate(name="mine", version="1", task="qa", text="Q: {query}").fingerprint


def test_queries_and_placeholders_are_checked():
    with pytest.raises(ValueError, match="needs a query"):
        PromptRegistry().get("count").render(None)
    with pytest.raises(ValueError, match="unknown placeholders"):
        PromptTemplate(name="bad", version="1", task="qa", text="{question}")
    span = PromptTemplate(name="span", version="1", task="caption", text="Describe the video from {start} to {end} seconds.")
    assert span.render(start=0.0, end=12.25) == "Describe the video from 0.0 to 12.2 seconds."
    assert not span.needs_query


def test_user_templates_extend_and_replace():
    user = [
        {"name": "count-events", "version": "3", "task": "count", "text": "How many times does {query} happen?"},
        {"name": "caption", "version": "7", "task": "caption", "text": "Describe this video.", "max_new_tokens": 99},
    ]
    registry = PromptRegistry.with_user_templates(user)
    assert registry.get("count-events").render("a jump") == "How many times does a jump happen?"
    assert registry.get("caption").version == "7" and registry.get("caption").max_new_tokens == 99
    assert {t.name for t in BUILTIN_TEMPLATES} <= set(registry.names())
    with pytest.raises(ConfigError, match="invalid prompt template"):
        PromptRegistry.with_user_templates([{"name": "x", "task": "dance", "text": "hi", "version": "1"}])
    with pytest.raises(ConfigError, match="no prompt template 'nope'"):
        registry.get("nope")
