"""Langflow's ``Knowledge`` component: ingest into, or retrieve from, a knowledge base.

A knowledge base is a named vector collection of the run's owner, in the
server's vector store (``services["vectors"]``: pgvector in PostgreSQL, or the
embedded SQLite file). It remembers the embedding model that made its vectors;
a new one gets the ``embedding_model`` field or tweak (our addition), else the
model of the dialog value Langflow stores in ``knowledge_base`` when a flow
creates one, else the server's ``FLOWSERVE_EMBEDDING_MODEL``.

Ingest reads the rows of ``input_df`` (a DataFrame, Data or Message),
embeds the ``column_config`` columns marked ``vectorize`` in batches of
``chunk_size`` (Langflow's meaning: a batch size, not text splitting; put a
Split Text before it for long documents), skips rows whose ``identifier``
columns were stored before unless ``allow_duplicates``, and stamps every chunk
with the ``metadata_json`` object. Retrieve embeds ``search_query`` and returns
the ``top_k`` most similar chunks (the ``k`` tweak, as Langflow's docs show for
retrievers, means the same and wins when both are set) as a DataFrame of
``content``, ``_score`` and the chunk's metadata.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec

from flowserve.components.data import as_rows
from flowserve.components.embedding import (
    EmbeddingSettings,
    embed,
    parse_embedding_choice,
    resolve_embedding,
)
from flowserve.engine.component import Component, Input, NodeContext, Output
from flowserve.engine.types import Data, Message, to_text
from flowserve.errors import Invalid, KnowledgeBaseNotFound, Unavailable
from flowserve.store.base import (
    Chunk,
    ChunkHit,
    CollectionRecord,
    EmbeddingModelRef,
    MetadataFilter,
    VectorStore,
)

# The services keys: the vector store, and the default embedding model ("provider/model").
VECTOR_STORE = "vectors"
EMBEDDING_DEFAULT = "embedding_model"
FALLBACK_EMBEDDING = "OpenAI/text-embedding-3-small"

MODE_INGEST = "Ingest"
MODE_RETRIEVE = "Retrieve"
DEFAULT_COLUMNS = ({"column_name": "text", "vectorize": True, "identifier": True},)


def vector_store(ctx: NodeContext) -> VectorStore:
    store = ctx.run.services.get(VECTOR_STORE)
    if store is None:
        raise Unavailable("no vector store is configured for this server")
    return store  # type: ignore[no-any-return]


def knowledge_owner(ctx: NodeContext) -> str:
    """Whose knowledge bases a run sees: the submitting key's (as Langflow keeps them per
    user; with auth off every caller is the same local owner); an anonymous run (a
    PUBLIC flow's visitor) sees the shared ones, owner ""."""
    owner = ctx.run.owner
    return owner.id if owner is not None else ""


def default_model(ctx: NodeContext) -> EmbeddingModelRef:
    model, provider = parse_embedding_choice(
        ctx.run.services.get(EMBEDDING_DEFAULT) or FALLBACK_EMBEDDING
    )
    return EmbeddingModelRef(provider or "OpenAI", model)


def model_ref(choice: Any) -> EmbeddingModelRef | None:
    if isinstance(choice, EmbeddingSettings):
        return choice.ref
    model, provider = parse_embedding_choice(choice)
    return EmbeddingModelRef(provider or "OpenAI", model) if model else None


def as_model_choice(ref: EmbeddingModelRef) -> list[dict[str, str]]:
    return [{"name": ref.name, "provider": ref.provider}]


def same_model(a: EmbeddingModelRef, b: EmbeddingModelRef) -> bool:
    return a.provider.lower() == b.provider.lower() and a.name == b.name


def model_mismatch(collection: CollectionRecord, wanted: EmbeddingModelRef) -> Invalid:
    have = collection.model
    return Invalid(
        f"knowledge base '{collection.name}' was made with the embedding model "
        f"{have.provider}/{have.name}, not {wanted.provider}/{wanted.name}: vectors of "
        "different models cannot be compared; use a new knowledge base"
    )


def parse_filter(raw: Any) -> MetadataFilter | None:
    """``metadata_filter``: a JSON object of key -> value or list of values."""
    if isinstance(raw, Message):
        raw = raw.text
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    decoded = raw
    if isinstance(raw, str):
        try:
            decoded = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise Invalid(f"metadata_filter is not valid JSON: {exc}") from exc
    if not isinstance(decoded, dict):
        raise Invalid('metadata_filter must be a JSON object, e.g. {"tag": ["invoice"]}')
    where: MetadataFilter = {}
    for key, value in decoded.items():
        values = value if isinstance(value, list) else [value]
        if not values:
            raise Invalid(f"metadata_filter key '{key}' lists no values")
        where[str(key)] = [
            v if isinstance(v, str) else msgspec.json.encode(v).decode() for v in values
        ]
    return where


def parse_metadata(raw: Any) -> dict[str, Any]:
    """``metadata_json``: a JSON object stamped on every chunk of the run."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    decoded = raw
    if isinstance(raw, str):
        try:
            decoded = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise Invalid(f"metadata_json is not valid JSON: {exc}") from exc
    if not isinstance(decoded, dict):
        raise Invalid('metadata_json must be a JSON object, e.g. {"tag": "invoice"}')
    return decoded


def hit_row(hit: ChunkHit, *, text_key: str, metadata: bool, embeddings: bool) -> Data:
    data: dict[str, Any] = {}
    if metadata:
        data.update(hit.metadata)
    data[text_key] = hit.text
    if hit.score is not None:
        data["_score"] = hit.score
    if embeddings:
        data["_embeddings"] = list(hit.embedding) if hit.embedding is not None else None
    return Data(data, text_key=text_key)


def result_count(params: Mapping[str, Any], *names: str, default: int) -> int:
    """The first of ``names`` that is set, as a number of results (1 to 1000)."""
    for name in names:
        value = params.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise Invalid(f"'{name}' must be a whole number of results, not {value!r}")
        if not 1 <= int(value) <= 1000:
            raise Invalid(f"'{name}' must be from 1 to 1000, not {int(value)}")
        return int(value)
    return default


class Knowledge(Component):
    type_name = "Knowledge"
    display_name = "Knowledge"
    description = "Ingest into or retrieve from a knowledge base."
    category = "files_and_knowledge"
    icon = "database"
    default_mode: ClassVar[str] = MODE_INGEST
    inputs = (
        Input("knowledge_base", "any", "", "Knowledge", "The knowledge base, by name.", True),
        Input("mode", "str", MODE_INGEST, "Mode", options=(MODE_INGEST, MODE_RETRIEVE)),
        Input(
            "input_df",
            "any",
            None,
            "Input",
            "Rows to store (already chunked): a DataFrame, Data or Message.",
            input_types=("Message", "Data", "JSON", "DataFrame", "Table"),
        ),
        Input("column_config", "table", list(DEFAULT_COLUMNS), "Column Configuration"),
        Input("chunk_size", "int", 1000, "Chunk Size", "Batch size for embedding requests."),
        Input("api_key", "secret", "", "Embedding Provider API Key", advanced=True),
        Input("allow_duplicates", "bool", False, "Allow Duplicates", advanced=True),
        Input("metadata_json", "str", "", "Metadata", advanced=True),
        Input(
            "embedding_model",
            "model",
            None,
            "Embedding Model",
            "flowserve: the model of a knowledge base this run creates "
            "(default: the server's FLOWSERVE_EMBEDDING_MODEL).",
            advanced=True,
        ),
        Input("search_query", "str", "", "Search Query"),
        Input("top_k", "int", 5, "Top K Results"),
        Input("k", "int", None, "Number of results (alias of top_k)", advanced=True),
        Input("include_metadata", "bool", True, "Include Metadata"),
        Input("include_embeddings", "bool", False, "Include Embeddings", advanced=True),
        Input("metadata_filter", "str", "", "Metadata Filter", advanced=True),
    )
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("dataframe_output", ("JSON",), "Results", "build_kb_info"),
        Output("retrieve_data", ("Table",), "Results", "retrieve_data"),
    )

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        mode = str(params.get("mode") or self.default_mode)
        result: Any
        if "Retrieve" in mode:
            result = await self.retrieve(ctx, params)
        else:
            result = await self.ingest(ctx, params)
        # Both handles answer with the selected mode's result, as in Langflow.
        return {"dataframe_output": result, "retrieve_data": result}

    def _name_and_choice(self, params: Mapping[str, Any]) -> tuple[str, Any]:
        """The knowledge base's name, and the model a creating dialog chose (if any)."""
        value = params.get("knowledge_base")
        choice: Any = None
        if isinstance(value, dict):  # Langflow's "create new knowledge base" dialog value
            choice = value.get("02_embedding_model")
            value = value.get("01_new_kb_name")
        name = to_text(value).strip() if value is not None else ""
        if not name:
            raise Invalid(
                "a knowledge base is required: set the 'knowledge_base' field, e.g. with the "
                f'tweak {{"{self.node.id}": {{"knowledge_base": "docs"}}}}'
            )
        return name, choice

    async def ingest(self, ctx: NodeContext, params: Mapping[str, Any]) -> Data:
        name, dialog_choice = self._name_and_choice(params)
        rows = as_rows(params.get("input_df"))
        columns = self._columns(params, rows)
        user_metadata = parse_metadata(params.get("metadata_json"))
        store = vector_store(ctx)
        owner = knowledge_owner(ctx)
        asked = model_ref(params.get("embedding_model")) or model_ref(dialog_choice)
        collection = await store.get_collection(owner, name)
        if collection is None:
            collection, _ = await store.ensure_collection(owner, name, asked or default_model(ctx))
        if asked is not None and not same_model(collection.model, asked):
            raise model_mismatch(collection, asked)
        texts, metadata = self._chunks(rows, columns, user_metadata)
        choice = params.get("embedding_model")
        if not isinstance(choice, EmbeddingSettings):
            choice = as_model_choice(collection.model)
        settings = resolve_embedding(self, ctx, params, choice)
        allow = bool(params.get("allow_duplicates"))
        pending = self._unseen(texts, metadata, allow)
        if not allow and pending and collection.chunks:
            known = await store.stored_hashes(owner, name, [metadata[i]["_id"] for i in pending])
            pending = [i for i in pending if metadata[i]["_id"] not in known]
        vectors = await embed(ctx, settings, [texts[i] for i in pending])
        chunks = [
            Chunk(
                text=texts[i],
                embedding=vector,
                metadata=metadata[i],
                content_hash=metadata[i]["_id"],
            )
            for i, vector in zip(pending, vectors, strict=True)
        ]
        stored = await store.add(owner, name, chunks, allow_duplicates=allow)
        after = await store.get_collection(owner, name)
        return Data(
            {
                "kb_name": name,
                "rows": len(rows),
                "chunks_created": stored,
                "skipped": len(rows) - stored,
                "embedding_model": f"{collection.model.provider}/{collection.model.name}",
                "dimension": after.dimension if after else None,
                "total_chunks": after.chunks if after else None,
                "config_columns": len(columns),
                "timestamp": datetime.now(UTC).isoformat(),
            },
            text_key="kb_name",
        )

    @staticmethod
    def _unseen(texts: list[str], metadata: list[dict[str, Any]], allow: bool) -> list[int]:
        """Which rows to embed: all, or the first of each identifier within this run (the
        store skips those stored before)."""
        if allow:
            return list(range(len(texts)))
        seen: set[str] = set()
        kept: list[int] = []
        for index, meta in enumerate(metadata):
            if meta["_id"] not in seen:
                seen.add(meta["_id"])
                kept.append(index)
        return kept

    def _columns(self, params: Mapping[str, Any], rows: list[Data]) -> list[dict[str, Any]]:
        config = params.get("column_config") or list(DEFAULT_COLUMNS)
        if not isinstance(config, list) or not all(isinstance(c, dict) for c in config):
            raise Invalid("column_config must be a list of {column_name, vectorize, identifier}")
        available = {key for row in rows for key in row.data}
        for entry in config:
            column = entry.get("column_name")
            if rows and column not in available:
                raise Invalid(
                    f"Column '{column}' not found in the input. Available columns: "
                    f"{sorted(available)}"
                )
        if not any(_flag(c.get("vectorize")) for c in config):
            raise Invalid("column_config marks no column to vectorize")
        return config

    @staticmethod
    def _chunks(
        rows: list[Data], columns: list[dict[str, Any]], user_metadata: dict[str, Any]
    ) -> tuple[list[str], list[dict[str, Any]]]:
        content = [c["column_name"] for c in columns if _flag(c.get("vectorize"))]
        identifiers = [c["column_name"] for c in columns if _flag(c.get("identifier"))]
        texts: list[str] = []
        metadata: list[dict[str, Any]] = []
        for row in rows:
            text = " ".join(_cell(row.data[c]) for c in content if row.data.get(c) is not None)
            key_text = (
                " ".join(_cell(row.data[c]) for c in identifiers if row.data.get(c) is not None)
                if identifiers
                else text
            )
            meta: dict[str, Any] = {
                k: _json_value(v) for k, v in row.data.items() if k not in content and v is not None
            }
            meta.update(user_metadata)
            meta["_id"] = hashlib.sha256(key_text.encode()).hexdigest()
            texts.append(text)
            metadata.append(meta)
        return texts, metadata

    async def retrieve(self, ctx: NodeContext, params: Mapping[str, Any]) -> list[Data]:
        if not to_text(params.get("knowledge_base") or "").strip():
            # Langflow's starters ship with none selected and must still run as shipped:
            # nothing selected, nothing retrieved (and a log line saying how to pick one).
            ctx.logs.append(
                {
                    "name": "knowledge_base",
                    "type": "text",
                    "message": "no knowledge base selected: nothing retrieved; set one with "
                    f'the tweak {{"{self.node.id}": {{"knowledge_base": "<name>"}}}}',
                }
            )
            return []
        name, _ = self._name_and_choice(params)
        k = result_count(params, "k", "top_k", default=5)
        query = to_text(params.get("search_query")).strip()
        where = parse_filter(params.get("metadata_filter"))
        store = vector_store(ctx)
        owner = knowledge_owner(ctx)
        collection = await store.get_collection(owner, name)
        if collection is None:
            raise KnowledgeBaseNotFound(
                f"knowledge base '{name}' does not exist: ingest into it first"
            )
        embedding: tuple[float, ...] | None = None
        if query:
            settings = resolve_embedding(self, ctx, params, as_model_choice(collection.model))
            embedding = (await embed(ctx, settings, [query]))[0]
        hits = await store.search(
            owner,
            name,
            embedding,
            k=k,
            where=where,
            include_embeddings=bool(params.get("include_embeddings")),
        )
        return [
            hit_row(
                hit,
                text_key="content",
                metadata=bool(params.get("include_metadata", True)),
                embeddings=bool(params.get("include_embeddings")),
            )
            for hit in hits
        ]


class KnowledgeIngestion(Knowledge):
    """The pre-1.13 ingestion component: Knowledge pinned to Ingest."""

    type_name = "KnowledgeIngestion"
    display_name = "Knowledge Ingestion"
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("dataframe_output", ("JSON",), "Results", "build_kb_info"),
    )

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"dataframe_output": await self.ingest(ctx, params)}


class KnowledgeBase(Knowledge):
    """The pre-1.13 retrieval component: Knowledge pinned to Retrieve."""

    type_name = "KnowledgeBase"
    display_name = "Knowledge Base"
    default_mode = MODE_RETRIEVE
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("retrieve_data", ("Table",), "Results", "retrieve_data"),
    )

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"retrieve_data": await self.retrieve(ctx, params)}


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else to_text(value)


def _json_value(value: Any) -> Any:
    """A row's value as chunk metadata: JSON scalars as they are, anything else as text."""
    return value if isinstance(value, str | int | float | bool) else _cell(value)
