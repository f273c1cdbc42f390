from tests.fakes.arxiv_server import _arxiv_server, fake_arxiv  # noqa: F401
from tests.fakes.assemblyai_server import _assemblyai_server, fake_assemblyai  # noqa: F401
from tests.fakes.fixtures import (  # noqa: F401 - fixtures are found by name
    _anthropic_server,
    _no_external_dns,
    _openai_server,
    fake_anthropic,
    fake_openai,
)
from tests.fakes.website import website  # noqa: F401
