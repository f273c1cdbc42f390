from tests.api.filetools import file_backend, file_keys  # noqa: F401 - fixtures are found by name
