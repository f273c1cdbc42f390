"""The registry: Langflow ``data.type`` -> component class.

Built-in classes are listed here; installed packages add more through the
``flowserve.components`` entry point group (each entry names a Component
subclass). A plugin cannot replace a built-in type: that would let an
installed package silently change what an existing flow does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any

import structlog

from flowserve.components.agent import Agent
from flowserve.components.arxiv import ArXivComponent
from flowserve.components.assemblyai import AssemblyAITranscriber
from flowserve.components.batch import BatchRunComponent
from flowserve.components.data import (
    LegacyParser,
    ParserComponent,
    SplitText,
    TypeConverterComponent,
    Webhook,
)
from flowserve.components.embedding import EmbeddingModel, OpenAIEmbeddings
from flowserve.components.files import FileComponent, SaveToFile
from flowserve.components.http import APIRequest, URLComponent
from flowserve.components.io import ChatInput, ChatOutput, TextInput, TextOutput
from flowserve.components.knowledge import Knowledge, KnowledgeBase, KnowledgeIngestion
from flowserve.components.logic import CalculatorComponent, ConditionalRouter
from flowserve.components.loop import LoopComponent
from flowserve.components.memory import Memory, MemoryBase
from flowserve.components.models import (
    AnthropicModel,
    LanguageModelComponent,
    OllamaModel,
    OpenAIModel,
)
from flowserve.components.prompt import Prompt, PromptTemplate
from flowserve.components.search import UnifiedWebSearch
from flowserve.components.sql import SQLComponent
from flowserve.components.structured import StructuredOutput
from flowserve.components.vectorstores import AstraDB, Chroma, LocalDB, PGVector
from flowserve.engine.component import Component

ENTRY_POINT_GROUP = "flowserve.components"

BUILTIN: tuple[type[Component], ...] = (
    ChatInput,
    ChatOutput,
    TextInput,
    TextOutput,
    Prompt,
    LanguageModelComponent,
    OpenAIModel,
    AnthropicModel,
    OllamaModel,
    Agent,
    Memory,
    MemoryBase,
    URLComponent,
    APIRequest,
    UnifiedWebSearch,
    ParserComponent,
    LegacyParser,
    TypeConverterComponent,
    SplitText,
    StructuredOutput,
    Webhook,
    ConditionalRouter,
    CalculatorComponent,
    # Files (the file store through services["files"])
    FileComponent,
    SaveToFile,
    # Embeddings and vector search (issue 15)
    OpenAIEmbeddings,
    EmbeddingModel,
    Knowledge,
    KnowledgeIngestion,
    KnowledgeBase,
    PGVector,
    Chroma,
    LocalDB,
    AstraDB,
    # Issue 15: loops and the remaining starter-project components.
    LoopComponent,
    PromptTemplate,
    BatchRunComponent,
    SQLComponent,
    ArXivComponent,
    AssemblyAITranscriber,
)

log = structlog.get_logger(__name__)


def build_registry(
    classes: Iterable[type[Component]] = BUILTIN, *, plugins: bool = True
) -> Mapping[str, type[Component]]:
    registry: dict[str, type[Component]] = {cls.type_name: cls for cls in classes}
    if plugins:
        for cls in _plugin_classes():
            if cls.type_name in registry:
                log.warning(
                    "plugin_component_ignored",
                    type=cls.type_name,
                    reason="a component with this type is already registered",
                )
                continue
            registry[cls.type_name] = cls
    return MappingProxyType(registry)


def _plugin_classes() -> list[type[Component]]:
    classes: list[type[Component]] = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
        except Exception as exc:  # a broken plugin must not take the server down
            log.error("plugin_load_failed", entry_point=entry.name, error=str(exc))
            continue
        if isinstance(loaded, type) and issubclass(loaded, Component):
            classes.append(loaded)
        else:
            log.error("plugin_not_a_component", entry_point=entry.name)
    return classes


def catalogue(registry: Mapping[str, type[Component]]) -> dict[str, dict[str, Any]]:
    """Langflow's ``/api/v1/all`` shape: category -> type -> description of the component."""
    result: dict[str, dict[str, Any]] = {}
    for type_name, cls in sorted(registry.items()):
        result.setdefault(cls.category, {})[type_name] = describe(cls)
    return result


def describe(cls: type[Component]) -> dict[str, Any]:
    template: dict[str, Any] = {"_type": "Component"}
    for spec in cls.inputs:
        template[spec.name] = {
            "name": spec.name,
            "display_name": spec.display_name or spec.name,
            "type": _field_type(spec.kind),
            "value": spec.default,
            "info": spec.info,
            "required": spec.required,
            "advanced": spec.advanced,
            "list": spec.is_list,
            "show": True,
            "multiline": spec.multiline,
            "input_types": list(spec.input_types),
            **({"options": list(spec.options)} if spec.options else {}),
        }
    return {
        "display_name": cls.display_name,
        "description": cls.description,
        "icon": cls.icon,
        "template": template,
        "outputs": [
            {
                "name": o.name,
                "display_name": o.display_name or o.name,
                "types": list(o.types),
                "method": o.method,
                "selected": o.types[0] if o.types else None,
                "allows_loop": o.allows_loop,
            }
            for o in cls.outputs
        ],
        "base_classes": sorted({t for o in cls.outputs for t in o.types}),
        "field_order": [spec.name for spec in cls.inputs],
        "beta": False,
        "legacy": False,
    }


def _field_type(kind: str) -> str:
    return {"any": "other", "secret": "str", "message": "str", "list": "str"}.get(kind, kind)
