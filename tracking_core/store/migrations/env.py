"""Alembic environment: migrations always run on a connection trackgate hands in.

`trackgate db upgrade` (and the bootstrap of an empty database) open the connection and pass
it as `config.attributes["connection"]`; nothing here reads URLs or global settings.
"""

from alembic import context

from tracking_core.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
