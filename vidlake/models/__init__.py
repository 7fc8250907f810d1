"""Molmo 2 behind a small surface: load (molmo2), tiny offline checkpoint (tiny), prompts, inputs, parsing.

Importing this package is cheap: torch and transformers load only when a model or processor does.
"""

from vidlake.models.grounding import CaptionSpan, GroundedPoint, Molmo2Answer
from vidlake.models.molmo2 import ModelRef, load_model, load_processor, resolve_model
from vidlake.models.molmo2_parse import parse_molmo2
from vidlake.models.prompts import BUILTIN_TEMPLATES, TASKS, PromptRegistry, PromptTemplate

__all__ = [
    "BUILTIN_TEMPLATES",
    "CaptionSpan",
    "GroundedPoint",
    "ModelRef",
    "Molmo2Answer",
    "PromptRegistry",
    "PromptTemplate",
    "TASKS",
    "load_model",
    "load_processor",
    "parse_molmo2",
    "resolve_model",
]
