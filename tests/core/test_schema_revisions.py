"""The schema check reads the migration chain without Alembic (which costs ~0.4 s to import at every
start); Alembic is loaded only to migrate. These tests keep that reading honest."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

from tracking_core.settings import CoreSettings
from tracking_core.store import schema


def test_the_light_reading_of_the_migrations_agrees_with_alembic() -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", "tracking_core.store:migrations")
    scripts = ScriptDirectory.from_config(cfg)
    assert schema.head_revision() == scripts.get_current_head()
    assert schema.known_revisions() == {s.revision for s in scripts.walk_revisions()}


def test_checking_a_current_database_does_not_load_alembic(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    code = (
        "import asyncio, sys\n"
        "from tracking_core.settings import CoreSettings\n"
        "from tracking_core.store import schema\n"
        f"config = CoreSettings(backend_store_uri='sqlite:///{db}', default_artifact_root='{tmp_path}')\n"
        "asyncio.run(schema.prepare(config))\n"  # creates the schema: Alembic loads
        "created = 'alembic' in sys.modules\n"
        "for name in [m for m in sys.modules if m == 'alembic' or m.startswith('alembic.')]:\n"
        "    del sys.modules[name]\n"
        "asyncio.run(schema.prepare(config))\n"  # the schema is current: Alembic must stay unloaded
        "print(created, 'alembic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]


def test_a_database_recording_two_revisions_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    config = CoreSettings(backend_store_uri=f"sqlite:///{db}", default_artifact_root=str(tmp_path))
    asyncio.run(schema.prepare(config))
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES ('0001')"))
    engine.dispose()
    with pytest.raises(schema.SchemaError, match="several schema revisions"):
        asyncio.run(schema.prepare(config))
