"""Langflow's generic vector-store components, mapped onto the server's vector store.

``pgvector``, ``Chroma`` and ``LocalDB`` ingest ``ingest_data`` into the
collection ``collection_name`` and answer ``search_query`` with the
``number_of_results`` most similar chunks, embedded with the model connected to
``embedding``. Their connection fields (``pg_server_url``, ``persist_directory``,
``chroma_server_host``...) are accepted and ignored: a flow or a request never
chooses where the server connects or writes; every collection lives in the
configured store (pgvector in PostgreSQL, or the embedded SQLite file), in the
same namespace as the ``Knowledge`` component's knowledge bases.

``AstraDB`` has no faithful mapping (its collections, hybrid search and
reranking live in DataStax's service), so it loads, and fails when run with a
422 that says what to use instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from flowserve.components.data import as_rows
from flowserve.components.embedding import EmbeddingSettings, embed
from flowserve.components.knowledge import (
    hit_row,
    knowledge_owner,
    model_mismatch,
    result_count,
    same_model,
    vector_store,
)
from flowserve.engine.component import Component, Input, NodeContext, Output
from flowserve.engine.types import Data, to_text
from flowserve.errors import Invalid
from flowserve.store.base import Chunk

INGEST_TYPES = ("Data", "JSON", "DataFrame", "Table")


class MappedVectorStore(Component):
    """Ingest, then search, one collection of the server's vector store."""

    category = "vectorstores"
    # Fields naming a server or a directory: kept so flows and tweaks load, never used.
    ignored_fields: ClassVar[tuple[str, ...]] = ()
    default_results: ClassVar[int] = 4
    dedupe: ClassVar[bool] = False  # skip chunks already stored unless allow_duplicates

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        for name in self.ignored_fields:
            if params.get(name):
                ctx.logs.append(
                    {
                        "name": name,
                        "message": f"'{name}' is ignored: flowserve keeps collections in its "
                        "configured vector store",
                        "type": "text",
                    }
                )
        hits = await self.ingest_and_search(ctx, params)
        return {"search_results": hits, "dataframe": hits}

    async def ingest_and_search(self, ctx: NodeContext, params: Mapping[str, Any]) -> list[Data]:
        name = to_text(params.get("collection_name")).strip()
        if not name:
            raise Invalid("a collection name is required: set the 'collection_name' field")
        settings = params.get("embedding")
        if not isinstance(settings, EmbeddingSettings):
            raise Invalid(
                "connect an embedding model (e.g. OpenAI Embeddings) to the 'embedding' input"
            )
        store = vector_store(ctx)
        owner = knowledge_owner(ctx)
        collection, _ = await store.ensure_collection(owner, name, settings.ref)
        if not same_model(collection.model, settings.ref):
            raise model_mismatch(collection, settings.ref)
        rows = [r for r in as_rows(params.get("ingest_data")) if r.get_text()]
        if rows:
            allow = not self.dedupe or bool(params.get("allow_duplicates"))
            texts = [r.get_text() for r in rows]
            vectors = await embed(ctx, settings, texts)
            chunks = [
                Chunk(
                    text=text,
                    embedding=vector,
                    metadata={k: v for k, v in r.data.items() if k != r.text_key},
                )
                for r, text, vector in zip(rows, texts, vectors, strict=True)
            ]
            await store.add(owner, name, chunks, allow_duplicates=allow)
        query = to_text(params.get("search_query")).strip()
        if not query:
            return []
        k = result_count(params, "number_of_results", default=self.default_results)
        embedding = (await embed(ctx, settings, [query]))[0]
        hits = await store.search(owner, name, embedding, k=k)
        return [hit_row(h, text_key="text", metadata=True, embeddings=False) for h in hits]


_SHARED_INPUTS = (
    Input("collection_name", "str", "langflow", "Collection Name"),
    Input("ingest_data", "any", None, "Ingest Data", is_list=True, input_types=INGEST_TYPES),
    Input("search_query", "str", "", "Search Query"),
    Input("embedding", "any", None, "Embedding", input_types=("Embeddings",)),
    Input("should_cache_vector_store", "bool", True, "Cache Vector Store", advanced=True),
)
_OUTPUTS = (
    Output("search_results", ("Data",), "Search Results", "search_documents"),
    Output("dataframe", ("DataFrame",), "DataFrame", "as_dataframe"),
)


class PGVector(MappedVectorStore):
    type_name = "pgvector"
    display_name = "PGVector"
    description = "PGVector Vector Store with search capabilities (the server's store)."
    icon = "cpu"
    ignored_fields = ("pg_server_url",)
    inputs = (
        Input("pg_server_url", "secret", "", "PostgreSQL Server Connection String", advanced=True),
        *_SHARED_INPUTS,
        Input("number_of_results", "int", 4, "Number of Results", advanced=True),
    )
    outputs = _OUTPUTS


class Chroma(MappedVectorStore):
    type_name = "Chroma"
    display_name = "Chroma DB"
    description = "Chroma-style vector store with search capabilities (the server's store)."
    icon = "Chroma"
    ignored_fields = (
        "persist_directory",
        "chroma_server_host",
        "chroma_server_http_port",
        "chroma_server_grpc_port",
        "chroma_server_cors_allow_origins",
    )
    default_results = 10
    dedupe = True
    inputs = (
        *_SHARED_INPUTS,
        Input("persist_directory", "str", "", "Persist Directory"),
        Input("chroma_server_host", "str", "", "Server Host", advanced=True),
        Input("chroma_server_http_port", "int", None, "Server HTTP Port", advanced=True),
        Input("chroma_server_grpc_port", "int", None, "Server gRPC Port", advanced=True),
        Input(
            "chroma_server_cors_allow_origins",
            "str",
            "",
            "Server CORS Allow Origins",
            advanced=True,
        ),
        Input("chroma_server_ssl_enabled", "bool", False, "Server SSL Enabled", advanced=True),
        Input("allow_duplicates", "bool", False, "Allow Duplicates", advanced=True),
        Input("search_type", "str", "Similarity", "Search Type", options=("Similarity",)),
        Input("number_of_results", "int", 10, "Number of Results", advanced=True),
        Input("limit", "int", None, "Limit", advanced=True),
    )
    outputs = _OUTPUTS


class LocalDB(MappedVectorStore):
    """Langflow's Local DB (Chroma on local disk) with its Ingest / Retrieve modes."""

    type_name = "LocalDB"
    display_name = "Local DB"
    description = "Local vector store with Ingest and Retrieve modes (the server's store)."
    icon = "database"
    ignored_fields = ("persist_directory",)
    default_results = 10
    dedupe = True
    inputs = (
        Input("mode", "str", "Ingest", "Mode", options=("Ingest", "Retrieve")),
        *_SHARED_INPUTS,
        Input("persist_directory", "str", "", "Persist Directory", advanced=True),
        Input("existing_collections", "str", "", "Existing Collections"),
        Input("allow_duplicates", "bool", False, "Allow Duplicates", advanced=True),
        Input("search_type", "str", "Similarity", "Search Type", options=("Similarity",)),
        Input("number_of_results", "int", 10, "Number of Results", advanced=True),
        Input("limit", "int", None, "Limit", advanced=True),
    )
    outputs = (Output("dataframe", ("DataFrame",), "DataFrame", "perform_search"),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        values = dict(params)
        if str(params.get("mode") or "") == "Retrieve":
            values["ingest_data"] = None
            values["collection_name"] = params.get("existing_collections") or params.get(
                "collection_name"
            )
        else:
            values["search_query"] = ""
        hits = await self.ingest_and_search(ctx, values)
        return {"dataframe": hits}


class AstraDB(Component):
    """Loads, so flows using it are accepted; refuses to run (no faithful mapping)."""

    type_name = "AstraDB"
    display_name = "Astra DB"
    description = "Not supported by flowserve: use pgvector or Knowledge."
    category = "vectorstores"
    icon = "AstraDB"
    inputs = (
        Input("ingest_data", "any", None, "Ingest Data", is_list=True, input_types=INGEST_TYPES),
        Input("search_query", "str", "", "Search Query"),
        Input("lexical_terms", "str", "", "Lexical Terms"),
    )
    outputs = (
        *_OUTPUTS,
        Output("vectorstoreconnection", ("VectorStore",), "Vector Store Connection"),
    )

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        raise Invalid(
            "AstraDB is not supported by flowserve; use pgvector or Knowledge "
            "(vector search in the server's own store)"
        )
