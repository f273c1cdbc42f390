"""SQL Database: run a query against the database the operator configured.

Langflow's component connects to whatever ``database_url`` the flow holds. Here
the database is the operator's alone (``FLOWSERVE_SQL_DATABASE_URL``, handed to
the component as ``services["sql_database"]``; store/query_db.py): a flow's own
``database_url`` is ignored (exports carry their author's URL, credentials
included), and a run that tweaks it is refused, so no request can point the
server at a database of its choosing. Queries are read-only unless the operator
allows writes, time-limited and row-capped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowserve.components.tools import COMPONENT_AS_TOOL, ToolComponent
from flowserve.engine.component import Input, NodeContext, Output
from flowserve.engine.types import Data, to_text
from flowserve.errors import Invalid

if TYPE_CHECKING:
    from flowserve.store.base import QueryDatabase

SQL_SERVICE = "sql_database"


def configured_database(ctx: NodeContext) -> QueryDatabase:
    database = ctx.run.services.get(SQL_SERVICE)
    if database is None or not callable(getattr(database, "query", None)):
        raise Invalid(
            "no SQL database is configured for the SQL Database component: an operator "
            "sets FLOWSERVE_SQL_DATABASE_URL (postgresql://... or sqlite:///path/to.db); "
            "flows and requests cannot choose the database"
        )
    return database  # type: ignore[no-any-return]


class SQLComponent(ToolComponent):
    type_name = "SQLComponent"
    display_name = "SQL Database"
    description = "Executes SQL queries on SQLAlchemy-compatible databases."
    category = "data_source"
    icon = "database"
    tool_output = "run_sql_query"
    tool_name = "run_sql_query"
    tool_args = ("query",)
    inputs = (
        Input(
            "database_url",
            "str",
            "",
            "Database URL",
            "Ignored: the operator configures the database (FLOWSERVE_SQL_DATABASE_URL).",
            input_types=("Message",),
        ),
        Input("query", "str", "", "SQL Query", required=True, multiline=True),
        Input("include_columns", "bool", True, "Include Columns", advanced=True),
        Input(
            "add_error",
            "bool",
            False,
            "Add Error",
            "If True, the error will be added to the result",
            advanced=True,
        ),
    )
    outputs = (
        Output("run_sql_query", ("Table", "DataFrame"), "Result Table", "run_sql_query"),
        COMPONENT_AS_TOOL,
    )

    async def produce(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        stored = self.node.fields.get("database_url")
        asked = to_text(params.get("database_url")).strip()
        if asked and asked != (stored.value if stored else None):
            raise Invalid(
                "database_url cannot be set by a run: the SQL Database component queries "
                "the database the operator configures (FLOWSERVE_SQL_DATABASE_URL)"
            )
        query = to_text(params.get("query")).strip()
        if not query:
            raise Invalid("no SQL query given: set 'query'")
        result = await configured_database(ctx).query(query)
        if not result.columns:
            return {"run_sql_query": [Data({"status": result.status})]}
        rows = [Data(dict(zip(result.columns, row, strict=True))) for row in result.rows]
        if result.truncated:
            ctx.logs.append(
                {
                    "name": "truncated",
                    "message": f"only the first {len(rows)} rows were read "
                    "(FLOWSERVE_SQL_MAX_ROWS)",
                    "type": "text",
                }
            )
        return {"run_sql_query": rows}
