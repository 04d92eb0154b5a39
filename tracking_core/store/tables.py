"""The database schema, as SQLAlchemy Core tables.

Our own schema, shaped by the hot paths rather than copied from MLflow's:
- `metrics` is keyed (run_id, key, step, timestamp, value, is_nan) so a history read is one
  range scan of the primary key, and an identical re-sent point is a conflict that is ignored
  (the client retries POSTs, so writes must be idempotent);
- `latest_metrics` holds the newest point per (run, key) for run payloads, search and order_by;
- string columns that search compares use a binary collation on MySQL/MariaDB, because MLflow's
  `=` and `LIKE` are case-sensitive there too.

Changing anything here needs a new Alembic revision in `migrations/versions`.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def name_type(length: int) -> sa.types.TypeEngine[str]:
    """A VARCHAR that compares case-sensitively on every backend."""
    return sa.String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


def long_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.MEDIUMTEXT(collation="utf8mb4_bin"), "mysql", "mariadb")


def _table(name: str, *items: sa.SchemaItem, clustered: bool = False) -> sa.Table:
    """`clustered`: on SQLite the table is its primary-key b-tree (WITHOUT ROWID, revision 0005),
    for the per-run children read by (run_id, key) on every search and history request."""
    kwargs = {"sqlite_with_rowid": False} if clustered else {}
    return sa.Table(name, metadata, *items, mysql_engine="InnoDB", mysql_charset="utf8mb4", **kwargs)


RUN_ID = sa.String(32)
KEY = name_type(250)

experiments = _table(
    "experiments",
    # 64-bit: MLflow's file store makes 18-digit ids (revision 0007). SQLite keeps INTEGER, its
    # 64-bit rowid alias (a BIGINT key would not be one, and would not number itself).
    sa.Column(
        "experiment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("name", name_type(500), nullable=False, unique=True),
    sa.Column("artifact_location", sa.String(2048), nullable=False),
    sa.Column("lifecycle_stage", sa.String(16), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
)

experiment_tags = _table(
    "experiment_tags",
    sa.Column("experiment_id", sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", long_text(), nullable=False),
)

runs = _table(
    "runs",
    sa.Column("run_id", RUN_ID, primary_key=True),
    sa.Column("experiment_id", sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", name_type(250), nullable=False),
    sa.Column("user_id", name_type(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", sa.BigInteger, nullable=False),
    sa.Column("end_time", sa.BigInteger, nullable=True),
    sa.Column("deleted_time", sa.BigInteger, nullable=True),
    sa.Column("lifecycle_stage", sa.String(16), nullable=False),
    sa.Column("artifact_uri", name_type(2048), nullable=False),
    sa.Index("ix_runs_experiment_stage_start", "experiment_id", "lifecycle_stage", "start_time"),
)

run_tags = _table(
    "run_tags",
    sa.Column("run_id", sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", long_text(), nullable=False),
    clustered=True,
)

params = _table(
    "params",
    sa.Column("run_id", sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", long_text(), nullable=False),
    clustered=True,
)

metrics = _table(
    "metrics",
    sa.Column("run_id", sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("step", sa.BigInteger, primary_key=True),
    sa.Column("timestamp", sa.BigInteger, primary_key=True),
    # NaN is stored as value 0 with is_nan set: MySQL and MSSQL cannot store NaN.
    sa.Column("value", sa.Double, primary_key=True),
    sa.Column("is_nan", sa.Boolean(create_constraint=False), primary_key=True),
    sa.Column("model_id", sa.String(36), nullable=True),
    sa.Column("dataset_name", sa.String(500), nullable=True),
    sa.Column("dataset_digest", sa.String(36), nullable=True),
    clustered=True,
)

latest_metrics = _table(
    "latest_metrics",
    sa.Column("run_id", sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("is_nan", sa.Boolean(create_constraint=False), nullable=False),
    sa.Column("model_id", sa.String(36), nullable=True),
    sa.Column("dataset_name", sa.String(500), nullable=True),
    sa.Column("dataset_digest", sa.String(36), nullable=True),
    clustered=True,
)

datasets = _table(
    "datasets",
    sa.Column("dataset_uuid", sa.String(36), primary_key=True),
    sa.Column("experiment_id", sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", name_type(500), nullable=False),
    sa.Column("digest", name_type(36), nullable=False),
    sa.Column("source_type", sa.String(36), nullable=False),
    sa.Column("source", long_text(), nullable=False),
    sa.Column("schema", long_text(), nullable=True),
    sa.Column("profile", long_text(), nullable=True),
    sa.UniqueConstraint("experiment_id", "name", "digest"),
)

# Edges between entities: DATASET -> RUN (run inputs) now; MODEL -> RUN and RUN -> MODEL later.
inputs = _table(
    "inputs",
    sa.Column("input_uuid", sa.String(36), primary_key=True),
    sa.Column("source_type", sa.String(36), nullable=False),
    sa.Column("source_id", sa.String(36), nullable=False),
    sa.Column("destination_type", sa.String(36), nullable=False),
    sa.Column("destination_id", sa.String(36), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False, server_default="0"),
    sa.UniqueConstraint("source_type", "source_id", "destination_type", "destination_id"),
    sa.Index("ix_inputs_destination", "destination_type", "destination_id"),
)

input_tags = _table(
    "input_tags",
    sa.Column("input_uuid", sa.ForeignKey("inputs.input_uuid", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", name_type(255), primary_key=True),
    sa.Column("value", name_type(500), nullable=False),
)

# MLflow 3 logged models: what `log_model` creates; artifacts live under the model's own location.
logged_models = _table(
    "logged_models",
    sa.Column("model_id", sa.String(36), primary_key=True),
    sa.Column("experiment_id", sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", name_type(500), nullable=False),
    sa.Column("artifact_location", sa.String(2048), nullable=False),
    sa.Column("creation_timestamp_ms", sa.BigInteger, nullable=False),
    sa.Column("last_updated_timestamp_ms", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("lifecycle_stage", sa.String(16), nullable=False),
    sa.Column("model_type", name_type(500), nullable=True),
    sa.Column("source_run_id", sa.String(32), nullable=True),
    sa.Column("status_message", sa.Text, nullable=True),
    sa.Index("ix_logged_models_experiment_created", "experiment_id", "creation_timestamp_ms"),
    sa.Index("ix_logged_models_source_run", "source_run_id"),
)

logged_model_params = _table(
    "logged_model_params",
    sa.Column("model_id", sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", long_text(), nullable=False),
)

logged_model_tags = _table(
    "logged_model_tags",
    sa.Column("model_id", sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", long_text(), nullable=False),
)

# Metric points logged with a model_id, kept per model as well as in the run's history.
logged_model_metrics = _table(
    "logged_model_metrics",
    sa.Column("model_id", sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("timestamp", sa.BigInteger, primary_key=True),
    sa.Column("step", sa.BigInteger, primary_key=True),
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("is_nan", sa.Boolean(create_constraint=False), nullable=False),
    sa.Column("experiment_id", sa.BigInteger, nullable=False),
    sa.Column("dataset_name", sa.String(500), nullable=True),
    sa.Column("dataset_digest", sa.String(36), nullable=True),
)

# The model registry. A surrogate id keeps a rename to one row, whatever refers to the model.
registered_models = _table(
    "registered_models",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", name_type(256), nullable=False, unique=True),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_updated_time", sa.BigInteger, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("user_id", sa.String(256), nullable=True),
)

registered_model_tags = _table(
    "registered_model_tags",
    sa.Column("registered_model_id", sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", long_text(), nullable=False),
)

model_versions = _table(
    "model_versions",
    sa.Column("registered_model_id", sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_updated_time", sa.BigInteger, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("user_id", sa.String(256), nullable=True),
    sa.Column("current_stage", sa.String(20), nullable=False),
    sa.Column("source", name_type(2048), nullable=True),
    sa.Column("run_id", name_type(32), nullable=True),
    sa.Column("run_link", sa.String(2048), nullable=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("status_message", sa.Text, nullable=True),
    sa.Column("storage_location", sa.String(2048), nullable=True),
    sa.Column("model_id", sa.String(36), nullable=True),
    # Deleted versions stay as tombstones, so a version number is never handed out twice.
    sa.Column("deleted", sa.Boolean(create_constraint=False), nullable=False, server_default=sa.false()),
    sa.Index("ix_model_versions_run", "run_id"),
)

model_version_tags = _table(
    "model_version_tags",
    sa.Column("registered_model_id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", long_text(), nullable=False),
    sa.ForeignKeyConstraint(
        ["registered_model_id", "version"],
        ["model_versions.registered_model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

registered_model_aliases = _table(
    "registered_model_aliases",
    sa.Column("registered_model_id", sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("alias", sa.String(255), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

# Secrets the gateway generates once and every replica must share (the session cookie secret;
# any other generated key may live here too). Written only when none is configured.
gateway_secrets = _table(
    "gateway_secrets",
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("created_time", sa.BigInteger, nullable=False),
)

# Users of HTTP basic auth (`trackgate users ...`). The password is kept only as a scrypt hash.
users = _table(
    "users",
    sa.Column("name", name_type(256), primary_key=True),
    sa.Column("password_hash", sa.String(512), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_time", sa.BigInteger, nullable=False),
    sa.Column("password_changed_time", sa.BigInteger, nullable=False),
)

# Tokens trackgate issued (`trackgate tokens issue`), by their `jti`, so they can be listed and
# revoked. The token itself is never stored: it is verified by signature.
auth_tokens = _table(
    "auth_tokens",
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("subject", name_type(256), nullable=False),
    sa.Column("issued_time", sa.BigInteger, nullable=False),
    sa.Column("expires_time", sa.BigInteger, nullable=True),
    sa.Column("revoked_time", sa.BigInteger, nullable=True, index=True),
    sa.Column("description", sa.String(500), nullable=True),
)

# -- Authorization (tracking_core/authz) ----------------------------------------------------------
# Every subject that holds a grant or a role gets a numeric id here (MLflow's API names users by
# id), whether it signs in with a password (`users`), SSO, a token or a certificate.
principals = _table(
    "principals",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", name_type(256), nullable=False, unique=True),
    sa.Column("created_time", sa.BigInteger, nullable=False),
)

# A subject's own grants (MLflow's users/permissions/grant). Registered models are named by name,
# experiments by id, as in MLflow; "*" is every resource of the type.
grants = _table(
    "grants",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("principal_id", sa.ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
    sa.Column("resource_type", sa.String(32), nullable=False),
    sa.Column("resource_id", name_type(256), nullable=False),
    sa.Column("permission", sa.String(16), nullable=False),
    sa.UniqueConstraint("principal_id", "resource_type", "resource_id"),
    sa.Index("ix_grants_resource", "resource_type", "resource_id"),
)

# Roles (MLflow's /api/3.0/mlflow/roles): named sets of grants. A caller's groups (OIDC/JWT
# `groups`, certificate rules) are membership in the role of the same name in their workspace.
roles = _table(
    "roles",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workspace", name_type(63), nullable=False),
    sa.Column("name", name_type(256), nullable=False),
    sa.Column("description", sa.String(1000), nullable=True),
    sa.UniqueConstraint("workspace", "name"),
)

role_permissions = _table(
    "role_permissions",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("role_id", sa.ForeignKey("roles.id", ondelete="CASCADE"), nullable=False),
    sa.Column("resource_type", sa.String(32), nullable=False),
    sa.Column("resource_pattern", name_type(256), nullable=False),
    sa.Column("permission", sa.String(16), nullable=False),
    sa.UniqueConstraint("role_id", "resource_type", "resource_pattern"),
    sa.Index("ix_role_permissions_resource", "resource_type", "resource_pattern"),
)

role_assignments = _table(
    "role_assignments",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("principal_id", sa.ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
    sa.Column("role_id", sa.ForeignKey("roles.id", ondelete="CASCADE"), nullable=False),
    sa.UniqueConstraint("principal_id", "role_id"),
    sa.Index("ix_role_assignments_role", "role_id"),
)

# One record per state-changing request, permission change and artifact download. Never a secret,
# a token or artifact contents: who, how, from where, what, on which resource, and the outcome.
audit_log = _table(
    "audit_log",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("time_ms", sa.BigInteger, nullable=False),
    sa.Column("subject", name_type(256), nullable=True),
    sa.Column("auth_method", sa.String(32), nullable=True),
    sa.Column("client", sa.String(64), nullable=True),
    sa.Column("action", sa.String(128), nullable=False),
    sa.Column("resource_type", sa.String(32), nullable=True),
    sa.Column("resource_id", sa.String(256), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("detail", sa.String(1000), nullable=True),
    sa.Index("ix_audit_log_time", "time_ms"),
    sa.Index("ix_audit_log_subject_time", "subject", "time_ms"),
)
