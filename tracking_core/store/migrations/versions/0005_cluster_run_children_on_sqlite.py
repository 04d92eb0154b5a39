"""SQLite: store metrics, latest_metrics, params and run_tags in primary-key order (WITHOUT ROWID)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 03:05:00

On SQLite a table with a composite primary key is a rowid table plus a separate index holding the
key: metrics kept every point twice, and each lookup by (run_id, key) went through the index and
then to the table. A WITHOUT ROWID table is the primary-key b-tree itself: half the size for
metrics, fewer pages written per logged point, and search and history read a run's rows in one
pass. InnoDB (MySQL, MariaDB) already clusters by primary key and PostgreSQL has no clustered
tables, so this revision changes nothing there.

The tables are rebuilt from their own CREATE statement, so the columns and constraint names stay
exactly as earlier revisions made them.
"""

import re

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

TABLES = ('metrics', 'latest_metrics', 'params', 'run_tags')


def _create_statement(name: str) -> str:
    bind = op.get_bind()
    return bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).scalar_one()


def _index_statements(name: str) -> list[str]:
    rows = op.get_bind().exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (name,)
    )
    return [row[0] for row in rows]


def upgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    for name in TABLES:
        create = _create_statement(name)
        if re.search(r'WITHOUT\s+ROWID\s*$', create, re.IGNORECASE):
            continue
        indexes = _index_statements(name)
        staging = f'{name}__clustered'
        head = re.compile(r'^\s*CREATE\s+TABLE\s+("?){0}\1'.format(re.escape(name)), re.IGNORECASE)
        clustered, replaced = head.subn(f'CREATE TABLE "{staging}"', create, count=1)
        if not replaced:
            raise RuntimeError(f'unexpected definition of table {name}: {create[:80]}')
        op.execute(clustered.rstrip() + ' WITHOUT ROWID')
        op.execute(f'INSERT INTO "{staging}" SELECT * FROM "{name}"')
        op.execute(f'DROP TABLE "{name}"')
        op.execute(f'ALTER TABLE "{staging}" RENAME TO "{name}"')
        for statement in indexes:
            op.execute(statement)


def downgrade() -> None:
    # Nothing to undo: earlier revisions read and write WITHOUT ROWID tables the same way.
    pass
