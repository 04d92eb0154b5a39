"""experiment ids are 64-bit (MLflow's file store makes 18-digit ones)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:30:00

`trackgate import-mlflow` keeps experiment ids, and an MLflow ./mlruns folder numbers its
experiments with 18-digit ids, which a 32-bit INTEGER cannot hold. This revision widens
experiments.experiment_id, every column that refers to it (experiment_tags, runs, datasets,
logged_models by foreign key; logged_model_metrics as a plain copy) and, on PostgreSQL, the
sequence that numbers new experiments. Grants and the audit log name experiments by string ids,
so nothing changes there.

- PostgreSQL changes the types in place (the foreign keys are rechecked by the server).
- MySQL/MariaDB refuse to change a column a foreign key uses, so the four foreign keys are dropped,
  the columns modified and the keys made again exactly as revisions 0001-0002 made them.
- SQLite: nothing to do. INTEGER is already 64-bit there, and experiments.experiment_id must stay
  INTEGER to remain the table's rowid (what numbers new experiments).
"""

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# (table, foreign key name) of every foreign key onto experiments.experiment_id.
FOREIGN_KEYS = (
    ('experiment_tags', 'fk_experiment_tags_experiment_id_experiments'),
    ('runs', 'fk_runs_experiment_id_experiments'),
    ('datasets', 'fk_datasets_experiment_id_experiments'),
    ('logged_models', 'fk_logged_models_experiment_id_experiments'),
)
COPIES = ('logged_model_metrics',)  # experiment_id without a foreign key


def _postgresql(sql_type: str) -> None:
    # Referring columns first: both sides of a key end up the same type within this transaction.
    for table, _ in FOREIGN_KEYS:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN experiment_id TYPE {sql_type}')
    for table in COPIES:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN experiment_id TYPE {sql_type}')
    op.execute(f'ALTER TABLE experiments ALTER COLUMN experiment_id TYPE {sql_type}')
    # A SERIAL's sequence is typed too (INTEGER), and would stop at 2**31 - 1. Narrowed, it must
    # not stand past 32 bits: it is then set back to the largest id (else it keeps its place, so
    # the ids of deleted experiments are never handed out again).
    op.execute(
        "DO $$ DECLARE seq text := pg_get_serial_sequence('experiments', 'experiment_id'); BEGIN "
        "IF seq IS NOT NULL THEN "
        "IF pg_sequence_last_value(seq::regclass) > 2147483647 THEN "
        "PERFORM setval(seq, GREATEST((SELECT MAX(experiment_id) FROM experiments), 1)); END IF; "
        f"EXECUTE format('ALTER SEQUENCE %s AS {sql_type}', seq); END IF; END $$"
    )


def _mysql(sql_type: str) -> None:
    for table, name in FOREIGN_KEYS:
        op.execute(f'ALTER TABLE {table} DROP FOREIGN KEY {name}')
    op.execute(f'ALTER TABLE experiments MODIFY experiment_id {sql_type} NOT NULL AUTO_INCREMENT')
    for table, _ in FOREIGN_KEYS:
        op.execute(f'ALTER TABLE {table} MODIFY experiment_id {sql_type} NOT NULL')
    for table in COPIES:
        op.execute(f'ALTER TABLE {table} MODIFY experiment_id {sql_type} NOT NULL')
    for table, name in FOREIGN_KEYS:
        op.execute(
            f'ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY (experiment_id) '
            'REFERENCES experiments (experiment_id) ON DELETE CASCADE'
        )


def _widen_or_narrow(sql_type: str) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        _postgresql(sql_type)
    elif dialect in ('mysql', 'mariadb'):
        _mysql(sql_type)
    # SQLite: INTEGER is 64-bit already (see above).


def upgrade() -> None:
    _widen_or_narrow('BIGINT')


def downgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        too_big = op.get_bind().exec_driver_sql(
            'SELECT MAX(experiment_id) FROM experiments WHERE experiment_id > 2147483647'
        ).scalar()
        if too_big is not None:
            raise RuntimeError(f'experiment {too_big} does not fit a 32-bit id; cannot downgrade below 0007')
    _widen_or_narrow('INTEGER')
