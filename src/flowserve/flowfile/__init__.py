"""Langflow flow files: parse the exported JSON into flowserve's typed model."""

from flowserve.flowfile.model import Edge, Field, Flow, Node, Output
from flowserve.flowfile.parser import load_document, parse_flow

__all__ = ["Edge", "Field", "Flow", "Node", "Output", "load_document", "parse_flow"]
