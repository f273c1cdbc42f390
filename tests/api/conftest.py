from tests.api.filetools import file_backend, file_keys  # noqa: F401 - fixtures are found by name
from tests.fakes.fixtures import (  # noqa: F401 - fixtures are found by name
    _no_external_dns,
    _openai_server,
    fake_openai,
)
