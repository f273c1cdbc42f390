"""The HTTP layer: thin Starlette routes over the runner and stores."""
