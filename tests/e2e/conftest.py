from tests.fakes.fixtures import (  # noqa: F401 - fixtures are found by name
    _anthropic_server,
    _no_external_dns,
    _openai_server,
    fake_anthropic,
    fake_openai,
)
from tests.fakes.website import website  # noqa: F401
